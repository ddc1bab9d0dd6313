import { randomUUID } from "node:crypto";
import { sleep } from "../core/clock.js";
import type { LockStore } from "../storage/storage.js";
import type { AcmeStore } from "../storage/acme-store.js";
import type { AcmeProfileConfig } from "./config.js";
import { problem } from "./problems.js";

/**
 * Per-account limits, counted in the database so they hold across replicas. newOrder counts and
 * creates under a per-account storage lock (`withAccountLock`), so concurrent requests — on one
 * replica or several — cannot slip past the limit together. Refusals are `rateLimited` (429) with a
 * Retry-After saying when a retry can succeed.
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

/**
 * The order lock's lease. The work under it (a count and an insert) takes milliseconds; the lease is
 * renewed while the work runs, so it only matters when a replica dies holding it: then it ends at most
 * this long after the last renewal.
 */
export const ORDER_LOCK_LEASE_MS = 6_000;
const ORDER_LOCK_RENEW_MS = 2_000;
/** A request waits this long for a held lock before it is told when to come back. */
const ORDER_LOCK_WAIT_MS = 1_500;

/**
 * Run `fn` holding the account's order lock (shared by every replica through storage). A lock held by
 * someone else is waited on briefly; after that the answer is `rateLimited` with a Retry-After that
 * says when the holder's lease ends at the latest (we first saw it held `waited` ms ago, and a lease is
 * never longer than ORDER_LOCK_LEASE_MS from its last renewal), so a retry then finds a dead replica's
 * lock gone.
 */
export async function withAccountLock<T>(
  locks: Pick<LockStore, "tryLock" | "refreshLock" | "unlock">,
  accountId: string,
  signal: AbortSignal,
  fn: () => Promise<T>,
): Promise<T> {
  const name = `acme-orders:${accountId}`;
  const owner = randomUUID();
  const started = Date.now();
  while (!(await locks.tryLock(name, owner, ORDER_LOCK_LEASE_MS, signal))) {
    const waited = Date.now() - started;
    if (waited >= ORDER_LOCK_WAIT_MS) {
      throw problem("rateLimited", "another order of this account is being created; retry shortly", {
        retryAfter: Math.max(1, (ORDER_LOCK_LEASE_MS - waited) / 1000),
        internal: `order lock ${name} held`,
      });
    }
    await sleep(20 + Math.random() * 30, signal);
  }
  // Renew while the work runs, so a slow database never lets a second request in beside us.
  const renew = setInterval(() => {
    locks.refreshLock(name, owner, ORDER_LOCK_LEASE_MS).catch(() => undefined);
  }, ORDER_LOCK_RENEW_MS);
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await locks.unlock(name, owner);
  }
}
