import { randomUUID } from "node:crypto";
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  errors,
  type JWK,
} from "jose";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { IdentityStore, KeyValueStore } from "../storage/storage.js";
import { AuthFailure } from "./auth-failure.js";
import type { Authenticator, AuthRequest, Principal } from "./authenticator.js";
import { credentialsFor } from "./authorization-header.js";
import { LEGACY_METHODS, type LegacyMethod, type LegacySwitch } from "./legacy-switch.js";

/**
 * Session tokens: an agent proves itself once with any method (a cloud token, a client secret, a
 * certificate) and receives a short-lived JWT signed by this server, so expensive or rate-limited proofs
 * are not re-verified on every call. See docs/auth/session-tokens.md.
 *
 * - ES256, one signing key per deployment, created once in storage (kv "auth"/"session-signing-key",
 *   encrypted at rest) so every replica verifies every other replica's tokens.
 * - Header `typ: certfleet-session+jwt`, `iss` urn:certfleet:session, `aud` urn:certfleet:api: a session
 *   token can never be mistaken for a third-party token and vice versa (this authenticator ignores
 *   bearer tokens of any other `typ`, leaving them to the JWT authenticator).
 * - For identities with a record, the record is read again on every use: disabling an identity or
 *   changing its grants takes effect at once. Other principals (API keys, claim-granted tokens) keep
 *   the grants they had when the session was issued, for at most the token lifetime.
 * - A session issued through a legacy method dies with that method: the organisation switch is
 *   checked on every use.
 */

export const SESSION_TOKEN_TYPE = "certfleet-session+jwt";
export const SESSION_ISSUER = "urn:certfleet:session";
export const SESSION_AUDIENCE = "urn:certfleet:api";
export const SESSION_METHOD = "session";
const KEY_NAMESPACE = "auth";
const KEY_NAME = "session-signing-key";
const KEY_CACHE_MS = 60_000;
const MAX_TOKEN_BYTES = 8192;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SessionTokenDeps {
  /** Where the signing key lives. */
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  /** A token is honoured only while its identity exists and is enabled. */
  identities: Pick<IdentityStore, "getIdentity">;
  legacySwitch: LegacySwitch;
  clock: Clock;
  logger: Logger;
  /** Lifetime of a session token (default 900 s, at most 3600 s). */
  ttlSeconds?: number;
}

export interface SessionTokens {
  /** Sign a session token for an authenticated principal. */
  issue(principal: Principal, signal: AbortSignal): Promise<{ token: string; expiresAt: Date }>;
  /** Verifies `Authorization: Bearer <session token>`; put it first in the chain. */
  authenticator: Authenticator;
}

type ImportedKey = Awaited<ReturnType<typeof importJWK>>;

interface SigningKey {
  kid: string;
  privateKey: ImportedKey;
  publicKey: ImportedKey;
}

interface SessionClaims {
  sub: string;
  name: string;
  amr: string[];
  rec: boolean;
  grants?: string[] | "all";
  admin?: boolean;
}

export function createSessionTokens(deps: SessionTokenDeps): SessionTokens {
  const ttlSeconds = Math.min(Math.max(deps.ttlSeconds ?? 900, 30), 3600);
  const logger = deps.logger.child({ component: "auth.session" });
  let cached: { key: Promise<SigningKey>; at: number } | undefined;

  async function loadKey(signal: AbortSignal): Promise<SigningKey> {
    let stored = await deps.store.getValue(KEY_NAMESPACE, KEY_NAME, signal);
    if (stored === undefined) {
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      const jwk = await exportJWK(privateKey);
      // Create-once: if another replica won the race, its key is returned and used.
      stored = await deps.store.putValue(
        KEY_NAMESPACE,
        KEY_NAME,
        JSON.stringify(jwk),
        { secret: true, ifAbsent: true },
        signal,
      );
      logger.info("session signing key created");
    }
    const jwk = JSON.parse(stored) as JWK;
    const { d: _d, ...publicJwk } = jwk;
    return {
      kid: await calculateJwkThumbprint(publicJwk),
      privateKey: await importJWK(jwk, "ES256"),
      publicKey: await importJWK(publicJwk, "ES256"),
    };
  }

  function signingKey(signal: AbortSignal): Promise<SigningKey> {
    const now = deps.clock.now().getTime();
    if (!cached || now - cached.at >= KEY_CACHE_MS || now < cached.at) {
      const key = loadKey(signal);
      cached = { key, at: now };
      key.catch(() => {
        if (cached?.key === key) cached = undefined;
      });
    }
    return cached.key;
  }

  async function issue(
    principal: Principal,
    signal: AbortSignal,
  ): Promise<{ token: string; expiresAt: Date }> {
    const key = await signingKey(signal);
    const now = Math.floor(deps.clock.now().getTime() / 1000);
    const rec = UUID.test(principal.id);
    const claims: SessionClaims = { sub: principal.id, name: principal.name, amr: [principal.method], rec };
    if (!rec) {
      claims.grants = principal.grants === "all" ? "all" : [...principal.grants];
      claims.admin = principal.admin;
    }
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: SESSION_TOKEN_TYPE })
      .setIssuer(SESSION_ISSUER)
      .setAudience(SESSION_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { token, expiresAt: new Date((now + ttlSeconds) * 1000) };
  }

  const authenticator: Authenticator = {
    method: SESSION_METHOD,
    async authenticate(request: AuthRequest, signal: AbortSignal): Promise<Principal | undefined> {
      const token = credentialsFor(request.headers, "Bearer");
      if (token === undefined || token.length > MAX_TOKEN_BYTES) return undefined;
      let typ: unknown;
      try {
        typ = decodeProtectedHeader(token).typ;
      } catch {
        return undefined;
      }
      if (typ !== SESSION_TOKEN_TYPE) return undefined;

      const key = await signingKey(signal);
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, key.publicKey, {
          algorithms: ["ES256"],
          issuer: SESSION_ISSUER,
          audience: SESSION_AUDIENCE,
          typ: SESSION_TOKEN_TYPE,
          currentDate: deps.clock.now(),
          clockTolerance: 5,
          requiredClaims: ["exp", "sub"],
        }));
      } catch (e) {
        if (e instanceof errors.JWTExpired) throw new AuthFailure("session_expired");
        if (e instanceof errors.JOSEError) throw new AuthFailure("session_invalid", e.code);
        throw e;
      }

      const method =
        Array.isArray(payload.amr) && typeof payload.amr[0] === "string" ? payload.amr[0] : "unknown";
      if ((LEGACY_METHODS as readonly string[]).includes(method))
        await deps.legacySwitch.assertEnabled(method as LegacyMethod, signal);
      const sub = String(payload.sub);
      if (payload.rec === true) {
        const record = await deps.identities.getIdentity(sub, signal);
        if (!record) throw new AuthFailure("identity_unknown", `session for deleted identity ${sub}`);
        if (!record.enabled)
          throw new AuthFailure("identity_disabled", `identity ${sub} is disabled`, { identity: sub });
        return {
          id: record.id,
          name: record.name,
          method,
          grants: Object.freeze([...record.grants]),
          admin: record.admin,
        };
      }
      const grants =
        payload.grants === "all"
          ? "all"
          : Array.isArray(payload.grants)
            ? Object.freeze(payload.grants.filter((g): g is string => typeof g === "string"))
            : [];
      return {
        id: sub,
        name: typeof payload.name === "string" ? payload.name : sub,
        method,
        grants,
        admin: payload.admin === true,
      };
    },
  };

  return { issue, authenticator };
}
