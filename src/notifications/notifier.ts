import { randomUUID } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { sleep } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { isRetryable } from "../core/retry.js";
import type { CertificateEvent } from "../issuance/manager.js";
import type { AuditEvent } from "../storage/audit-log.js";
import type { CertificateSummary } from "../storage/certificate-store.js";
import type { KeyValueStore } from "../storage/key-value-store.js";
import { createChannelSender } from "./channels.js";
import { matchesNamePatterns } from "./name-filter.js";
import type {
  ChannelConfig,
  NotificationEvent,
  NotificationEventType,
  NotificationsConfig,
} from "./types.js";

/** Last-notified state per channel + certificate (`<channel>/<id>/failing`, `<channel>/<id>/expiring/<serial>`, …). */
export const NOTIFICATION_STATE_NAMESPACE = "notification-state";

const MAX_RETRY_DELAY_MS = 60 * 60_000;

/**
 * Turns certificate state changes into notifications. Each change is sent once per channel: the
 * last-notified state lives in the key/value store and is claimed create-once before delivery, so a
 * trigger seen on every scheduler pass (or by several replicas) notifies once. Deliveries run in the
 * background, retried with doubling delays up to `retryAttempts`; every delivery and every final
 * failure is audited (`notification.delivered` / `notification.failed`). Nothing here throws into the
 * caller: a broken channel never affects issuance.
 */
export interface Notifier {
  /** Feed a certificate manager event; returns at once (state and delivery happen in the background). */
  onCertificateEvent(event: CertificateEvent): void;
  /** Raise `certificate.expiring` for certificates inside the window; resolves once their state is claimed. */
  checkExpiring(signal?: AbortSignal): Promise<void>;
  /** Run `checkExpiring` every `intervalMs` until stopped. */
  start(intervalMs: number): void;
  /** Stop the expiry loop, cancel pending retries (audited as failures) and wait for them. */
  stop(): Promise<void>;
  /** Resolves when nothing is queued or being delivered (shutdown flush, tests). */
  idle(): Promise<void>;
}

export interface NotifierDeps {
  config: NotificationsConfig;
  kv: KeyValueStore;
  certificates: { listCertificates(signal?: AbortSignal): Promise<CertificateSummary[]> };
  audit: (event: AuditEvent) => Promise<void>;
  clock: Clock;
  logger: Logger;
}

interface CertInfo {
  id: string;
  names: string[];
  issuerId: string;
  serial: string | null;
  notAfter: Date | null;
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const { config, kv, clock, logger } = deps;
  const senders = new Map(
    config.channels.map((c) => [
      c.name,
      createChannelSender(c, { clock, allowPrivateAddresses: config.allowPrivateAddresses }),
    ]),
  );
  const inFlight = new Set<Promise<void>>();
  const shutdown = new AbortController();
  let loop: { controller: AbortController; done: Promise<void> } | undefined;

  function track(p: Promise<void>): void {
    const q = p.catch((e: unknown) => logger.error({ err: errText(e) }, "notification handling failed"));
    inFlight.add(q);
    void q.finally(() => inFlight.delete(q));
  }

  function channelsFor(cert: CertInfo, type: NotificationEventType): ChannelConfig[] {
    return config.channels.filter((c) => c.events.includes(type) && matchesNamePatterns(cert.names, c.names));
  }

  /** Create-once claim of a state key; true when this caller made the claim. */
  async function claim(key: string): Promise<boolean> {
    const mine = `${clock.now().toISOString()} ${randomUUID()}`;
    const stored = await kv.putValue(NOTIFICATION_STATE_NAMESPACE, key, mine, { ifAbsent: true });
    return stored === mine;
  }

  function event(
    type: NotificationEventType,
    cert: CertInfo,
    detail: Record<string, unknown>,
  ): NotificationEvent {
    return {
      type,
      at: clock.now().toISOString(),
      certificate: {
        id: cert.id,
        names: cert.names,
        issuerId: cert.issuerId,
        serial: cert.serial,
        notAfter: cert.notAfter?.toISOString() ?? null,
      },
      detail,
    };
  }

