import type { AcmeStore } from "./acme-store.js";
import type { AuditLog } from "./audit-log.js";
import type { CertificateStore } from "./certificate-store.js";
import type { ChallengeTokenStore } from "./challenge-token-store.js";
import type { IdentityStore } from "./identity-store.js";
import type { IssuanceJournal } from "./issuance-journal.js";
import type { KeyValueStore } from "./key-value-store.js";
import type { LockStore } from "./lock-store.js";

/**
 * Storage is the only shared state between replicas, and storage/ owns every table in it. It hands
 * out role-sized seams; the composition root gives each component only the role(s) it needs, and the
 * SQL handle never leaves storage/. Each seam states its own contract; in common: safe to call
 * concurrently from many processes against one database, misses return `undefined`, private keys and
 * secret values are encrypted at rest (callers see plaintext), writes are all-or-nothing.
 */
export interface Storage extends StorageAdmin {
  readonly certificates: CertificateStore;
  /** The ACME server's accounts, orders, authorizations, challenges, issued certificates, nonces. */
  readonly acme: AcmeStore;
  readonly kv: KeyValueStore;
  readonly locks: LockStore;
  readonly identities: IdentityStore;
  readonly audit: AuditLog;
  /** HTTP-01 tokens the ACME client publishes (any replica answers). */
  readonly challenges: ChallengeTokenStore;
  /** Orders in flight (the certificate manager's), so a restart or another replica finishes them. */
  readonly journal: IssuanceJournal;
}

/** Whole-database operations: for the composition root, the CLI and /readyz. */
export interface StorageAdmin {
  /** Create tables / run pending migrations. Idempotent; safe to race from several replicas. */
  migrate(signal?: AbortSignal): Promise<void>;
  /** Cheap liveness check for /readyz. */
  ping(signal?: AbortSignal): Promise<void>;
  /** Idempotent. Every seam is unusable afterwards. */
  close(): Promise<void>;
  /**
   * Re-seal every encrypted value (private keys: current, history and the issuance journal; secret
   * key/values) that is not sealed under the current master key. Idempotent and safe to interrupt: each row is rewritten on
   * its own, only if it still holds the envelope that was read.
   */
  reencryptSecrets(signal?: AbortSignal): Promise<{ rewritten: number; total: number }>;
}

export type { AcmeStore } from "./acme-store.js";
export type { AuditEvent, AuditLog, AuditRecord } from "./audit-log.js";
export type {
  CertificateRecord,
  CertificateStatistics,
  CertificateStatus,
  CertificateStore,
  CertificateSummary,
  FailureRecord,
  KeyCustody,
  NewCertificate,
  RequestedCertificate,
  UnissuedCertificate,
} from "./certificate-store.js";
export type { ChallengeTokenStore } from "./challenge-token-store.js";
export type { IdentityPatch, IdentityRecord, IdentityStore, NewIdentity } from "./identity-store.js";
export type { KeyValueStore } from "./key-value-store.js";
export type { LockStore } from "./lock-store.js";
