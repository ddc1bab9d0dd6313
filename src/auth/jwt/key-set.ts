import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from "jose";
import type { Clock } from "../../core/clock.js";
import { UpstreamError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";

/**
 * A cached JSON Web Key Set for one issuer, used as jose's key-resolution function.
 *
 * - The set is loaded on first use and reused for `maxAgeMs`; after that the next token triggers a
 *   refresh. If the refresh fails, the old set stays usable for at most `maxStaleMs` more, so a short
 *   provider outage does not lock every agent out.
 * - A token whose `kid` is not in the set triggers one refresh — unless a fetch happened less than
 *   `cooldownMs` ago, so random `kid`s cannot make us hammer the provider.
 * - Concurrent refreshes share one fetch. Time comes from the injected clock.
 *
 * The loader does the I/O (discovery + JWKS URL, a SPIFFE bundle file or endpoint) and must apply its
 * own timeout.
 */

export type KeySetLoader = () => Promise<JSONWebKeySet>;
type GetKey = ReturnType<typeof createLocalJWKSet>;
export type ResolvedKey = Awaited<ReturnType<GetKey>>;

export interface CachedKeySetOptions {
  load: KeySetLoader;
  clock: Clock;
  logger: Logger;
  /** For log lines. */
  label: string;
  maxAgeMs: number;
  cooldownMs: number;
  /** How long past maxAgeMs a set may still be used when refreshing fails (default 1 hour). */
  maxStaleMs?: number;
}

export interface CachedKeySet {
  /** The key for a token header; jose's JWKS errors (JWKSNoMatchingKey, …) pass through. */
  keyFor(header: JWSHeaderParameters, token: FlattenedJWSInput, signal: AbortSignal): Promise<ResolvedKey>;
  /** Fetch now, regardless of age (not of cooldown). */
  refresh(signal: AbortSignal): Promise<void>;
  /**
   * An opaque handle on the loaded set while it is younger than `maxAgeMs`, else undefined. Every load
   * yields a new handle, so a caller remembering work done with one set can tell when it was replaced.
   */
  freshSet(): object | undefined;
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export function createCachedKeySet(options: CachedKeySetOptions): CachedKeySet {
  const maxStaleMs = options.maxStaleMs ?? 60 * 60_000;
  const now = () => options.clock.now().getTime();
  let current: { getKey: GetKey; loadedAt: number } | undefined;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<GetKey> | undefined;
  // Reported again while cooling down, so callers see the same cause until the next attempt.
  let lastError: unknown;

  const coolingDown = () => {
    const t = now();
    return t >= lastAttemptAt && t - lastAttemptAt < options.cooldownMs;
  };

  const reload = (signal: AbortSignal): Promise<GetKey> => {
    // The shared fetch is not tied to one caller's signal; each caller stops waiting on its own.
    inflight ??= (async () => {
      lastAttemptAt = now();
      try {
        const jwks = await options.load();
        let getKey: GetKey;
        try {
          getKey = createLocalJWKSet(jwks);
        } catch (e) {
          throw new UpstreamError(
            "identity_provider_unavailable",
            "the identity provider's key set is invalid",
            {
              status: 503,
              internal: `${options.label}: ${e instanceof Error ? e.message : String(e)}`,
              retryAfter: Math.ceil(options.cooldownMs / 1000),
            },
          );
        }
        current = { getKey, loadedAt: now() };
        lastError = undefined;
        options.logger.debug({ issuer: options.label, keys: jwks.keys.length }, "key set loaded");
        return getKey;
      } catch (e) {
        lastError = e;
        throw e;
      } finally {
        inflight = undefined;
      }
    })();
    return raceSignal(inflight, signal);
  };

  const fresh = () => {
    const t = now();
    return current && t - current.loadedAt < options.maxAgeMs && t >= current.loadedAt ? current : undefined;
  };

  const usable = async (signal: AbortSignal): Promise<GetKey> => {
    const t = now();
    if (fresh()) return current!.getKey;
    const staleButAllowed = current !== undefined && t - current.loadedAt < options.maxAgeMs + maxStaleMs;
    if (coolingDown()) {
      if (current && staleButAllowed) return current.getKey;
      if (lastError !== undefined) throw lastError;
      throw new UpstreamError("identity_provider_unavailable", "the identity provider could not be reached", {
        status: 503,
        internal: `${options.label}: no key set (last fetch failed, cooling down)`,
        retryAfter: Math.ceil(options.cooldownMs / 1000),
      });
    }
    try {
      return await reload(signal);
    } catch (e) {
      if (current && staleButAllowed && !signal.aborted) {
        options.logger.warn(
          { issuer: options.label, err: e instanceof Error ? e.message : String(e) },
          "key set refresh failed; using the previous set",
        );
        return current.getKey;
      }
      throw e;
    }
  };

  return {
    async keyFor(header, token, signal) {
      const getKey = await usable(signal);
      try {
        return await getKey(header, token);
      } catch (e) {
        if (!(e instanceof errors.JWKSNoMatchingKey) || coolingDown()) throw e;
        options.logger.info(
          { issuer: options.label, kid: header.kid?.slice(0, 64) },
          "unknown kid: refreshing key set",
        );
        const fresh = await reload(signal);
        return fresh(header, token);
      }
    },
    async refresh(signal) {
      await reload(signal);
    },
    freshSet: fresh,
  };
}
