import { readFile, stat } from "node:fs/promises";
import type { JSONWebKeySet, JWK } from "jose";
import type { Clock } from "../../core/clock.js";
import { UpstreamError } from "../../core/errors.js";
import { AuthFailure } from "../auth-failure.js";
import type { Logger } from "../../core/logger.js";
import { discoverJwksUri } from "./discovery.js";
import { fetchJson, type FetchLike } from "./fetch-json.js";
import type { KeySetLoader } from "./key-set.js";
import type { KeySourceConfig } from "./trusted-issuer.js";

/**
 * Where an issuer's keys come from: OIDC discovery → jwks_uri, a fixed JWKS URL, or a SPIFFE trust
 * bundle (a file, or a bundle endpoint). All locations come from server configuration.
 *
 * A SPIFFE bundle is a JWKS whose keys carry `use: "jwt-svid"` (JWT authorities) or `use: "x509-svid"`
 * (X.509 authorities). Only JWT authorities (and, for hand-made files, keys without `use`) are kept,
 * with `use` removed so jose's JWKS selection (which wants `use: "sig"` or none) accepts them.
 */

const MAX_JWKS_BYTES = 512 * 1024;
const MAX_KEYS = 100;
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;

function invalidSet(source: string, detail: string): UpstreamError {
  return new UpstreamError("identity_provider_unavailable", "the identity provider's key set is invalid", {
    status: 503,
    internal: `${source}: ${detail}`,
    retryAfter: 30,
  });
}

export function asJwks(doc: unknown, source: string): JSONWebKeySet {
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw invalidSet(source, "not a JWK Set");
  }
  const keys = (doc as { keys: unknown[] }).keys.filter(
    (k): k is JWK => typeof k === "object" && k !== null && !Array.isArray(k),
  );
  if (keys.length > MAX_KEYS) throw invalidSet(source, `more than ${MAX_KEYS} keys`);
  return { keys };
}

/** The JWT authorities of a SPIFFE bundle, ready for jose. */
export function spiffeJwtAuthorities(doc: unknown, source: string): JSONWebKeySet {
  const { keys } = asJwks(doc, source);
  const out: JWK[] = [];
  for (const key of keys) {
    if (key.use !== undefined && key.use !== "jwt-svid") continue;
    const { use: _use, ...rest } = key;
    out.push(rest);
  }
  return { keys: out };
}

export interface KeySourceDeps {
  fetch: FetchLike;
  clock: Clock;
  logger: Logger;
  timeoutMs: number;
}

export function createKeySetLoader(source: KeySourceConfig, deps: KeySourceDeps): KeySetLoader {
  const fetchOptions = { timeoutMs: deps.timeoutMs, maxBytes: MAX_JWKS_BYTES };
  switch (source.type) {
    case "jwks":
      return async () => asJwks(await fetchJson(deps.fetch, source.url, fetchOptions), source.url);
    case "spiffe-endpoint":
      return async () =>
        spiffeJwtAuthorities(await fetchJson(deps.fetch, source.url, fetchOptions), source.url);
    case "spiffe-file":
      return async () => {
        let text: string;
        try {
          const info = await stat(source.path);
          if (info.size > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
          text = await readFile(source.path, "utf8");
        } catch (e) {
          throw invalidSet(source.path, e instanceof Error ? e.message : String(e));
        }
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch {
          throw invalidSet(source.path, "not JSON");
        }
        return spiffeJwtAuthorities(doc, source.path);
      };
    case "discovery": {
      let discovered: { uri: string; at: number } | undefined;
      return async () => {
        const now = deps.clock.now().getTime();
        if (!discovered || now - discovered.at >= DISCOVERY_MAX_AGE_MS || now < discovered.at) {
          try {
            discovered = {
              uri: await discoverJwksUri(deps.fetch, source.issuerUrl, { timeoutMs: deps.timeoutMs }),
              at: now,
            };
          } catch (e) {
            if (e instanceof AuthFailure)
              deps.logger.error(
                { issuer: source.issuerUrl, reason: e.internal },
                "discovery document names another issuer",
              );
            if (!discovered) throw e;
            deps.logger.warn(
              { issuer: source.issuerUrl, err: e instanceof Error ? e.message : String(e) },
              "discovery refresh failed; keeping jwks_uri",
            );
          }
        }
        return asJwks(await fetchJson(deps.fetch, discovered.uri, fetchOptions), discovered.uri);
      };
    }
  }
}
