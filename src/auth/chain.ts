import { AuthenticationError, RateLimitedError, toCertfleetError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { AuditEvent } from "../storage/storage.js";
import { AuthFailure, classifyFailure } from "./auth-failure.js";
import type { Authenticator, AuthRequest, Principal } from "./authenticator.js";
import { addressKey, type FailureLimiter } from "./failure-limiter.js";

/**
 * The authentication step the server runs on every protected request, as a checklist:
 *
 * 1. refuse a source address that failed too often (429 `auth_rate_limited`, Retry-After);
 * 2. ask each authenticator in order; the first that recognises the credential decides;
 * 3. before a method that can name the claimed identity up front (client id) checks the secret,
 *    refuse an identity that failed too often;
 * 4. count a failure against the address and the identity — only when it can be a guess (unknown
 *    key, bad secret or signature, anything malformed; auth-failure.ts classifyFailure), never an
 *    authentic token that merely expired;
 * 5. write one audit event per decision (`auth.allow` / `auth.deny`, with the method, the identity
 *    and the internal reason);
 * 6. throw only coarse errors: a 401 says "authentication required" with one of three stable codes
 *    (`unauthenticated`, `token_expired`, `identity_mismatch`) and `details.freshCredentialMayHelp`,
 *    so an agent knows whether fetching a new token is worth it; the reason stays in the audit log.
 */

/** Optional extra an authenticator may implement (detected at run time). */
export interface ClaimsIdentityUpFront {
  claimedIdentity(request: AuthRequest): string | undefined;
}

function claimsIdentityUpFront(a: Authenticator): a is Authenticator & ClaimsIdentityUpFront {
  return typeof (a as Partial<ClaimsIdentityUpFront>).claimedIdentity === "function";
}

export interface AuthChainDeps {
  limiter: FailureLimiter;
  /**
   * Storage.appendAudit or the server's AuditSink. Denials are awaited; an `auth.allow` record is
   * appended without waiting, so the caller must hold its response until the sink has committed
   * (the API app waits for AuditSink.committed() before sending anything).
   */
  audit: (event: AuditEvent) => Promise<void>;
  logger: Logger;
}

const identityKey = (identity: string) => `id:${identity}`;

export async function authenticate(
  authenticators: readonly Authenticator[],
  request: AuthRequest,
  deps: AuthChainDeps,
  signal: AbortSignal,
): Promise<Principal> {
  const address = addressKey(request.remoteAddress);
  const audit = async (event: Omit<AuditEvent, "remoteAddress">) => {
    try {
      await deps.audit({ ...event, remoteAddress: request.remoteAddress });
    } catch (e) {
      deps.logger.error(
        { err: e instanceof Error ? e.message : String(e), type: event.type },
        "audit write failed",
      );
    }
  };
  const deny = async (method: string | null, actor: string | null, reason: string) =>
    audit({ type: "auth.deny", outcome: "deny", method, actor, reason });
  const rateLimited = (seconds: number, reason: string) =>
    new RateLimitedError(
      "auth_rate_limited",
      "too many failed authentication attempts; try again later",
      seconds,
      reason,
    );

  const addressWait = deps.limiter.blockedFor(address);
  if (addressWait !== undefined) {
    await deny(null, null, `rate_limited: ${address}`);
    throw rateLimited(addressWait, `address ${address} blocked`);
  }

  for (const authenticator of authenticators) {
    const claimed = claimsIdentityUpFront(authenticator) ? authenticator.claimedIdentity(request) : undefined;
    if (claimed !== undefined) {
      const identityWait = deps.limiter.blockedFor(identityKey(claimed));
      if (identityWait !== undefined) {
        await deny(authenticator.method, claimed, `rate_limited: ${claimed}`);
        throw rateLimited(identityWait, `identity ${claimed} blocked`);
      }
    }

    let principal: Principal | undefined;
    try {
      principal = await authenticator.authenticate(request, signal);
    } catch (e) {
      if (e instanceof AuthenticationError) {
        const identity = (e instanceof AuthFailure ? e.identity : undefined) ?? claimed;
        const failure = classifyFailure(e);
        if (failure.guess) {
          deps.limiter.recordFailure(address);
          if (identity !== undefined) deps.limiter.recordFailure(identityKey(identity));
        }
        await deny(authenticator.method, identity ?? null, e.internal ?? e.code);
        throw new AuthenticationError(e.internal ?? e.code, failure.code, {
          freshCredentialMayHelp: failure.freshCredentialMayHelp,
        });
      }
      const error = toCertfleetError(e);
      await deny(authenticator.method, null, `${error.code}${error.internal ? `: ${error.internal}` : ""}`);
      if (error.status >= 500)
        deps.logger.error(
          { method: authenticator.method, code: error.code, internal: error.internal },
          "authentication error",
        );
      throw error;
    }
    if (principal !== undefined) {
      // appended, not awaited: it shares the group commit with the request's own record, and the
      // server sends no response before the sink has committed it (AuthChainDeps.audit)
      void audit({
        type: "auth.allow",
        outcome: "allow",
        method: principal.method,
        actor: principal.id,
        reason: null,
        data: { name: principal.name },
      });
      return principal;
    }
  }

  // No credential of any accepted kind: not counted as a guess, but recorded.
  await deny(null, null, "no_credentials");
  throw new AuthenticationError("no_credentials", "unauthenticated", { freshCredentialMayHelp: true });
}

/** The chain as the server's `Authenticate` function. */
export function createAuthenticate(
  authenticators: readonly Authenticator[],
  deps: AuthChainDeps,
): (request: AuthRequest, signal: AbortSignal) => Promise<Principal> {
  return (request, signal) => authenticate(authenticators, request, deps, signal);
}
