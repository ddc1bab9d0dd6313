import type { Logger } from "../core/logger.js";
import type { AuditEvent, AuditLog } from "../storage/storage.js";

/**
 * Append an audit event. Events arriving together are written in one batch (one transaction), so a
 * busy API does not pay one database write per request; each caller's promise still resolves only once
 * its event is stored. A failing audit write is logged loudly but never turns a success into a 500.
 */
export type AuditSink = ((event: AuditEvent) => Promise<void>) & {
  /** Write whatever is queued now (shutdown). */
  flush(): Promise<void>;
  /**
   * Resolves once every event appended so far is written (or its failure logged): events are written
   * in the order they arrive, so this is the last one's promise. The API holds each response on it.
   */
  committed(): Promise<void>;
};

const MAX_BATCH = 500;

export function createAuditSink(storage: Pick<AuditLog, "appendAudit">, logger: Logger): AuditSink {
  let queue: { event: AuditEvent; done: () => void }[] = [];
  let scheduled: Promise<void> | undefined;
  let last: Promise<void> = Promise.resolve();

  async function writeQueued(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(batch.length);
      try {
        await storage.appendAudit(batch.map((b) => b.event));
      } catch (e) {
        logger.error(
          {
            err: e instanceof Error ? e.message : String(e),
            events: batch.length,
            types: [...new Set(batch.map((b) => b.event.type))],
          },
          "audit write failed",
        );
      }
      for (const b of batch) b.done();
    }
  }

  function schedule(): Promise<void> {
    scheduled ??= new Promise<void>((resolve) => setImmediate(resolve)).then(writeQueued).finally(() => {
      scheduled = undefined;
      if (queue.length > 0) void schedule();
    });
    return scheduled;
  }

  const sink = ((event: AuditEvent) => {
    last = new Promise<void>((resolve) => {
      queue.push({ event: { ...event, at: event.at ?? new Date() }, done: resolve });
      void schedule();
    });
    return last;
  }) as AuditSink;
  sink.committed = () => last;
  sink.flush = async () => {
    while (scheduled || queue.length > 0) await (scheduled ?? schedule());
  };
  return sink;
}
