/**
 * Cross-replica locks with a time to live. A lock is a row naming its owner; whoever holds a lock past
 * its expiry may lose it to the next `tryLock`. Each call is one statement, so concurrent callers see
 * exactly one winner.
 */
export interface LockStore {
  /** Try once. True if `owner` now holds `name` until `ttlMs` from now (an expired lock is taken over). */
  tryLock(name: string, owner: string, ttlMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Extend a held lock. False if it is no longer ours. Always runs; no signal. */
  refreshLock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Always runs; releasing a lock we do not hold is a no-op. */
  unlock(name: string, owner: string): Promise<void>;
  /**
   * Release every lock whose owner starts with `ownerPrefix` except `currentOwner`'s: a restarted
   * process takes back, at once, the locks its previous life left behind. Returns how many.
   */
  releaseStaleLocks(ownerPrefix: string, currentOwner: string): Promise<number>;
}
