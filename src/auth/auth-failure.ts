import { AuthenticationError } from "../core/errors.js";

/**
 * The AuthenticationError every authenticator in this folder throws. The caller only ever sees the
 * generic 401 (`code` "unauthenticated"); `reason` is a stable token for the audit log and for tests
 * (e.g. "jwt_alg_not_allowed"), `internal` adds free-form detail after it. `identity` names the
 * identity the credential claimed to be, when the method can tell before verifying (client id), so the
 * failure limiter can count failures per identity as well as per address.
 */
export class AuthFailure extends AuthenticationError {
  readonly reason: string;
  readonly identity: string | undefined;

  constructor(reason: string, detail?: string, options: { identity?: string } = {}) {
    super(detail === undefined ? reason : `${reason}: ${detail}`);
    this.reason = reason;
    this.identity = options.identity;
  }
}

/** The stable reason token of an authentication error (the part of `internal` before the colon). */
export function failureReason(error: unknown): string | undefined {
  if (error instanceof AuthFailure) return error.reason;
  if (error instanceof AuthenticationError) return error.internal?.split(":")[0];
  return undefined;
}

/**
 * What the caller of a refused request is told (the 401's stable `code`) and whether the failure counts
 * toward the failure limiter. Only failures that can be guesses count: a credential that is unknown, a
 * secret or signature that does not verify, anything malformed, and every reason not listed here. A
 * credential that was proven authentic first (its signature verified, its secret matched) and is refused
 * for another reason — it merely expired, its claims do not fit, its identity is disabled or is not the
 * one the request names — is not a guess: counting it would let a fleet behind one NAT address lock
 * itself out when its shared tokens expire together.
 *
 * Public codes (README error table, docs/openapi.yaml), each with `details.freshCredentialMayHelp`:
 * - `token_expired`: a well-signed token past its `exp` — a fresh token helps;
 * - `identity_mismatch`: a valid proof for another identity than the request names — a fresh token of
 *   the same kind cannot help;
 * - `unauthenticated`: everything else; the server does not say why (the reason goes to the audit
 *   log). `freshCredentialMayHelp` is false only when the credential was authentic and its identity
 *   cannot sign in this way (disabled, another method, the method switched off); otherwise a client
 *   may try once more with a fresh credential.
 */
export type PublicAuthCode = "unauthenticated" | "token_expired" | "identity_mismatch";

const AUTHENTIC_REFUSALS: Readonly<Record<string, PublicAuthCode>> = {
  jwt_expired: "token_expired",
  session_expired: "token_expired",
  identity_mismatch: "identity_mismatch",
  // verified tokens whose claims do not fit (jose checks the signature before any claim)
  jwt_not_yet_valid: "unauthenticated",
  jwt_audience_mismatch: "unauthenticated",
  jwt_issuer_mismatch: "unauthenticated",
  jwt_iat_invalid: "unauthenticated",
  jwt_claim_missing: "unauthenticated",
  jwt_claims_invalid: "unauthenticated",
  jwt_scope_missing: "unauthenticated",
  jwt_binding_claim_missing: "unauthenticated",
  azure_claims_invalid: "unauthenticated",
  azure_tenant_mismatch: "unauthenticated",
  aws_sub_not_role_arn: "unauthenticated",
  kubernetes_sub_invalid: "unauthenticated",
  spiffe_id_invalid: "unauthenticated",
  spiffe_trust_domain_mismatch: "unauthenticated",
  // a proven identity that may not sign in, or a method switched off for the whole organisation
  identity_disabled: "unauthenticated",
  identity_method_mismatch: "unauthenticated",
  legacy_method_disabled: "unauthenticated",
};

/** Authentic refusals that no fresh credential of the same kind can turn into a success. */
const FINAL_REASONS = new Set([
  "identity_mismatch",
  "identity_disabled",
  "identity_method_mismatch",
  "legacy_method_disabled",
]);

export interface FailureClass {
  code: PublicAuthCode;
  /** Counts toward the per-address and per-identity failure limits. */
  guess: boolean;
  freshCredentialMayHelp: boolean;
}

export function classifyFailure(error: AuthenticationError): FailureClass {
  const reason = failureReason(error) ?? "";
  const code = Object.hasOwn(AUTHENTIC_REFUSALS, reason) ? AUTHENTIC_REFUSALS[reason]! : undefined;
  if (code === undefined) return { code: "unauthenticated", guess: true, freshCredentialMayHelp: true };
  return { code, guess: false, freshCredentialMayHelp: !FINAL_REASONS.has(reason) };
}
