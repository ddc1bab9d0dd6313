import { isIP } from "node:net";
import type { Clock } from "../core/clock.js";

/**
 * Counts failed authentications per key (a source address, a claimed identity) in a sliding window and
 * says when a key must wait. In memory, per replica, bounded: at most `maxEntries` keys are tracked and
 * the least recently touched key is forgotten first, so a flood of random addresses cannot grow it
 * without bound. A replica-local limit is enough to make online guessing of a 256-bit secret hopeless;
 * it is not a global quota.
 */

export interface FailureLimiterOptions {
  clock: Clock;
  /** Failures allowed in the window before a key is blocked (default 10). */
  maxFailures?: number;
  /** Sliding window length (default 5 minutes). */
  windowMs?: number;
  /** Keys tracked at most (default 10 000). */
  maxEntries?: number;
}

export interface FailureLimiter {
  /** Seconds until `key` may try again, or undefined when it is not blocked. */
  blockedFor(key: string): number | undefined;
  recordFailure(key: string): void;
  /** Keys currently tracked (for tests and metrics). */
  size(): number;
}

/**
 * The limiter key for a source address: IPv4 (and IPv4-mapped IPv6) as is, IPv6 by its /64, since one
 * host usually controls a whole /64.
 */
export function addressKey(remoteAddress: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  const address = mapped ? mapped[1]! : remoteAddress;
  if (isIP(address) !== 6) return `addr:${address}`;
  return `addr:${expandIpv6(address).slice(0, 4).join(":")}::/64`;
}

function expandIpv6(address: string): string[] {
  const withoutZone = address.split("%")[0]!;
  const [head, tail] = withoutZone.includes("::") ? withoutZone.split("::") : [withoutZone, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill("0"), ...right].map((g) =>
    g.toLowerCase().replace(/^0+(?=.)/, ""),
  );
}

export function createFailureLimiter(options: FailureLimiterOptions): FailureLimiter {
  const maxFailures = options.maxFailures ?? 10;
  const windowMs = options.windowMs ?? 5 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  // Map iteration order is insertion order: re-inserting on every touch makes the first key the LRU.
  const failures = new Map<string, number[]>();

  const recent = (key: string, now: number): number[] => {
    const times = (failures.get(key) ?? []).filter((t) => t > now - windowMs && t <= now);
    if (times.length === 0) failures.delete(key);
    return times;
  };

  return {
    blockedFor(key) {
      const now = options.clock.now().getTime();
      const times = recent(key, now);
      if (times.length < maxFailures) return undefined;
      // Blocked until enough of the oldest failures leave the window.
      const unblockAt = times[times.length - maxFailures]! + windowMs;
      return Math.max(1, Math.ceil((unblockAt - now) / 1000));
    },
    recordFailure(key) {
      const now = options.clock.now().getTime();
      const times = recent(key, now);
      times.push(now);
      // Only the newest maxFailures timestamps can matter.
      if (times.length > maxFailures) times.splice(0, times.length - maxFailures);
      failures.delete(key);
      failures.set(key, times);
      while (failures.size > maxEntries) {
        const oldest = failures.keys().next().value;
        if (oldest === undefined) break;
        failures.delete(oldest);
      }
    },
    size: () => failures.size,
  };
}
