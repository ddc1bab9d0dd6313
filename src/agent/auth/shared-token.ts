import type { Clock } from "../../core/clock.js";

/**
 * One token for the whole agent, shared by every certificate it syncs. The daemon runs one loop per
 * certificate, concurrently; without this each loop would fetch (or run a plugin for) its own token and,
 * once the token expired, each would present the stale one and fetch again — a fleet of certificates
 * multiplying 401s into the server's failure limit. Contract:
 *
 * - `get` returns the cached token while it is fresh. A token whose `exp` can be read (a JWT) is fresh
 *   until shortly before it: a quarter of the lifetime it had when it arrived, at most a minute. A token
 *   without a readable `exp` is fresh until the server refuses it. A token that arrives already expired
 *   is used as it is (asking again at once would only spin); the server's answer decides.
 * - Concurrent `get`s while no fresh token is cached share one fetch (single flight). The fetch runs
 *   under the signal of the caller that started it.
 * - `drop(token)` forgets the cached token only if it is still that token: when twelve requests come
 *   back 401 with the same stale token, the first drop starts one refresh and the other eleven find the
 *   new token (or the fetch in flight) instead of dropping it again.
 */
export interface SharedToken {
  get(signal: AbortSignal): Promise<string>;
  drop(token: string): void;
}

export const MAX_REFRESH_MARGIN_MS = 60_000;

export function createSharedToken(options: {
  clock: Clock;
  fetch: (signal: AbortSignal) => Promise<string>;
}): SharedToken {
  let cached: { token: string; refreshAt: number | undefined } | undefined;
  let running: Promise<string> | undefined;
  const now = () => options.clock.now().getTime();

  return {
    async get(signal) {
      if (cached && (cached.refreshAt === undefined || cached.refreshAt > now())) return cached.token;
      running ??= options
        .fetch(signal)
        .then((token) => {
          cached = { token, refreshAt: refreshTime(token, now()) };
          return token;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
    drop(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

/** When a token obtained at `obtainedAt` should be replaced; undefined = until refused. */
export function refreshTime(token: string, obtainedAt: number): number | undefined {
  const exp = jwtExpiry(token)?.getTime();
  if (exp === undefined || exp <= obtainedAt) return undefined;
  return exp - Math.min(MAX_REFRESH_MARGIN_MS, (exp - obtainedAt) / 4);
}

/** `exp` of a compact JWT, read without verification; undefined for anything else. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" && Number.isFinite(payload.exp)
      ? new Date(payload.exp * 1000)
      : undefined;
  } catch {
    return undefined;
  }
}
