import { CertfleetError, UpstreamError } from "../../core/errors.js";
import { parseRetryAfter } from "../../core/retry.js";

/**
 * Turn a non-2xx answer of the certfleet server into a CertfleetError carrying the server's own stable
 * `code`, its status and Retry-After, so the agent's exit codes and retry decisions follow the server.
 * Answers that are not the server's error shape (a proxy's HTML page) become `server_error` /
 * `server_answer_invalid`.
 */
export function serverError(status: number, body: string, retryAfterHeader: string | null): CertfleetError {
  const retryAfter = parseRetryAfter(retryAfterHeader);
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  const code =
    typeof parsed?.error?.code === "string"
      ? parsed.error.code
      : status >= 500
        ? "server_error"
        : "server_refused";
  const message =
    typeof parsed?.error?.message === "string" ? parsed.error.message : `the server answered ${status}`;
  const details =
    parsed?.error?.details && typeof parsed.error.details === "object"
      ? (parsed.error.details as Record<string, unknown>)
      : undefined;
  if (status >= 500)
    return new UpstreamError(code, message, { status, retryAfter, details, internal: body.slice(0, 300) });
  return new CertfleetError(code, message, { status, expose: true, retryAfter, details });
}
