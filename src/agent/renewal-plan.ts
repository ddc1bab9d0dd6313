import { CertfleetError } from "../core/errors.js";
import { nextRetryDelayMs } from "../core/retry.js";

/**
 * When the daemon next talks to the server about one certificate. Pure; `random` is injectable.
 *
 * - After a good answer: at the server-announced `renewAt` plus a random jitter (at most `jitterMs`,
 *   and at most a quarter of the time left after renewAt), so a fleet does not arrive all at once; at
 *   least every `maxIntervalMs` regardless.
 * - When the answer is already past its renewAt (the server has not renewed it yet): again after a
 *   twentieth of the remaining lifetime, between 30 s and 1 h.
 * - After a failure: the core retry schedule (core/retry.ts, Retry-After respected), but never later
 *   than a quarter of the installed certificate's remaining lifetime (at least 30 s), so a certificate
 *   close to expiry is retried more eagerly.
 *
 * Every bound (max_interval, the 30 s–1 h re-check, the near-expiry cap) is itself spread over its last
 * tenth at random, so agents started together (a fleet after a power cut, every certificate of one
 * agent) do not keep waking in lockstep. The spread only ever makes a wake earlier, never later than
 * the bound; an upstream Retry-After is never shortened.
 */
export interface PlanInput {
  now: Date;
  random?: () => number;
}

const MIN_DELAY_MS = 30_000;
const HOUR_MS = 3_600_000;
/** Fraction of a bound over which wakes are spread (earlier only). */
export const WAKE_SPREAD = 0.1;

const spread = (bound: number, random: () => number) => bound * (1 - WAKE_SPREAD * random());

export function delayAfterSuccess(
  input: PlanInput & { renewAt: Date; notAfter: Date; jitterMs: number; maxIntervalMs: number },
): number {
  const random = input.random ?? Math.random;
  const now = input.now.getTime();
  const renewAt = input.renewAt.getTime();
  const notAfter = input.notAfter.getTime();
  if (renewAt > now) {
    const window = Math.max(0, Math.min(input.jitterMs, (notAfter - renewAt) / 4));
    return Math.min(renewAt - now + random() * window, spread(input.maxIntervalMs, random));
  }
  const remaining = Math.max(0, notAfter - now);
  return spread(Math.min(Math.max(remaining / 20, MIN_DELAY_MS), HOUR_MS, input.maxIntervalMs), random);
}

export function delayAfterFailure(
  input: PlanInput & {
    failures: number;
    error: unknown;
    /** Expiry of the certificate currently installed, if any. */
    installedNotAfter: Date | undefined;
    retryDelay?: (failures: number, error: unknown) => number;
  },
): number {
  const base = (input.retryDelay ?? ((f, e) => nextRetryDelayMs(f, e, input.random)))(
    input.failures,
    input.error,
  );
  if (!input.installedNotAfter) return base;
  const remaining = input.installedNotAfter.getTime() - input.now.getTime();
  const retryAfterMs =
    input.error instanceof CertfleetError && input.error.retryAfter !== undefined
      ? input.error.retryAfter * 1000
      : 0;
  const cap = Math.max(
    spread(Math.max(remaining / 4, MIN_DELAY_MS), input.random ?? Math.random),
    retryAfterMs,
  );
  return Math.min(base, cap);
}
