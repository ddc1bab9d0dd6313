import {
  errors,
  jwtVerify,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyResult,
} from "jose";
import type { Clock } from "../../core/clock.js";
import type { Logger } from "../../core/logger.js";
import type { IdentityStore } from "../../storage/storage.js";
import { sshGrantOfClaim } from "../../ssh/ssh-config.js";
import { AuthFailure } from "../auth-failure.js";
import type { Authenticator, AuthRequest, Principal } from "../authenticator.js";
import { credentialsFor } from "../authorization-header.js";
import { methodOfKind, spiffeTrustDomain, tokenBindingKeys } from "../binding.js";
import { checkIdentity, findIdentityByKeys, principalOfRecord } from "../identity-lookup.js";
import type { FetchLike } from "./fetch-json.js";
import { createCachedKeySet, type CachedKeySet, type ResolvedKey } from "./key-set.js";
import { createKeySetLoader } from "./key-sources.js";
import { claimGrants, inspectToken, tokenScopes } from "./token-shape.js";
import { resolveIssuers, type ResolvedIssuer, type TrustedIssuer } from "./trusted-issuer.js";
import { createVerifiedTokens, tokenDigest } from "./verified-tokens.js";

/**
 * `Authorization: Bearer <jwt>` from any number of trusted issuers (OIDC providers and workload
 * identity issuers: Entra ID, AWS, GCP, Kubernetes, SPIFFE). Each token goes through:
 *
 * 1. size and shape checks (token-shape.ts), on the unverified token;
 * 2. issuer selection by the unverified `iss` (or, for SPIFFE, the trust domain of `sub`);
 * 3. the header `alg` must be in that issuer's allowlist — before any key is looked up;
 * 4. signature verification with the issuer's cached key set (refreshed on unknown kid, with cooldown),
 *    plus `iss`, `aud`, `exp`/`nbf` with the configured clock tolerance, and required `exp` and `sub`;
 * 5. required scopes (from the issuer's `scopeClaims`: `scope`, `scopes`, `scp` by default);
 * 6. the identity record matched by binding key (binding.ts): disabled → refused; grants from the
 *    configured `domainsClaim`, else from the record, else every name if the issuer has
 *    `grantAllNames` (le-cert-server's rule), else none (so every name is refused later).
 *
 * A token that passed 1–5 is remembered by its SHA-256 (verified-tokens.ts) until its `exp`, at most
 * 5 minutes, and only while the issuer's key set it was verified with is still the current fresh one,
 * so a reused bearer skips the signature check but a rotated-out key is refused as soon as the set is
 * refetched. Step 6 runs on every request, so disabling an identity record takes effect at once.
 */

export interface JwtAuthenticatorDeps {
  issuers: readonly TrustedIssuer[];
  fetch: FetchLike;
  clock: Clock;
  logger: Logger;
  /** Identity records; without it, grants come only from `domainsClaim`. */
  store?: Pick<IdentityStore, "findIdentityByBinding">;
}

export const JWT_METHOD = "jwt";

interface IssuerRuntime {
  config: ResolvedIssuer;
  keys: CachedKeySet;
}

export type JwtAuthenticator = Authenticator & {
  /** Fetch every issuer's keys now (start-up check); resolves with the labels that failed. */
  warmUp(signal: AbortSignal): Promise<{ issuer: string; error: string }[]>;
};

function mapJoseError(e: unknown, issuer: ResolvedIssuer): unknown {
  if (e instanceof errors.JWTExpired) return new AuthFailure("jwt_expired", `${e.claim} check failed`);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === "missing") return new AuthFailure("jwt_claim_missing", `missing ${e.claim}`);
    const reasons: Record<string, string> = {
      aud: "jwt_audience_mismatch",
      iss: "jwt_issuer_mismatch",
      nbf: "jwt_not_yet_valid",
      iat: "jwt_iat_invalid",
    };
    return new AuthFailure(reasons[e.claim] ?? "jwt_claims_invalid", `${e.claim}: ${e.message}`);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed)
    return new AuthFailure("jwt_signature_invalid", issuer.label);
  if (e instanceof errors.JOSEAlgNotAllowed) return new AuthFailure("jwt_alg_not_allowed", e.message);
  if (e instanceof errors.JWKSNoMatchingKey)
    return new AuthFailure("jwt_key_unknown", `no key in ${issuer.label}'s set matches`);
  if (e instanceof errors.JWKSMultipleMatchingKeys) return new AuthFailure("jwt_key_ambiguous", issuer.label);
  if (e instanceof errors.JOSENotSupported) return new AuthFailure("jwt_unsupported", e.message);
  if (e instanceof errors.JOSEError) return new AuthFailure("jwt_invalid", `${e.code}: ${e.message}`);
  return e;
}

