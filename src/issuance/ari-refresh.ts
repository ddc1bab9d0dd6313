import type { Clock } from "../core/clock.js";
import { toCertfleetError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { CertificateStore, KeyValueStore } from "../storage/storage.js";
import type { IssuerRouter } from "./issuer-routing.js";
import { hasRenewalInfo, type RenewalInfo } from "./issuer.js";
import { computeRenewAt, type RenewalPolicy } from "./renewal-window.js";

/**
 * RFC 9773 asks clients to keep polling `renewalInfo`, not just once at issuance: a CA that must revoke
 * (a key compromise, a mis-issuance incident) moves the suggested window into the past and expects its
 * subscribers to renew within hours. This keeps a small per-certificate poll state in storage, asks
 * again when the CA's `Retry-After` has passed (clamped to a minute … a day, six hours when absent),
 * and reschedules the renewal when — and only when — the window changed, so an unchanged window keeps
 * the random moment already picked inside it.
 */
export interface AriRefresher {
  /** Store the window the CA gave for a freshly issued certificate. */
  remember(id: string, info: RenewalInfo): Promise<void>;
  /** Poll every certificate whose next check is due; returns how many were rescheduled. */
  refresh(signal?: AbortSignal): Promise<{ polled: number; rescheduled: number }>;
}

interface PollState {
  certId: string;
  windowStart: string;
  windowEnd: string;
  nextCheckAt: string;
}

const NAMESPACE = "ari-poll";
const DEFAULT_RETRY_S = 6 * 3600;
const MIN_RETRY_S = 60;
const MAX_RETRY_S = 86_400;
/** After a failed poll: ask again in an hour (never a storm against a struggling CA). */
const ERROR_RETRY_S = 3600;
/** At most this many CA requests per pass; the rest wait for the next pass. */
const MAX_POLLS_PER_PASS = 200;

export function nextCheckSeconds(retryAfterSeconds: number | undefined): number {
  if (retryAfterSeconds === undefined || !Number.isFinite(retryAfterSeconds)) return DEFAULT_RETRY_S;
  return Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, retryAfterSeconds));
}

export function createAriRefresher(deps: {
  certificates: Pick<CertificateStore, "listCertificates" | "getCertificate" | "rescheduleRenewal">;
  /** Poll state per certificate. */
  kv: Pick<KeyValueStore, "getValue" | "putValue">;
  router: IssuerRouter;
  clock: Clock;
  logger: Logger;
  policy: RenewalPolicy;
  random?: () => number;
}): AriRefresher {
  const { certificates, kv, clock, logger } = deps;
  const random = deps.random ?? Math.random;

  const later = (seconds: number) => new Date(clock.now().getTime() + seconds * 1000).toISOString();

  async function readState(id: string, signal?: AbortSignal): Promise<PollState | undefined> {
    const raw = await kv.getValue(NAMESPACE, id, signal);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as PollState;
    } catch {
      return undefined; // unreadable state: poll again, which rewrites it
    }
  }

  const writeState = (id: string, state: PollState) => kv.putValue(NAMESPACE, id, JSON.stringify(state));

  async function remember(id: string, info: RenewalInfo): Promise<void> {
    await writeState(id, {
      certId: info.certId,
      windowStart: info.windowStart.toISOString(),
      windowEnd: info.windowEnd.toISOString(),
      nextCheckAt: later(nextCheckSeconds(info.retryAfterSeconds)),
    });
  }

  async function refresh(signal?: AbortSignal): Promise<{ polled: number; rescheduled: number }> {
    let polled = 0;
    let rescheduled = 0;
    const now = clock.now();
    for (const summary of await certificates.listCertificates(signal)) {
      if (polled >= MAX_POLLS_PER_PASS || signal?.aborted) break;
      if (!summary.ariCertId || summary.renewAt <= now) continue; // nothing to ask, or already due
      const issuer = deps.router.get(summary.issuerId);
      if (!issuer || !hasRenewalInfo(issuer)) continue;
      const state = await readState(summary.id, signal);
      if (state?.certId === summary.ariCertId && new Date(state.nextCheckAt) > now) continue;
      const record = await certificates.getCertificate(summary.id, signal);
      if (!record || record.version !== summary.version) continue; // replaced meanwhile
      polled++;

      let info: RenewalInfo | undefined;
      try {
        info = await issuer.renewalInfo(record.certPem, signal ?? AbortSignal.timeout(30_000));
      } catch (e) {
        const err = toCertfleetError(e);
        if (err.code === "aborted") throw err;
        logger.warn({ id: record.id, issuer: issuer.id, err: err.message }, "renewal info poll failed");
        await writeState(record.id, {
          certId: summary.ariCertId,
          windowStart: state?.windowStart ?? "",
          windowEnd: state?.windowEnd ?? "",
          nextCheckAt: later(ERROR_RETRY_S),
        });
        continue;
      }
      if (!info) {
        // The CA no longer knows it: keep the schedule we have, ask again tomorrow.
        await writeState(record.id, {
          certId: summary.ariCertId,
          windowStart: state?.windowStart ?? "",
          windowEnd: state?.windowEnd ?? "",
          nextCheckAt: later(MAX_RETRY_S),
        });
        continue;
      }
      const windowStart = info.windowStart.toISOString();
      const windowEnd = info.windowEnd.toISOString();
      const changed =
        state?.certId !== summary.ariCertId ||
        state.windowStart !== windowStart ||
        state.windowEnd !== windowEnd;
      if (changed) {
        const renewAt = computeRenewAt(deps.policy, {
          notBefore: record.notBefore,
          notAfter: record.notAfter,
          ariWindow: { start: info.windowStart, end: info.windowEnd },
          now: clock.now(),
          random,
        });
        if (await certificates.rescheduleRenewal(record.id, record.version, renewAt, signal)) {
          rescheduled++;
          logger.info(
            {
              id: record.id,
              names: record.names,
              issuer: issuer.id,
              window: { start: windowStart, end: windowEnd },
              renewAt,
              explanation: info.explanationUrl,
            },
            "renewal window moved by the CA",
          );
        }
      }
      await writeState(record.id, {
        certId: summary.ariCertId,
        windowStart,
        windowEnd,
        nextCheckAt: later(nextCheckSeconds(info.retryAfterSeconds)),
      });
    }
    return { polled, rescheduled };
  }

  return { remember, refresh };
}
