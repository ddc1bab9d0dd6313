import type { Clock } from "../core/clock.js";
import { sleep } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { CertificateManager } from "./manager.js";

/**
 * Background renewal: every `intervalMs` (± 10 %) ask the manager to renew what is due. Each replica
 * runs one; the manager's storage lock makes sure only one of them orders a given certificate.
 */
export interface RenewalScheduler {
  start(): void;
  /** Stops the loop and waits for the current pass to finish or abort. */
  stop(): Promise<void>;
  /** Run one pass now (also used by `certfleet renew --due`). */
  runOnce(signal?: AbortSignal): Promise<{ renewed: number; failed: number }>;
}

export function createRenewalScheduler(deps: {
  manager: CertificateManager;
  logger: Logger;
  clock: Clock;
  intervalMs: number;
}): RenewalScheduler {
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;

  async function runOnce(signal?: AbortSignal) {
    const result = await deps.manager.renewDue(signal);
    if (result.renewed + result.failed > 0) deps.logger.info(result, "renewal pass");
    return result;
  }

  return {
    runOnce,
    start() {
      if (controller) return;
      const c = new AbortController();
      controller = c;
      loop = (async () => {
        while (!c.signal.aborted) {
          try {
            await runOnce(c.signal);
          } catch (e) {
            if (!c.signal.aborted)
              deps.logger.error({ err: e instanceof Error ? e.message : String(e) }, "renewal pass failed");
          }
          await sleep(deps.intervalMs * (0.9 + Math.random() * 0.2), c.signal).catch(() => undefined);
        }
      })();
    },
    async stop() {
      controller?.abort(new Error("scheduler stopped"));
      await loop;
      controller = undefined;
      loop = undefined;
    },
  };
}
