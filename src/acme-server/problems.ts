import { CertfleetError, isCertfleetError } from "../core/errors.js";

/**
 * RFC 8555 §6.7 problem documents. Every ACME error is an AcmeProblem: a CertfleetError whose `code` is
 * `acme_<type>` (stable, for tests and logs) and whose `type` is the short ACME error type. Anything
 * else thrown inside an ACME route becomes `serverInternal` with no detail for the client.
 */

export const ACME_ERROR_NS = "urn:ietf:params:acme:error:";

export type AcmeErrorType =
  | "accountDoesNotExist"
  | "alreadyReplaced"
  | "alreadyRevoked"
  | "badCSR"
  | "badNonce"
  | "badPublicKey"
  | "badRevocationReason"
  | "badSignatureAlgorithm"
  | "caa"
  | "connection"
  | "conflict"
  | "dns"
  | "externalAccountRequired"
  | "incorrectResponse"
  | "invalidContact"
  | "invalidProfile"
  | "malformed"
  | "orderNotReady"
  | "rateLimited"
  | "rejectedIdentifier"
  | "serverInternal"
  | "tls"
  | "unauthorized"
  | "unsupportedContact"
  | "unsupportedIdentifier"
  | "userActionRequired";

const DEFAULT_STATUS: Partial<Record<AcmeErrorType, number>> = {
  accountDoesNotExist: 400,
  alreadyReplaced: 409,
  conflict: 409,
  incorrectResponse: 403,
  orderNotReady: 403,
  rateLimited: 429,
  serverInternal: 500,
  unauthorized: 403,
  userActionRequired: 403,
};

export interface AcmeIdentifier {
  type: "dns";
  value: string;
}

export interface Subproblem {
  type: AcmeErrorType;
  detail: string;
  identifier: AcmeIdentifier;
}

export interface ProblemOptions {
  status?: number;
  /** Reason for logs and the audit trail only. */
  internal?: string;
  retryAfter?: number;
  subproblems?: Subproblem[];
  /** Extra members of the problem document (e.g. `algorithms` for badSignatureAlgorithm). */
  extra?: Record<string, unknown>;
  /** A Location header to send with the problem (409 conflict on keyChange). */
  location?: string;
  cause?: unknown;
}

export class AcmeProblem extends CertfleetError {
  readonly type: AcmeErrorType;
  readonly subproblems: Subproblem[] | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly location: string | undefined;

  constructor(type: AcmeErrorType, detail: string, options: ProblemOptions = {}) {
    const status = options.status ?? DEFAULT_STATUS[type] ?? 400;
    super(`acme_${type}`, detail, {
      status,
      expose: status < 500,
      internal: options.internal,
      retryAfter: options.retryAfter === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfter)),
      cause: options.cause,
    });
    this.type = type;
    this.subproblems = options.subproblems;
    this.extra = options.extra;
    this.location = options.location;
  }
}

export function problem(type: AcmeErrorType, detail: string, options?: ProblemOptions): AcmeProblem {
  return new AcmeProblem(type, detail, options);
}

export function isAcmeProblem(e: unknown): e is AcmeProblem {
  return e instanceof AcmeProblem;
}

/** The RFC 7807 body for a problem; unexposed details are replaced by a generic text. */
export function problemDocument(p: AcmeProblem): Record<string, unknown> {
  return {
    type: ACME_ERROR_NS + p.type,
    detail: p.expose ? p.message : "internal error",
    status: p.status,
    ...(p.subproblems
      ? { subproblems: p.subproblems.map((s) => ({ ...s, type: ACME_ERROR_NS + s.type })) }
      : {}),
    ...(p.extra ?? {}),
  };
}

/**
 * Any error as a problem: AcmeProblem as is; a CertfleetError 4xx becomes `malformed` with its
 * message; everything else `serverInternal`.
 */
export function toProblem(e: unknown): AcmeProblem {
  if (isAcmeProblem(e)) return e;
  if (isCertfleetError(e) && e.status >= 400 && e.status < 500 && e.expose) {
    // the issuer's own CSR checks (csr_invalid, csr_weak_key, csr_account_key, ...) are about the CSR
    return problem(e.code.startsWith("csr_") ? "badCSR" : "malformed", e.message, {
      status: 400,
      internal: `${e.code}: ${e.internal ?? ""}`,
      cause: e,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return problem("serverInternal", "internal error", { internal: message, cause: e });
}
