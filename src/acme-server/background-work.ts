import type { Logger } from "../core/logger.js";

/**
 * Work that outlives the request that started it (certificate issuance after finalize, challenge
 * validation), each with its own timeout. `close()` aborts everything still running and waits for it,
 * so a stopping server never leaves a task writing to a closed database.
 */
export interface BackgroundWork {
  /** Start `task`; the returned promise settles when it ends (never rejects). */
  run(name: string, timeoutMs: number, task: (signal: AbortSignal) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export function createBackgroundWork(logger: Logger): BackgroundWork {
  const running = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();
  let closed = false;
  return {
    run(name, timeoutMs, task) {
      if (closed) return Promise.resolve();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error(`${name} timed out`)), timeoutMs);
      controllers.add(controller);
      const done = (async () => {
        try {
          await task(controller.signal);
        } catch (e) {
          logger.error(
            { err: e instanceof Error ? e.message : String(e), task: name },
            "acme background task failed",
          );
        } finally {
          clearTimeout(timer);
          controllers.delete(controller);
        }
      })();
      running.add(done);
      void done.finally(() => running.delete(done));
      return done;
    },
    async close() {
      closed = true;
      for (const c of controllers) c.abort(new Error("the ACME server is stopping"));
      await Promise.allSettled([...running]);
    },
  };
}