/** Verified tokens remembered per authenticator (one process). */
const VERIFIED_TOKENS_MAX = 10_000;
const VERIFIED_TOKENS_MAX_AGE_MS = 5 * 60_000;

export function createJwtAuthenticator(deps: JwtAuthenticatorDeps): JwtAuthenticator {
  const logger = deps.logger.child({ component: "auth.jwt" });
  const runtimes: IssuerRuntime[] = resolveIssuers(deps.issuers).map((config) => ({
    config,
    keys: createCachedKeySet({
      load: createKeySetLoader(config.keySource, {
        fetch: deps.fetch,
        clock: deps.clock,
        logger,
        timeoutMs: config.fetchTimeoutMs,
      }),
      clock: deps.clock,
      logger,
      label: config.label,
      maxAgeMs: config.cacheMaxAgeMs,
      cooldownMs: config.cooldownMs,
    }),
  }));
  const byIssuer = new Map(
    runtimes.filter((r) => r.config.issuerUrl !== undefined).map((r) => [r.config.issuerUrl!, r]),
  );
  const spiffeByDomain = new Map(
    runtimes.filter((r) => r.config.kind === "spiffe").map((r) => [r.config.trustDomain!, r]),
  );
  const maxTokenBytes = Math.max(0, ...runtimes.map((r) => r.config.maxTokenBytes));
  const verifiedTokens = createVerifiedTokens<IssuerRuntime>({
    maxEntries: VERIFIED_TOKENS_MAX,
    maxAgeMs: VERIFIED_TOKENS_MAX_AGE_MS,
  });
  const currentSetOf = (issuer: IssuerRuntime) => issuer.keys.freshSet();

  function selectIssuer(payload: JWTPayload): IssuerRuntime {
    if (typeof payload.iss === "string") {
      const byIss = byIssuer.get(payload.iss);
      if (byIss) return byIss;
    }
    const domain = typeof payload.sub === "string" ? spiffeTrustDomain(payload.sub) : undefined;
    const spiffe = domain === undefined ? undefined : spiffeByDomain.get(domain);
    // A SPIFFE entry without issuerUrl accepts any (or no) iss; with one, only that (matched above).
    if (spiffe && spiffe.config.issuerUrl === undefined) return spiffe;
    throw new AuthFailure(
      "jwt_issuer_untrusted",
      `iss ${JSON.stringify(payload.iss)?.slice(0, 200)} is not a trusted issuer`,
    );
  }

  async function verify(token: string, issuer: IssuerRuntime, signal: AbortSignal): Promise<JWTVerifyResult> {
    const { config } = issuer;
    const options = {
      algorithms: config.algorithms,
      audience: config.audience,
      clockTolerance: config.clockToleranceSeconds,
      currentDate: deps.clock.now(),
      requiredClaims: ["exp", "sub"],
      ...(config.issuerUrl !== undefined ? { issuer: config.issuerUrl } : {}),
    };
    try {
      const getKey = (header: JWSHeaderParameters, jws: FlattenedJWSInput) =>
        issuer.keys.keyFor(header, jws, signal);
      return await jwtVerify(token, getKey, options);
    } catch (e) {
      // A kid-less token and several candidate keys: try each (jose leaves this to the caller).
      if (e instanceof errors.JWKSMultipleMatchingKeys) {
        for await (const key of e as unknown as AsyncIterable<ResolvedKey>) {
          try {
            return await jwtVerify(token, key, options);
          } catch (inner) {
            if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw mapJoseError(inner, config);
          }
        }
        throw new AuthFailure("jwt_signature_invalid", `${config.label}: no candidate key verifies`);
      }
      throw mapJoseError(e, config);
    }
  }

  async function toPrincipal(
    payload: JWTPayload,
    config: ResolvedIssuer,
    request: AuthRequest,
    signal: AbortSignal,
  ): Promise<Principal> {
    const method = methodOfKind(config.kind);
    const sub = payload.sub!;
    if (config.kind === "spiffe" && spiffeTrustDomain(sub) !== config.trustDomain) {
      throw new AuthFailure("spiffe_trust_domain_mismatch", `${sub} is not in ${config.trustDomain}`);
    }
    const bindingKeys = tokenBindingKeys(config.kind, payload);
    const record = deps.store ? await findIdentityByKeys(deps.store, bindingKeys, signal) : undefined;
    if (record) checkIdentity(record, request);
    const grants =
      config.domainsClaim !== undefined ? claimGrants(payload[config.domainsClaim]) : (record?.grants ?? []);
    // an SSH grant only through the issuer's sshPrincipalsClaim (exact names from the verified token)
    const ssh =
      config.sshPrincipalsClaim !== undefined
        ? sshGrantOfClaim(payload[config.sshPrincipalsClaim], config.sshCertificateTypes)
        : undefined;
    if (record) {
      return {
        ...principalOfRecord(record, method),
        grants: Object.freeze([...grants]),
        ...(ssh ? { ssh } : {}),
      };
    }
    const iss = typeof payload.iss === "string" ? payload.iss : config.label;
    const open = config.grantAllNames;
    return {
      id: `jwt:${iss}#${sub}`,
      name: sub,
      method,
      grants: open ? "all" : Object.freeze([...grants]),
      admin: false,
      ...(ssh ? { ssh } : {}),
    };
  }

  return {
    method: JWT_METHOD,
    async authenticate(request: AuthRequest, signal: AbortSignal): Promise<Principal | undefined> {
      const token = credentialsFor(request.headers, "Bearer");
      if (token === undefined) return undefined;
      if (runtimes.length === 0) throw new AuthFailure("jwt_no_issuers", "no JWT issuer is configured");
      const digest = tokenDigest(token);
      const known = verifiedTokens.get(digest, currentSetOf, deps.clock.now().getTime());
      if (known) return toPrincipal(known.payload, known.issuer.config, request, signal);
      const unverified = inspectToken(token, maxTokenBytes);
      const issuer = selectIssuer(unverified.payload);
      const { config } = issuer;
      if (Buffer.byteLength(token) > config.maxTokenBytes)
        throw new AuthFailure("jwt_too_large", `> ${config.maxTokenBytes} bytes for ${config.label}`);
      const alg = unverified.header.alg ?? "";
      if (!config.algorithms.includes(alg)) {
        throw new AuthFailure(
          "jwt_alg_not_allowed",
          `alg ${alg.slice(0, 20)} is not allowed for ${config.label}`,
        );
      }
      if (!unverified.signed) throw new AuthFailure("jwt_signature_missing");

      const setBefore = issuer.keys.freshSet();
      const { payload } = await verify(token, issuer, signal);
      const setAfter = issuer.keys.freshSet();

      if (config.requiredScopes.length > 0) {
        const scopes = tokenScopes(payload, config.scopeClaims);
        const missing = config.requiredScopes.filter((s) => !scopes.has(s));
        if (missing.length > 0)
          throw new AuthFailure("jwt_scope_missing", `missing scope(s) ${missing.join(" ")}`);
      }
      // remembered only if no refresh happened while verifying (the key was in this very set)
      if (setAfter !== undefined && setAfter === setBefore)
        verifiedTokens.remember(digest, { payload, issuer, keySet: setAfter }, deps.clock.now().getTime());
      return toPrincipal(payload, config, request, signal);
    },
    async warmUp(signal) {
      const failures: { issuer: string; error: string }[] = [];
      await Promise.all(
        runtimes.map(async (r) => {
          try {
            await r.keys.refresh(signal);
          } catch (e) {
            failures.push({
              issuer: r.config.label,
              error: (e as { internal?: string }).internal ?? String(e),
            });
          }
        }),
      );
      return failures;
    },
  };
}
