import { CertfleetError } from "../core/errors.js";
import type { KeyType } from "../core/key-types.js";

/**
 * An Issuer turns a CSR into a certificate. Issuers never see private keys. `issue` may take minutes
 * (ACME challenges); it must honour `signal` between steps and clean up anything it created (challenge
 * records, tokens) whether it succeeds, fails or is aborted.
 */
export interface Issuer {
  /** Stable id used in config and stored on each certificate, e.g. "embedded" or "letsencrypt". */
  readonly id: string;
  issue(request: IssueRequest, signal: AbortSignal): Promise<IssuedCertificate>;
}

export interface IssueRequest {
  /** Normalised DNS names, first is primary. */
  names: string[];
  /** PEM-encoded PKCS#10 request carrying exactly `names`. */
  csrPem: string;
  keyType: KeyType;
  /** RFC 9773 id of the certificate this one replaces (ARI `replaces`). */
  replaces?: string;
  /**
   * An order this CSR was already sent towards (from the issuance journal). An issuer that keeps
   * orders at the CA continues it: downloads the certificate when the order is valid, waits while it
   * is processing, finishes it when pending or ready, and orders anew only when it is invalid, expired
   * or gone. Others ignore it.
   */
  resumeOrderUrl?: string;
  /**
   * Awaited once the CA has created an order, before anything is finalized, so the caller can journal
   * the URL; a failure here fails the issuance (nothing is finalized that could not be resumed).
   */
  onOrder?: (orderUrl: string) => Promise<void>;
  /** Awaited just before the CSR is submitted for finalization. */
  onFinalize?: () => Promise<void>;
}

export interface IssuedCertificate {
  /** Leaf certificate PEM. */
  certPem: string;
  /** Intermediates PEM (without the leaf), possibly empty. */
  chainPem: string;
}

/** Optional: an issuer that can say when a certificate should be renewed (ACME ARI, RFC 9773). */
export interface RenewalInfoSource {
  /** undefined when the CA offers no renewal info for this certificate. */
  renewalInfo(certPem: string, signal: AbortSignal): Promise<RenewalInfo | undefined>;
}

export interface RenewalInfo {
  /** RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial). */
  certId: string;
  windowStart: Date;
  windowEnd: Date;
  explanationUrl?: string;
  /** Seconds until the client should ask again (from Retry-After). */
  retryAfterSeconds?: number;
}

export function hasRenewalInfo(issuer: Issuer): issuer is Issuer & RenewalInfoSource {
  return typeof (issuer as Partial<RenewalInfoSource>).renewalInfo === "function";
}

/** RFC 5280 §5.3.1 CRLReason names and codes (8, removeFromCRL, is not a revocation and is left out). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;

export const REVOCATION_REASON_NAMES = Object.keys(REVOCATION_REASONS) as [
  RevocationReason,
  ...RevocationReason[],
];

/** The name of an RFC 5280 reason code, or undefined for a code that is not a revocation reason. */
export function revocationReasonName(code: number): RevocationReason | undefined {
  return REVOCATION_REASON_NAMES.find((name) => REVOCATION_REASONS[name] === code);
}

/**
 * Optional: an issuer that can revoke a certificate it issued (ACME revokeCert, RFC 8555 §7.6; the
 * embedded CA's CRL). Revoking a certificate that is already revoked throws CertfleetError
 * `already_revoked` (409), so a caller retrying after a partial failure can tell it apart from a real
 * refusal. A certificate this issuer did not issue throws `certificate_not_issued_here` (400).
 */
export interface Revoker {
  revoke(certPem: string, reason: RevocationReason, signal: AbortSignal): Promise<void>;
}

export function hasRevoke(issuer: Issuer): issuer is Issuer & Revoker {
  return typeof (issuer as Partial<Revoker>).revoke === "function";
}

/** The error every Revoker throws for a certificate that is already revoked. */
export function alreadyRevokedError(internal?: string): CertfleetError {
  return new CertfleetError("already_revoked", "the certificate is already revoked", {
    status: 409,
    internal,
  });
}
