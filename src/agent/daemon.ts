import { sleep, type Clock } from "../core/clock.js";
import { toCertfleetError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { AgentAuthError } from "./agent-errors.js";
import type { CertificateSync, SyncOutcome } from "./certificate-sync.js";
import type { AuthFailureHook } from "./on-failure.js";
import { delayAfterFailure, delayAfterSuccess } from "./renewal-plan.js";

/**
 * The daemon: one loop per certificate, each `sync → decide the next time (renewal-plan.ts) → sleep`,
 * until the signal aborts. A failure never removes installed files: the last good certificate stays in
 * place while the loop backs off, for as long as the server stays away. `wake()` cuts every sleep short
 * (SIGHUP). Authentication failures run the on_failure hook on the transition from working to failing.
 */
export interface DaemonDeps {
  certificates: readonly CertificateSync[];
  clock: Clock;
  logger: Logger;
  authHook: AuthFailureHook;
  renew: { jitterMs: number; maxIntervalMs: number };
  random?: () => number;
  /** Backoff after `failures` consecutive failures; default core/retry.ts nextRetryDelayMs. */
  retryDelay?: (failures: number, error: unknown) => number;
  /** Called after every successful sync (the agent updates the Traefik file). */
  afterSync?: (outcome: SyncOutcome) => Promise<void>;
}

export interface Daemon {
  run(signal: AbortSignal): Promise<void>;
  wake(): void;
}

export function createDaemon(deps: DaemonDeps): Daemon {
  let wakeController = new AbortController();

  async function loop(cert: CertificateSync, signal: AbortSignal): Promise<void> {
    const logger = deps.logger.child({ certificate: cert.name });
    let failures = 0;
    while (!signal.aborted) {
      let delay: number;
      try {
        const outcome = await cert.sync(signal);
        if (failures > 0) logger.info({ failures }, "sync works again");
        failures = 0;
        deps.authHook.succeeded();
        await deps.afterSync?.(outcome);
        delay = delayAfterSuccess({
          now: deps.clock.now(),
          renewAt: outcome.renewAt,
          notAfter: outcome.notAfter,
          jitterMs: deps.renew.jitterMs,
          maxIntervalMs: deps.renew.maxIntervalMs,
          random: deps.random,
        });
      } catch (e) {
        if (signal.aborted) break;
        failures++;
        const error = toCertfleetError(e);
        if (e instanceof AgentAuthError) await deps.authHook.failed(error);
        const installed = await cert.installer.installed().catch(() => undefined);
        delay = delayAfterFailure({
          now: deps.clock.now(),
          failures,
          error,
          installedNotAfter: installed ? new Date(installed.notAfter) : undefined,
          retryDelay: deps.retryDelay,
          random: deps.random,
        });
        logger.warn(
          {
            code: error.code,
            internal: error.internal,
            failures,
            retryInMs: Math.round(delay),
            keeping: installed?.serial,
          },
          `sync failed: ${error.message}`,
        );
      }
      logger.debug({ nextInMs: Math.round(delay) }, "next sync scheduled");
      try {
        await sleep(delay, AbortSignal.any([signal, wakeController.signal]));
      } catch {
        // woken early or stopping; the loop condition decides
      }
    }
  }

  return {
    async run(signal) {
      await Promise.all(deps.certificates.map((c) => loop(c, signal)));
    },
    wake() {
      const previous = wakeController;
      wakeController = new AbortController();
      previous.abort();
    },
  };
}
