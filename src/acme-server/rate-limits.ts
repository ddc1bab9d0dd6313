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

const LOCK_TTL_MS = 30_000;
/** Longer than any count + insert takes; a request still waiting after this is told to come back. */
const LOCK_WAIT_MS = 10_000;

/** Run `fn` holding the account's order lock (shared by every replica through storage). */
export async function withAccountLock<T>(
  locks: Pick<LockStore, "tryLock" | "unlock">,
  accountId: string,
  signal: AbortSignal,
  fn: () => Promise<T>,
): Promise<T> {
  const name = `acme-orders:${accountId}`;
  const owner = randomUUID();
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!(await locks.tryLock(name, owner, LOCK_TTL_MS, signal))) {
    if (Date.now() > deadline)
      throw problem("rateLimited", "too many concurrent orders for this account", { retryAfter: 1 });
    await sleep(20 + Math.random() * 30, signal);
  }
  try {
    return await fn();
  } finally {
    await locks.unlock(name, owner);
  }
}
