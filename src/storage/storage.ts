import type { KeyType } from "../core/key-types.js";
import type { IssuanceJournal } from "./issuance-journal.js";

/**
 * Storage is the only shared state between replicas. Every method is safe to call concurrently from
 * many processes against the same database. Misses return `undefined`, never throw. Private keys and
 * values written with `secret: true` are encrypted at rest by the implementation; callers always see
 * plaintext. Writes are all-or-nothing (one transaction).
 */
export interface Storage {
  /** Create tables / run pending migrations. Idempotent; safe to race from several replicas. */
  migrate(signal?: AbortSignal): Promise<void>;
  /** Cheap liveness check for /readyz. */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;

  // --- certificates -------------------------------------------------------------------------------
  getCertificate(id: string, signal?: AbortSignal): Promise<CertificateRecord | undefined>;
  /**
   * Insert or replace the current version of a certificate. The previous version is kept in history,
   * so a renewal never loses the certificate it replaces. Failure fields are reset.
   */
  putCertificate(record: NewCertificate, signal?: AbortSignal): Promise<CertificateRecord>;
  /** Certificates whose `renewAt` (or `nextAttemptAt`, if set and later) is at or before `at`. */
  listDueCertificates(at: Date, limit: number, signal?: AbortSignal): Promise<CertificateRecord[]>;
  listCertificates(signal?: AbortSignal): Promise<CertificateSummary[]>;
  /**
   * Move the renewal time of the current version `version` (a CA's new ARI window). False when the
   * certificate was replaced meanwhile, so a late answer never reschedules the newer certificate.
   */
  rescheduleRenewal(id: string, version: number, renewAt: Date, signal?: AbortSignal): Promise<boolean>;
  /** Record the last failure on a certificate (or a pending request that has no certificate yet). */
  recordFailure(id: string, failure: FailureRecord, signal?: AbortSignal): Promise<void>;
  /** The last recorded failure for an id (with or without a certificate yet), or undefined. */
  getFailure(id: string, signal?: AbortSignal): Promise<FailureRecord | undefined>;
  /** Previous versions, newest first. */
  listCertificateHistory(id: string, signal?: AbortSignal): Promise<CertificateRecord[]>;

  /**
   * Re-seal every encrypted value (private keys, current and history; secret key/values) that is not
   * sealed under the current master key. Idempotent and safe to interrupt: each row is rewritten on
   * its own, only if it still holds the envelope that was read.
   */
  reencryptSecrets(signal?: AbortSignal): Promise<{ rewritten: number; total: number }>;

  // --- key/value (CA material, ACME accounts, settings) ---------------------------------------------
  getValue(namespace: string, key: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Write a value. With `ifAbsent`, an existing value wins and is returned instead (create-once). */
  putValue(
    namespace: string,
    key: string,
    value: string,
    options?: { secret?: boolean; ifAbsent?: boolean },
    signal?: AbortSignal,
  ): Promise<string>;
  deleteValue(namespace: string, key: string): Promise<void>;

  // --- HTTP-01 tokens (any replica answers) --------------------------------------------------------
  putChallengeToken(
    token: string,
    keyAuthorization: string,
    expiresAt: Date,
    signal?: AbortSignal,
  ): Promise<void>;
  getChallengeToken(token: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Always runs; no signal. Missing token is not an error. */
  deleteChallengeToken(token: string): Promise<void>;

  // --- locks (cross-replica) ------------------------------------------------------------------------
  /** Try once. True if `owner` now holds `name` until `ttlMs` from now (an expired lock is taken over). */
  tryLock(name: string, owner: string, ttlMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Extend a held lock. False if it is no longer ours. */
  refreshLock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Always runs; releasing a lock we do not hold is a no-op. */
  unlock(name: string, owner: string): Promise<void>;
  /**
   * Release every lock whose owner starts with `ownerPrefix` except `currentOwner`'s: a restarted
   * process takes back, at once, the locks its previous life left behind. Returns how many.
   */
  releaseStaleLocks(ownerPrefix: string, currentOwner: string): Promise<number>;

  // --- issuance journal (orders in flight; see issuance-journal.ts) --------------------------------
  readonly journal: IssuanceJournal;

  // --- identity records ("agents") -----------------------------------------------------------------
  /** Throws CertfleetError `identity_conflict` (409) if the id or bindingKey already exists. */
  createIdentity(record: NewIdentity, signal?: AbortSignal): Promise<IdentityRecord>;
  getIdentity(id: string, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  /** Look up by the unique binding key (see auth/ for how keys are derived from claims / subjects). */
  findIdentityByBinding(bindingKey: string, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  listIdentities(signal?: AbortSignal): Promise<IdentityRecord[]>;
  /** Partial update; returns undefined when the id does not exist. */
  updateIdentity(id: string, patch: IdentityPatch, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  /** True if something was deleted. */
  deleteIdentity(id: string, signal?: AbortSignal): Promise<boolean>;

  // --- audit (append-only) --------------------------------------------------------------------------
  /** Append one event or a batch (one transaction; events without `at` get the storage clock's now). */
  appendAudit(event: AuditEvent | readonly AuditEvent[], signal?: AbortSignal): Promise<void>;
  listAudit(
    query: { limit: number; before?: number; type?: string },
    signal?: AbortSignal,
  ): Promise<AuditRecord[]>;
}

export type KeyCustody = "server" | "csr";

export interface NewCertificate {
  /** Stable id derived from names + key type + custody (see issuance/certificate-id.ts). */
  id: string;
  /** Normalised names; the first is the primary (CN). */
  names: string[];
  issuerId: string;
  keyType: KeyType;
  custody: KeyCustody;
  /** Leaf certificate PEM. */
  certPem: string;
  /** Issuer chain PEM (intermediates), possibly empty. */
  chainPem: string;
  /** Plaintext PEM (PKCS#8); null in CSR mode. Encrypted at rest. */
  privateKeyPem: string | null;
  notBefore: Date;
  notAfter: Date;
  /** Serial number, lowercase hex. */
  serial: string;
  /** RFC 9773 certificate identifier, when the issuer supports ARI. */
  ariCertId: string | null;
  /** When the scheduler should renew it. */
  renewAt: Date;
}

export interface FailureRecord {
  code: string;
  message: string;
  at: Date;
  /** Consecutive failures including this one. */
  failureCount: number;
  nextAttemptAt: Date | null;
}

export interface CertificateRecord extends NewCertificate {
  createdAt: Date;
  updatedAt: Date;
  /** Increments on every putCertificate. */
  version: number;
  lastFailure: FailureRecord | null;
}

export type CertificateSummary = Omit<CertificateRecord, "privateKeyPem" | "certPem" | "chainPem">;

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

export interface NewIdentity {
  /** UUID. */
  id: string;
  name: string;
  /** Auth method, e.g. "api_key", "jwt", "client_secret", "certificate", "azure", "spiffe". */
  method: string;
  /** Method-specific binding (claims, subject, SPIFFE ID, ...). */
  binding: Record<string, string>;
  /** Unique lookup key derived from method + binding; null for methods looked up by id. */
  bindingKey: string | null;
  /** Name patterns (core/names.ts patternMatches). */
  grants: string[];
  enabled: boolean;
  admin: boolean;
  /** Slow-KDF hash of a server-generated secret, when the method has one. Never the secret itself. */
  secretHash: string | null;
}

export interface IdentityRecord extends NewIdentity {
  createdAt: Date;
  updatedAt: Date;
}

export type IdentityPatch = Partial<
  Pick<NewIdentity, "name" | "binding" | "bindingKey" | "grants" | "enabled" | "admin" | "secretHash">
>;