  async function deliver(channel: ChannelConfig, ev: NotificationEvent): Promise<void> {
    const sender = senders.get(channel.name)!;
    let attempt = 0;
    for (;;) {
      attempt++;
      try {
        await sender.send(ev, shutdown.signal);
        await deps.audit({
          type: "notification.delivered",
          actor: null,
          subject: ev.certificate.names.join(","),
          outcome: "success",
          data: {
            channel: channel.name,
            channelType: channel.type,
            event: ev.type,
            id: ev.certificate.id,
            attempts: attempt,
          },
        });
        return;
      } catch (e) {
        const last = attempt >= config.retryAttempts || !isRetryable(e) || shutdown.signal.aborted;
        if (!last) {
          const delay = Math.min(config.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
          logger.warn(
            { channel: channel.name, event: ev.type, attempt, retryInMs: delay, err: errText(e) },
            "notification delivery failed; retrying",
          );
          const slept = await sleep(delay, shutdown.signal).then(
            () => true,
            () => false,
          );
          if (slept) continue;
        }
        logger.error(
          { channel: channel.name, event: ev.type, attempts: attempt, err: errText(e) },
          "notification not delivered",
        );
        await deps.audit({
          type: "notification.failed",
          actor: null,
          subject: ev.certificate.names.join(","),
          outcome: "failure",
          reason: errText(e),
          data: {
            channel: channel.name,
            channelType: channel.type,
            event: ev.type,
            id: ev.certificate.id,
            attempts: attempt,
          },
        });
        return;
      }
    }
  }

  /** Claim `key` per channel and deliver where the claim is new. */
  async function raise(
    type: NotificationEventType,
    cert: CertInfo,
    detail: Record<string, unknown>,
    key: (channel: ChannelConfig) => string,
  ): Promise<void> {
    for (const channel of channelsFor(cert, type)) {
      if (await claim(key(channel))) track(deliver(channel, event(type, cert, detail)));
    }
  }

  async function handle(e: CertificateEvent): Promise<void> {
    const base = { id: e.id, names: e.names, issuerId: e.issuerId };
    switch (e.type) {
      case "certificate.failed": {
        const cert = { ...base, serial: null, notAfter: null };
        await raise("certificate.renewal_failed", cert, { code: e.code, message: e.message }, (c) =>
          failingKey(c, e.id),
        );
        return;
      }
      case "certificate.issued":
      case "certificate.renewed": {
        const cert = { ...base, serial: e.serial, notAfter: e.notAfter };
        // recovered: the failing mark is cleared for every channel that had one, sent where subscribed
        for (const channel of config.channels) {
          const key = failingKey(channel, e.id);
          if ((await kv.getValue(NOTIFICATION_STATE_NAMESPACE, key)) === undefined) continue;
          await kv.deleteValue(NOTIFICATION_STATE_NAMESPACE, key);
          if (channelsFor(cert, "certificate.recovered").includes(channel))
            track(deliver(channel, event("certificate.recovered", cert, {})));
        }
        return;
      }
      case "certificate.revoke": {
        const cert = { ...base, serial: e.serial, notAfter: null };
        await raise(
          "certificate.revoked",
          cert,
          { reason: e.reason, replaced: e.replace },
          (c) => `${c.name}/${e.id}/revoked/${e.serial}`,
        );
        return;
      }
    }
  }

  async function checkExpiring(signal?: AbortSignal): Promise<void> {
    const now = clock.now().getTime();
    for (const cert of await deps.certificates.listCertificates(signal)) {
      signal?.throwIfAborted();
      const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
      const remaining = cert.notAfter.getTime() - now;
      if (lifetime <= 0 || remaining >= lifetime * config.expiringWhenRemaining) continue;
      const detail: Record<string, unknown> = {
        secondsLeft: Math.max(0, Math.floor(remaining / 1000)),
        expired: remaining <= 0,
        ...(cert.lastFailure
          ? { lastFailureCode: cert.lastFailure.code, lastFailure: cert.lastFailure.message }
          : {}),
      };
      await raise(
        "certificate.expiring",
        cert,
        detail,
        (c) => `${c.name}/${cert.id}/expiring/${cert.serial}`,
      );
    }
  }

  return {
    onCertificateEvent(e) {
      if (config.channels.length > 0) track(handle(e));
    },
    checkExpiring,
    start(intervalMs) {
      if (loop || config.channels.length === 0) return;
      const controller = new AbortController();
      const done = (async () => {
        while (!controller.signal.aborted) {
          await checkExpiring(controller.signal).catch((e: unknown) => {
            if (!controller.signal.aborted) logger.error({ err: errText(e) }, "expiry check failed");
          });
          await sleep(intervalMs, controller.signal).catch(() => undefined);
        }
      })();
      loop = { controller, done };
    },
    async stop() {
      loop?.controller.abort(new Error("notifier stopped"));
      await loop?.done;
      loop = undefined;
      shutdown.abort(new Error("notifier stopped"));
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}

function failingKey(channel: ChannelConfig, id: string): string {
  return `${channel.name}/${id}/failing`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
