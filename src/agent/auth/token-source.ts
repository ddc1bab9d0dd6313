import type { Clock } from "../../core/clock.js";
import { bearer, type Credential, type CredentialSource } from "./credential-source.js";

/**
 * The shape most methods share: obtain a bearer token somehow, present it with the identity UUID.
 * Fetched tokens are reused until a minute before their `exp` (read without verifying: the server
 * verifies; the agent only avoids presenting a token it knows is stale). File-backed tokens are read
 * on every use (`cache: false`) since the platform rotates them in place. A 401 drops the cached token
 * and allows one retry.
 */
export interface TokenSourceOptions {
  method: string;
  uuid: string | undefined;
  clock: Clock;
  fetchToken: (signal: AbortSignal) => Promise<string>;
  cache: boolean;
  extraHeaders?: Record<string, string>;
}

const REFRESH_MARGIN_MS = 60_000;

export function createTokenSource(options: TokenSourceOptions): CredentialSource {
  let cached: { token: string; expiresAt: number | undefined } | undefined;
  const usable = () =>
    cached !== undefined &&
    (cached.expiresAt === undefined || cached.expiresAt - REFRESH_MARGIN_MS > options.clock.now().getTime());

  const present = (token: string): Credential => {
    const credential = bearer(token, options.uuid);
    return { headers: { ...credential.headers, ...options.extraHeaders } };
  };

  return {
    method: options.method,
    async get(signal) {
      if (options.cache && usable()) return present(cached!.token);
      const token = await options.fetchToken(signal);
      if (options.cache) cached = { token, expiresAt: jwtExpiry(token)?.getTime() };
      return present(token);
    },
    refused() {
      cached = undefined;
      return true;
    },
  };
}

/** `exp` of a compact JWT, read without verification; undefined for anything else. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" ? new Date(payload.exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}
