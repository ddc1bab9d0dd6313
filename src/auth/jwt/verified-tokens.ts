import { createHash } from "node:crypto";
import type { JWTPayload } from "jose";

/**
 * Tokens whose signature and claims were verified, remembered by the SHA-256 of the token so a client
 * reusing its bearer skips the signature check (issue 15).
 *
 * An entry is honoured only while all of these hold:
 * - the token has not reached its `exp` (and at most `maxAgeMs` since it was verified);
 * - the issuer's key set it was verified against is still that issuer's current, fresh set — any
 *   refresh (age, unknown kid, manual) drops every entry verified against the old set, so a key that
 *   left the issuer's JWKS stops being honoured as soon as the server learns of it, exactly as without
 *   the cache.
 * The map is bounded (`maxEntries`, oldest out first). Only the digest and the verified payload are
 * kept; the token itself is not stored. Not shared between processes.
 */
export interface VerifiedTokens<Issuer> {
  /** The remembered verification, or undefined (miss, expired, or verified against another set). */
  get(
    digest: string,
    currentSetOf: (issuer: Issuer) => object | undefined,
    nowMs: number,
  ): { payload: JWTPayload; issuer: Issuer } | undefined;
  remember(
    digest: string,
    entry: { payload: JWTPayload; issuer: Issuer; keySet: object },
    nowMs: number,
  ): void;
}

export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export function createVerifiedTokens<Issuer>(options: {
  maxEntries: number;
  maxAgeMs: number;
}): VerifiedTokens<Issuer> {
  // Insertion-ordered: when full, the oldest entry goes first.
  const entries = new Map<string, { payload: JWTPayload; issuer: Issuer; keySet: object; until: number }>();
  return {
    get(digest, currentSetOf, nowMs) {
      const hit = entries.get(digest);
      if (hit === undefined) return undefined;
      if (nowMs < hit.until && currentSetOf(hit.issuer) === hit.keySet) return hit;
      entries.delete(digest);
      return undefined;
    },
    remember(digest, entry, nowMs) {
      const until = Math.min((entry.payload.exp ?? 0) * 1000, nowMs + options.maxAgeMs);
      if (until <= nowMs) return;
      if (entries.size >= options.maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(digest, { ...entry, until });
    },
  };
}
