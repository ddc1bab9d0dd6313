import type { Clock } from "../../core/clock.js";
import { bearer, type Credential, type CredentialSource } from "./credential-source.js";
import { createSharedToken } from "./shared-token.js";

export { jwtExpiry } from "./shared-token.js";

/**
 * The shape most methods share: obtain a bearer token somehow, present it with the identity UUID.
 * Fetched tokens (`cache: true`) are one shared token for the whole agent (shared-token.ts): reused by
 * every certificate, refreshed shortly before their `exp` (read without verifying: the server verifies;
 * the agent only avoids presenting a token it knows is stale), fetched once for all concurrent callers.
 * File-backed tokens are read on every use (`cache: false`) since the platform rotates them in place.
 * A 401 drops the token that was refused (only that one) and allows one retry.
 */
export interface TokenSourceOptions {
  method: string;
  uuid: string | undefined;
  clock: Clock;
  fetchToken: (signal: AbortSignal) => Promise<string>;
  cache: boolean;
  extraHeaders?: Record<string, string>;
}

export function createTokenSource(options: TokenSourceOptions): CredentialSource {
  const shared = options.cache
    ? createSharedToken({ clock: options.clock, fetch: options.fetchToken })
    : undefined;

  const present = (token: string): Credential => {
    const credential = bearer(token, options.uuid);
    return { headers: { ...credential.headers, ...options.extraHeaders }, token };
  };

  return {
    method: options.method,
    async get(signal) {
      return present(shared ? await shared.get(signal) : await options.fetchToken(signal));
    },
    refused(rejected) {
      if (rejected.token !== undefined) shared?.drop(rejected.token);
      return true;
    },
  };
}
