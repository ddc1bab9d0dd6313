/**
 * When to renew: one pure function. By default a certificate is renewed when a third of its lifetime
 * remains (so 6-day and 47-day certificates behave like 90-day ones), minus a random jitter so a fleet
 * issued together does not renew in the same minute. A CA's ARI window (RFC 9773), when offered, wins:
 * a uniformly random moment inside it, or now when the window has already begun to close.
 */
export interface RenewalPolicy {
  /** Renew when this fraction of the lifetime remains (0 < f < 1). */
  renewWhenRemaining: number;
  /** Absolute alternative: renew when fewer than this many days remain. */
  renewBeforeDays?: number;
  /** Fraction of the lifetime by which renewal may randomly come earlier. */
  renewJitter: number;
}

export interface RenewalInput {
  notBefore: Date;
  notAfter: Date;
  /** ARI suggested window, if the CA gave one. */
  ariWindow?: { start: Date; end: Date };
  now: Date;
  random?: () => number;
}

export function computeRenewAt(policy: RenewalPolicy, input: RenewalInput): Date {
  const random = input.random ?? Math.random;
  const start = input.notBefore.getTime();
  const end = input.notAfter.getTime();
  if (input.ariWindow) {
    const ws = input.ariWindow.start.getTime();
    const we = input.ariWindow.end.getTime();
    if (we <= input.now.getTime()) return new Date(input.now.getTime());
    const from = Math.max(ws, input.now.getTime());
    return new Date(from + random() * (we - from));
  }
  const lifetime = Math.max(0, end - start);
  const before =
    policy.renewBeforeDays !== undefined
      ? Math.min(policy.renewBeforeDays * 86_400_000, lifetime * 0.9)
      : lifetime * policy.renewWhenRemaining;
  // jitter scales with the lifetime but never more than half the renewal window itself
  const jitter = Math.min(lifetime * policy.renewJitter, before / 2) * random();
  return new Date(Math.max(start, end - before - jitter));
}

export function isRenewalDue(renewAt: Date, now: Date): boolean {
  return now.getTime() >= renewAt.getTime();
}
