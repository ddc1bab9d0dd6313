import type { Logger } from "../core/logger.js";
import type { AuditEvent, Storage } from "../storage/storage.js";

/** Append an audit event. A failing audit write is logged loudly but never turns a success into a 500. */
export type AuditSink = (event: AuditEvent) => Promise<void>;

export function createAuditSink(storage: Pick<Storage, "appendAudit">, logger: Logger): AuditSink {
  return async (event) => {
    try {
      await storage.appendAudit(event);
    } catch (e) {
      logger.error(
        { err: e instanceof Error ? e.message : String(e), type: event.type },
        "audit write failed",
      );
    }
  };
}
