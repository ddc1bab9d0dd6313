import { isCertfleetError } from "../core/errors.js";

/**
 * Timing inside one ACME issuance (the schedule between failed issuances is core/retry.ts):
 *
 * - Polling an authorization or order: the CA's Retry-After when it sends one; otherwise a short first
 *   wait that doubles up to a ceiling. A CA that validates in milliseconds (Pebble, most private CAs)
 *   is seen at once, a slow one is not hammered.
 * - A request that is safe to repeat and lost its connection (a reset keep-alive socket, a broken
 *   pipe) is sent again after a short pause, a bounded number of times (acme-transport.ts).
 */

/** First wait before polling again when the CA sends no Retry-After. */
export const FIRST_POLL_DELAY_MS = 50;

/**
 * Wait after poll number `poll` (1, 2, …): the CA's Retry-After (seconds) when it sent one (the caller's
 * deadline bounds it), otherwise FIRST_POLL_DELAY_MS doubling per poll up to `maxMs`.
 */
export function pollDelayMs(poll: number, retryAfterSeconds: number | undefined, maxMs: number): number {
  if (retryAfterSeconds !== undefined) return retryAfterSeconds * 1000;
  const backoff = FIRST_POLL_DELAY_MS * 2 ** Math.min(Math.max(poll - 1, 0), 20);
  return Math.min(backoff, Math.max(maxMs, FIRST_POLL_DELAY_MS));
}

/** Pause before resending after the `attempt`-th connection error (1, 2, …): 50 ms, 200 ms, 450 ms … */
export function connectionRetryDelayMs(attempt: number): number {
  return 50 * attempt * attempt;
}

/** Socket-level failure codes after which the request's fate at the CA is unknown but may be repeated. */
const CONNECTION_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

/**
 * True for an `acme_unreachable` error caused by a lost connection (not a timeout, not a refused
 * connection or a TLS failure, which a quick resend would not fix).
 */
export function isConnectionError(e: unknown): boolean {
  if (!isCertfleetError(e) || e.code !== "acme_unreachable") return false;
  for (let cause: unknown = e.cause, depth = 0; cause && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}
