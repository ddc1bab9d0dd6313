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
