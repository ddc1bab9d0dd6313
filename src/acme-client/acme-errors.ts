import { UpstreamError, type CertfleetError } from "../core/errors.js";
import { parseRetryAfter } from "../core/retry.js";

/**
 * ACME problem documents (RFC 8555 §6.7) → certfleet errors with stable codes. Codes:
 *
 * | code                        | retryable | when                                                        |
 * |-----------------------------|-----------|-------------------------------------------------------------|
 * | acme_rate_limited           | yes       | `rateLimited`; `retryAfter` from the Retry-After header     |
 * | acme_bad_nonce              | yes       | `badNonce` still failing after our own retries              |
 * | acme_account_rejected       | no        | account registration refused (EAB missing or wrong, contact) |
 * | acme_authorization_failed   | no        | `rejectedIdentifier`, `unsupportedIdentifier`, `caa`, `unauthorized` |
 * | acme_challenge_failed       | yes       | `connection`, `dns`, `incorrectResponse`, `tls` and unknown validation failures |
 * | acme_csr_rejected           | no        | `badCSR`, `badPublicKey`, `badSignatureAlgorithm`           |
 * | acme_server_error           | yes       | `serverInternal` or any 5xx                                 |
 * | acme_order_failed           | yes       | an order turned `invalid` without a more specific problem   |
 * | acme_error                  | no        | any other 4xx problem (likely a client/CA mismatch)         |
 * | acme_unreachable            | yes       | network or TLS failure, request timeout                     |
 * | acme_timeout                | yes       | polling did not reach a final state in time                 |
 * | acme_no_solver (422)        | no        | no configured solver for a name (checked before ordering) or for any offered challenge |
 * | acme_solver_failed          | yes       | a solver's present/waitReady threw a non-certfleet error    |
 * | acme_certificate_mismatch   | no        | the issued certificate is not for the CSR's key             |
 * | acme_renewal_info_invalid   | yes       | a renewalInfo body that does not follow RFC 9773            |
 * | acme_protocol_error         | yes       | the CA answered something we cannot use                     |
 *
 * The problem `type`, `detail` and the identifier go into `details` (caller-safe: they describe the
 * caller's own names) and into `internal`.
 */

export const ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:";

export interface AcmeProblem {
  type?: string;
  detail?: string;
  status?: number;
  identifier?: { type?: string; value?: string };
  subproblems?: AcmeProblem[];
}

export interface AcmeHttpResponse {
  status: number;
  /** Lowercase header names. */
  headers: Record<string, string>;
  data: unknown;
  /** Sends it took after connection errors, when more than one (see acme-transport.ts). */
  attempts?: number;
}

/** Where in the flow a problem arose; it decides the meaning of ambiguous types like `unauthorized`. */
export type AcmeStep =
  | "directory"
  | "account"
  | "order"
  | "authorization"
  | "challenge"
  | "finalize"
  | "download"
  | "renewalInfo"
  | "revoke"
  /** An authorization or challenge the CA marked `invalid`. */
  | "validation";

const AUTHORIZATION_TYPES = new Set(["rejectedIdentifier", "unsupportedIdentifier", "caa", "unauthorized"]);
const CHALLENGE_TYPES = new Set(["connection", "dns", "incorrectResponse", "tls"]);
const CSR_TYPES = new Set(["badCSR", "badPublicKey", "badSignatureAlgorithm"]);
const ACCOUNT_TYPES = new Set([
  "externalAccountRequired",
  "invalidContact",
  "unsupportedContact",
  "accountDoesNotExist",
  "userActionRequired",
]);

/** The short type ("rateLimited") of an ACME problem, or undefined for non-ACME types. */
export function problemShortType(problem: AcmeProblem | undefined): string | undefined {
  const type = problem?.type;
  return type?.startsWith(ACME_ERROR_PREFIX) ? type.slice(ACME_ERROR_PREFIX.length) : undefined;
}

export function asProblem(data: unknown): AcmeProblem | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const p = data as AcmeProblem;
  return typeof p.type === "string" || typeof p.detail === "string" ? p : undefined;
}

/** A subproblem names the identifier that failed; prefer its type when the top level is `compound`. */
function mostSpecific(problem: AcmeProblem): AcmeProblem {
  if (problemShortType(problem) === "compound" && problem.subproblems?.length) return problem.subproblems[0]!;
  return problem;
}

/**
 * Turn a problem (from a failed response, or an invalid order/authorization/challenge) into a
 * CertfleetError. `httpStatus` and `retryAfterHeader` come from the response when there is one.
 */
