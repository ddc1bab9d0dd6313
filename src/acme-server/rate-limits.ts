import type { AcmeStore } from "./acme-store.js";
import type { AcmeProfileConfig } from "./config.js";
import { problem } from "./problems.js";

/**
 * Per-account limits (counted in the database, so they hold across replicas — approximately: two
 * replicas racing at the limit may both let one more through). Refusals are `rateLimited` (429) with
 * a Retry-After saying when a retry can succeed.
 */
const HOUR_MS = 60 * 60_000;
/** Pending authorizations free up as they are validated or expire; a client should come back soon. */
const PENDING_RETRY_SECONDS = 60;

export async function checkOrderRate(
  store: Pick<AcmeStore, "countOrdersSince">,
  profile: AcmeProfileConfig,
  accountId: string,
  now: Date,
  signal?: AbortSignal,
): Promise<void> {
  const { count, oldest } = await store.countOrdersSince(
    accountId,
    new Date(now.getTime() - HOUR_MS),
    signal,
  );
  if (count < profile.ordersPerHour) return;
  const retryAfter = oldest ? (oldest.getTime() + HOUR_MS - now.getTime()) / 1000 : 3600;
  throw problem("rateLimited", `at most ${profile.ordersPerHour} new orders per account per hour`, {
    retryAfter: Math.max(1, retryAfter),
  });
}

export async function checkPendingAuthorizations(
  store: Pick<AcmeStore, "countPendingAuthorizations">,
  profile: AcmeProfileConfig,
  accountId: string,
  adding: number,
  now: Date,
  signal?: AbortSignal,
): Promise<void> {
  const pending = await store.countPendingAuthorizations(accountId, now, signal);
  if (pending + adding <= profile.maxPendingAuthorizations) return;
  throw problem(
    "rateLimited",
    `at most ${profile.maxPendingAuthorizations} pending authorizations per account`,
    {
      retryAfter: PENDING_RETRY_SECONDS,
    },
  );
}
