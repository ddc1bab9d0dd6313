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
