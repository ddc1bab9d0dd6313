import type { Clock } from "../../core/clock.js";
import type { Logger } from "../../core/logger.js";
import type { FetchLike } from "./http-token.js";

/**
 * A CredentialSource turns one configured auth method into what a request to the certfleet server
 * carries. Contract:
 *
 * - `get` returns a credential, reusing a cached one while it is still good; it throws AgentAuthError
 *   when none can be obtained. It honours `signal` for every remote call it makes.
 * - One source serves every certificate of the agent, concurrently: what it fetches (a token, a plugin
 *   run) is shared, and concurrent callers share one fetch (auth/shared-token.ts).
 * - `refused(rejected)` is called when the server answered 401 to `rejected` and said a fresh credential
 *   may help. The source drops its cached credential only if it is still `rejected` (another caller may
 *   already have replaced it) and returns true when a fresh `get` may succeed (the client then retries
 *   exactly once), or false when asking again cannot help (a static key).
 * - Sources hold secrets in memory only, unless the method's config names a file to keep them in.
 */
export interface Credential {
  /** Request headers, e.g. Authorization and X-Certfleet-Identity. */
  headers: Record<string, string>;
  /** mTLS client certificate (PEM, leaf first) and key, for the `certificate` method. */
  clientCertificate?: { certPem: string; keyPem: string };
  /** The bearer token inside `headers`, for methods that have one (so a refusal names what it refused). */
  token?: string;
}

export interface CredentialSource {
  readonly method: string;
  get(signal: AbortSignal): Promise<Credential>;
  refused(rejected: Credential): boolean;
  close?(): Promise<void>;
}

/** What every source factory receives. */
export interface CredentialDeps {
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
  /** Human-facing messages (login URLs, plugin stderr): stderr of the CLI. */
  tell: (line: string) => void;
  platform: NodeJS.Platform;
}

/** Header carrying the identity UUID on every request (see src/auth/identity-lookup.ts). */
export const IDENTITY_HEADER = "X-Certfleet-Identity";

export function identityHeaders(uuid: string | undefined): Record<string, string> {
  return uuid ? { [IDENTITY_HEADER]: uuid } : {};
}

export function bearer(token: string, uuid: string | undefined): Credential {
  return { headers: { authorization: `Bearer ${token}`, ...identityHeaders(uuid) }, token };
}
