import type { KeyType } from "../core/key-types.js";

/**
 * The certificates certfleet manages: one current version per id, earlier versions in history.
 * Safe to call concurrently from many processes against the same database. Misses return `undefined`,
 * never throw. Private keys are encrypted at rest; callers always see plaintext. Every write is one
 * transaction: a reader sees the old version or the new one, never a mix.
 */
export interface CertificateStore {
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
  /**
   * Record the last failure on a certificate (or a request that has no certificate yet: `requested`
   * names what was asked for, so it is listed from its first attempt).
   */
  recordFailure(
    id: string,
    failure: FailureRecord,
    signal?: AbortSignal,
    requested?: RequestedCertificate,
  ): Promise<void>;
  /** Requests that failed before any certificate was stored for them (never issued), by id. */
  listUnissued(signal?: AbortSignal): Promise<UnissuedCertificate[]>;
  /** The last recorded failure for an id (with or without a certificate yet), or undefined. */
  getFailure(id: string, signal?: AbortSignal): Promise<FailureRecord | undefined>;
  /** Previous versions, newest first. */
  listCertificateHistory(id: string, signal?: AbortSignal): Promise<CertificateRecord[]>;
  /**
   * Fleet-wide numbers for /metrics, computed by the database without reading any PEM: counts by
   * issuer and status, time-to-expiry buckets and the earliest expiry per group, plus at most
   * `attentionLimit` certificates that need attention (failing, or `renewAt` at or before `at`),
   * soonest expiry first. Cost is one aggregate query and one bounded query, whatever the fleet size.
   */
  certificateStatistics(query: StatisticsQuery, signal?: AbortSignal): Promise<CertificateStatistics>;
}

export interface StatisticsQuery {
  at: Date;
  /** Upper bounds (ms from `at`, ascending) of the cumulative time-to-expiry buckets. */
  expiryBucketsMs: readonly number[];
  attentionLimit: number;
  /** Every certificate is "of interest", not only those needing attention (small fleets). */
  allCertificates?: boolean;
}

/** `expired`: notAfter passed; `failing`: last attempt failed; `renewal_due`: past renewAt; else `valid`. */
export type CertificateStatus = "expired" | "failing" | "renewal_due" | "valid";

export interface CertificateStatistics {
  groups: {
    issuerId: string;
    status: CertificateStatus;
    count: number;
    earliestNotAfter: Date;
    /** Sum over the group of (notAfter − at), ms (negative for expired ones). */
    sumTimeToExpiryMs: number;
    /** Cumulative counts per `expiryBucketsMs` bound: notAfter − at ≤ bound. */
    bucketCounts: number[];
  }[];
  /** Certificates needing attention (or all, see `allCertificates`), soonest expiry first, capped. */
  attention: CertificateSummary[];
  /** How many certificates needed attention beyond the cap. */
  attentionOmitted: number;
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
  /** Who it was issued to: `identity:<id>`, `acme:<profile>:<account>`, `eab:<kid>`; null if unknown. */
  owner?: string | null;
}

/** What a failed first attempt asked for. */
export interface RequestedCertificate {
  names: string[];
  issuerId: string;
  owner: string | null;
}

export interface UnissuedCertificate extends RequestedCertificate {
  id: string;
  lastFailure: FailureRecord;
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
  owner: string | null;
  lastFailure: FailureRecord | null;
}

export type CertificateSummary = Omit<CertificateRecord, "privateKeyPem" | "certPem" | "chainPem">;
