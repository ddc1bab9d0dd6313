import { throwIfAborted } from "../../core/errors.js";
import type { AuditEvent, AuditLog } from "../audit-log.js";
import { auditRow, toAuditRecord } from "../rows.js";
import { sqlLimit, type SqlContext } from "./context.js";

export function createSqlAuditLog({ db, clock }: SqlContext): AuditLog {
  return {
    async appendAudit(event, signal) {
      throwIfAborted(signal);
      const events = Array.isArray(event) ? event : [event as AuditEvent];
      if (events.length === 0) return;
      const now = clock.now();
      await db
        .insertInto("audit_log")
        .values(events.map((e) => auditRow(e, now)))
        .execute();
    },

    async listAudit(query, signal) {
      throwIfAborted(signal);
      const rows = await db
        .selectFrom("audit_log")
        .selectAll()
        .$if(query.before !== undefined, (q) => q.where("id", "<", query.before ?? 0))
        .$if(query.type !== undefined, (q) => q.where("type", "=", query.type ?? ""))
        .orderBy("id", "desc")
        .limit(sqlLimit(query.limit))
        .execute();
      return rows.map(toAuditRecord);
    },
  };
}