export function acmeProblemError(
  problem: AcmeProblem | undefined,
  step: AcmeStep,
  context: { httpStatus?: number; retryAfterHeader?: string; now: Date; identifier?: string },
): UpstreamError {
  const specific = problem ? mostSpecific(problem) : undefined;
  const short = problemShortType(specific) ?? problemShortType(problem);
  const detail = specific?.detail ?? problem?.detail ?? "no detail given";
  const identifier = specific?.identifier?.value ?? context.identifier;
  const httpStatus = context.httpStatus ?? problem?.status;
  const details: Record<string, unknown> = {
    acmeType: specific?.type ?? problem?.type ?? null,
    acmeDetail: detail,
    step,
    ...(identifier ? { identifier } : {}),
  };
  const internal = `${step}: ${specific?.type ?? problem?.type ?? `HTTP ${httpStatus ?? "?"}`}: ${detail}`;
  const make = (code: string, message: string, retryable: boolean, extra: { retryAfter?: number } = {}) =>
    new UpstreamError(code, message, { retryable, details, internal, ...extra });

  if (short === "rateLimited" || httpStatus === 429) {
    const retryAfter = parseRetryAfter(context.retryAfterHeader, context.now);
    return make("acme_rate_limited", `the ACME CA rate-limited this request: ${detail}`, true, {
      retryAfter: retryAfter === undefined ? undefined : Math.max(1, retryAfter),
    });
  }
  if (short === "badNonce") return make("acme_bad_nonce", "the ACME CA kept rejecting nonces", true);
  if (short === "serverInternal" || (httpStatus !== undefined && httpStatus >= 500)) {
    return make("acme_server_error", `the ACME CA had an internal error: ${detail}`, true);
  }
  const accountStep =
    step === "account" && (short === undefined || short === "unauthorized" || short === "malformed");
  if (accountStep || (short !== undefined && ACCOUNT_TYPES.has(short))) {
    return make("acme_account_rejected", `the ACME CA refused the account: ${detail}`, false);
  }
  const what = identifier ? ` for ${identifier}` : "";
  if (short !== undefined && AUTHORIZATION_TYPES.has(short)) {
    return make("acme_authorization_failed", `the ACME CA refused authorization${what}: ${detail}`, false);
  }
  if ((short !== undefined && CHALLENGE_TYPES.has(short)) || step === "validation") {
    return make("acme_challenge_failed", `challenge validation failed${what}: ${detail}`, true);
  }
  if (short !== undefined && CSR_TYPES.has(short)) {
    return make("acme_csr_rejected", `the ACME CA rejected the certificate request: ${detail}`, false);
  }
  if (httpStatus === undefined) {
    return make("acme_order_failed", `the ACME order failed: ${detail}`, true);
  }
  return make("acme_error", `the ACME CA refused the request: ${detail}`, false);
}

/** Network, TLS or timeout failure before any ACME answer. */
export function unreachableError(url: string, cause: unknown): UpstreamError {
  const reason = describeCause(cause);
  return new UpstreamError("acme_unreachable", "the ACME CA could not be reached", {
    retryable: true,
    internal: `${url}: ${reason}`,
    details: { url: new URL(url).origin },
    cause,
  });
}

export function protocolError(message: string, internal?: string): UpstreamError {
  return new UpstreamError("acme_protocol_error", message, { retryable: true, internal });
}

export function noSolverError(identifier: string, offered: readonly string[]): CertfleetError {
  return new UpstreamError(
    "acme_no_solver",
    `no configured challenge solver can answer for ${identifier} (offered: ${offered.join(", ") || "none"})`,
    { retryable: false, status: 422, details: { identifier, offered } },
  );
}

/**
 * No configured solver may answer for `name`, found before anything is ordered. The message names the
 * setting to add: a DNS provider (`dns.providers[]` with `zones` covering the name) for a wildcard or a
 * dns-01-only issuer, else a challenge type in the issuer's `challenges`.
 */
export function missingSolverError(
  name: string,
  context: { wildcard: boolean; issuer: string; challenges: readonly string[] },
): CertfleetError {
  const domain = context.wildcard ? name.slice(2) : name;
  const dnsOnly = context.challenges.length === 1 && context.challenges[0] === "dns-01";
  const message = context.wildcard
    ? `${name} needs a dns-01 challenge and no DNS provider serves ${domain}: add one under dns.providers (with zones covering ${domain})`
    : dnsOnly
      ? `issuer ${context.issuer} allows only dns-01 and no DNS provider serves ${domain}: add one under dns.providers (with zones covering ${domain}) or allow http-01 in the issuer's challenges`
      : `no challenge solver can answer for ${name} with the challenge types issuer ${context.issuer} allows (${context.challenges.join(", ") || "none"}): add a type to the issuer's challenges or a DNS provider under dns.providers`;
  return new UpstreamError("acme_no_solver", message, {
    retryable: false,
    status: 422,
    details: {
      identifier: name,
      issuer: context.issuer,
      challenges: [...context.challenges],
      missing: context.wildcard || dnsOnly ? "dns.providers" : "challenges",
    },
  });
}

function describeCause(e: unknown): string {
  const parts: string[] = [];
  let current: unknown = e;
  for (let depth = 0; current && depth < 4; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(typeof code === "string" ? `${current.message} (${code})` : current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
