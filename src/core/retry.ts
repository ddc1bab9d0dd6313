import { CertfleetError, UpstreamError } from "./errors.js";

/**
 * The one retry policy. Failed issuance is retried on this schedule (with ±20% jitter); an upstream
 * Retry-After (429 / rateLimited / 503) pushes the next attempt out to at least that time. Errors that
 * cannot succeed by waiting (bad credentials, a rejected name, a bad CSR) are not retried: the failure
 * is recorded on the certificate and it waits for its next scheduled check or a manual retry.
 */
export const BACKOFF_SCHEDULE_MS: readonly number[] = [
  60_000, // 1 min
  5 * 60_000,
  15 * 60_000,
  60 * 60_000,
  3 * 60 * 60_000,
  6 * 60 * 60_000, // then every 6 h
];

/** Upper bound for any delay, including an upstream Retry-After. */
export const MAX_RETRY_DELAY_MS = 24 * 60 * 60_000;

export function isRetryable(error: unknown): boolean {
  if (error instanceof UpstreamError) return error.retryable;
  if (error instanceof CertfleetError) return error.status >= 500 || error.status === 429;
  return true;
}

/**
 * Delay before attempt number `failures + 1`, given `failures` consecutive failures so far (>= 1).
 * `random` is injectable so tests can pin the jitter.
 */
export function nextRetryDelayMs(
  failures: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  const index = Math.min(Math.max(failures, 1), BACKOFF_SCHEDULE_MS.length) - 1;
  const base = BACKOFF_SCHEDULE_MS[index]!;
  const jittered = base * (0.8 + 0.4 * random());
  const retryAfterMs =
    error instanceof CertfleetError && error.retryAfter !== undefined ? error.retryAfter * 1000 : 0;
  return Math.min(Math.max(jittered, retryAfterMs), MAX_RETRY_DELAY_MS);
}

/** Parse an HTTP Retry-After header (seconds or HTTP date) into seconds from `now`. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: Date = new Date(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}
