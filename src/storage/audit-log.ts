/**
 * The append-only audit log. Appends are one transaction per call (a batch lands whole or not at
 * all); records are never changed.
 */
export interface AuditLog {
  /** Append one event or a batch (one transaction; events without `at` get the storage clock's now). */
  appendAudit(event: AuditEvent | readonly AuditEvent[], signal?: AbortSignal): Promise<void>;
  /** Newest first, `before` an id (exclusive), optionally one `type` only. */
  listAudit(
    query: { limit: number; before?: number; type?: string },
    signal?: AbortSignal,
  ): Promise<AuditRecord[]>;
}

export interface AuditEvent {
  /** e.g. "auth.allow", "auth.deny", "certificate.issue", "certificate.renew", "certificate.download", "admin.*" */
  type: string;
  at?: Date;
  /** Who: identity id / key name, or null for the system. */
  actor: string | null;
  /** Authentication method, when relevant. */
  method?: string | null;
  subject?: string | null;
  outcome: "allow" | "deny" | "success" | "failure";
  /** Internal reason / detail. Never contains secrets. */
  reason?: string | null;
  remoteAddress?: string | null;
  data?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Omit<AuditEvent, "data" | "at">> {
  id: number;
  at: Date;
  data: Record<string, unknown>;
}
