import { sleep, type Clock } from "../core/clock.js";
import { CertfleetError, UpstreamError, throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { parseRetryAfter } from "../core/retry.js";
import { randomInt } from "node:crypto";
import { z } from "zod";

/**
 * The small HTTP client every API-based DNS provider uses, so they all fail the same way:
 *
 * - 401 / 403 (or a provider-specific "bad credentials" body) → `dns_provider_auth`, never retried:
 *   waiting does not fix a wrong token, and hammering an API with one gets accounts locked.
 * - 429, and 503 with Retry-After → retried here only while the wait is short (`maxRetryWaitMs`) and
 *   attempts are left; otherwise `dns_provider_rate_limited` carrying `retryAfter` for core/retry.ts.
 * - other 5xx and network errors → retried here for idempotent methods only (a POST that may have
 *   been applied is not repeated), then `dns_provider_error`, retryable.
 * - other 4xx → `dns_provider_error`, not retryable, unless the caller lists the status in `accept`
 *   (404 on delete, 409/412 for optimistic-concurrency loops).
 *
 * Every message names the provider and the zone. Response bodies are capped and kept out of the
 * message (they go to `internal`); request headers are never logged.
 */
export interface ProviderHttpOptions {
  /** Registry id, used in every message. */
  provider: string;
  fetch: typeof globalThis.fetch;
  logger: Logger;
  clock: Clock;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** After credentials are rejected for a zone, answer with that error without calling the API (default 60 s). */
  authCooldownMs?: number;
  /** Attempts per request, including the first. */
  maxAttempts?: number;
  /** Longest upstream Retry-After honoured by waiting inside one request. */
  maxRetryWaitMs?: number;
  /** Recognise bad credentials reported with another status, e.g. Cloudflare's 400 + code 9109. */
  isAuthFailure?(status: number, body: string): boolean;
}

export interface ProviderRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string | URL;
  zone: string;
  /** What this call does, for messages: "create TXT record". */
  action: string;
  headers?: Record<string, string>;
  /** Serialised as JSON with a JSON content type. */
  json?: unknown;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** Raw body; set the content type in `headers`. */
  body?: string;
  /** Non-2xx statuses handed back to the caller instead of thrown. */
  accept?: readonly number[];
  signal: AbortSignal;
}

export interface ProviderResponse {
  status: number;
  headers: Headers;
  text: string;
  json<T>(): T;
}

export interface ProviderHttp {
  request(req: ProviderRequest): Promise<ProviderResponse>;
  /** Parse JSON from a successful response, failing with a provider-named error on garbage. */
  requestJson<T>(req: ProviderRequest): Promise<T>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const IDEMPOTENT = new Set(["GET", "PUT", "DELETE"]);

export function createProviderHttp(options: ProviderHttpOptions): ProviderHttp {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const maxRetryWaitMs = options.maxRetryWaitMs ?? 10_000;
  const name = options.provider;
  const authCooldownMs = options.authCooldownMs ?? 60_000;
  // Credentials a zone's API just rejected are not sent again for a while: the cleanup that follows a
  // failed present (and any caller retrying at once) gets the same error without another request.
  const rejected = new Map<string, { until: number; error: UpstreamError }>();

  async function request(req: ProviderRequest): Promise<ProviderResponse> {
    const refusedRecently = rejected.get(req.zone);
    if (refusedRecently && refusedRecently.until > options.clock.now().getTime()) throw refusedRecently.error;
    const headers: Record<string, string> = { accept: "application/json", ...req.headers };
    let body: string | undefined = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers["content-type"] ??= "application/json";
    } else if (req.form !== undefined) {
      body = new URLSearchParams(req.form).toString();
      headers["content-type"] ??= "application/x-www-form-urlencoded";
    }
    const idempotent = IDEMPOTENT.has(req.method);
    const details = { provider: name, zone: req.zone, action: req.action };

    for (let attempt = 1; ; attempt++) {
      throwIfAborted(req.signal);
      const last = attempt >= maxAttempts;
      let response: Response;
      let text: string;
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        response = await options.fetch(req.url, {
          method: req.method,
          headers,
          body,
          signal: AbortSignal.any([req.signal, timeout]),
          redirect: "error",
        });
        text = await readBounded(response);
      } catch (e) {
        if (req.signal.aborted) {
          throw new CertfleetError("aborted", "operation was cancelled", {
            status: 499,
            cause: req.signal.reason,
          });
        }
        const timedOut = timeout.aborted;
        const reason = timedOut
          ? `timed out after ${timeoutMs} ms`
          : `network error: ${(e as Error).message}`;
        if (!last && idempotent) {
          await backoff(attempt, undefined, req.signal);
          continue;
        }
        throw new UpstreamError(
          timedOut ? "dns_provider_timeout" : "dns_provider_error",
          `${name}: ${req.action} for zone ${req.zone} failed: ${reason}`,
          { cause: e, details, internal: (e as Error).message },
        );
      }

      const status = response.status;
      options.logger.debug(
        { provider: name, zone: req.zone, action: req.action, status, attempt },
        "dns api call",
      );
      const ok = status >= 200 && status < 300;
      const snippet = text.slice(0, 2048);
      // Checked before `accept`: a provider that reports bad credentials as a 400 must not have that
      // 400 handed back as, say, a conflict.
      if (!ok && (status === 401 || status === 403 || options.isAuthFailure?.(status, text))) {
        const error = new UpstreamError(
          "dns_provider_auth",
          `${name}: credentials rejected while trying to ${req.action} for zone ${req.zone} (HTTP ${status})`,
          { details: { ...details, status }, internal: snippet, retryable: false },
        );
        rejected.set(req.zone, { until: options.clock.now().getTime() + authCooldownMs, error });
        throw error;
      }
      if (ok || req.accept?.includes(status)) {
        return { status, headers: response.headers, text, json: <T>() => parseJson<T>(text, name, req) };
      }

      const retryAfter = parseRetryAfter(response.headers.get("retry-after"), options.clock.now());
      const refused = status === 429 || (status === 503 && retryAfter !== undefined);
      if (refused || status >= 500) {
        const mayRetry = !last && (refused || idempotent);
        const waitMs = (retryAfter ?? 0) * 1000;
        if (mayRetry && waitMs <= maxRetryWaitMs) {
          await backoff(attempt, retryAfter, req.signal);
          continue;
        }
        throw new UpstreamError(
          status === 429 ? "dns_provider_rate_limited" : "dns_provider_error",
          `${name}: ${req.action} for zone ${req.zone} failed: HTTP ${status}${status === 429 ? " (rate limited)" : ""}`,
          {
            details: { ...details, status },
            internal: snippet,
            retryAfter: retryAfter ?? (status === 429 ? 1 : undefined),
          },
        );
      }
      throw new UpstreamError(
        "dns_provider_error",
        `${name}: ${req.action} for zone ${req.zone} was refused: HTTP ${status}`,
        { details: { ...details, status }, internal: snippet, retryable: false },
      );
    }
  }

  return {
    request,
    async requestJson<T>(req: ProviderRequest): Promise<T> {
      return (await request(req)).json<T>();
    },
  };
}

/** Wait before the next attempt: the upstream's Retry-After when given, else 250 ms doubling. */
function backoff(attempt: number, retryAfterSeconds: number | undefined, signal: AbortSignal): Promise<void> {
  const ms = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : 250 * 2 ** (attempt - 1);
  return sleep(ms, signal).catch(() => {
    throw new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
  });
}

function parseJson<T>(text: string, provider: string, req: ProviderRequest): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UpstreamError(
      "dns_provider_error",
      `${provider}: ${req.action} for zone ${req.zone} returned a response that is not JSON`,
      { cause: e, internal: text.slice(0, 512), details: { provider, zone: req.zone } },
    );
  }
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new Error(`response body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Build a URL from a configured base (which may carry a path prefix) and path segments. */
export function apiUrl(base: string, path: string, query?: Record<string, string | undefined>): URL {
  const url = new URL(base.replace(/\/+$/, "") + path);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

/** The signal cleanup runs under: deleteTxt takes none, but must still end. */
export function cleanupSignal(timeoutMs = 60_000): AbortSignal {
  return AbortSignal.timeout(timeoutMs);
}

/** `_acme-challenge.www` for name `_acme-challenge.www.example.com` in zone `example.com`; `@` at the apex. */
export function relativeName(name: string, zone: string): string {
  if (name === zone) return "@";
  if (!name.endsWith("." + zone)) {
    throw new CertfleetError("dns_name_outside_zone", `record ${name} is not inside zone ${zone}`, {
      status: 500,
    });
  }
  return name.slice(0, -(zone.length + 1));
}

/**
 * Serialise read-modify-write per key (one record name) inside this process: providers whose API
 * replaces a whole record set must not interleave two of their own updates to it.
 */
export function createKeyedMutex(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/** `promise`, or an `aborted` error as soon as `signal` fires (the work itself goes on for others). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    return Promise.reject(
      new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason }),
    );
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () =>
      reject(new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** OAuth errors that mean the credentials themselves are wrong (RFC 6749 §5.2). */
export function isOAuthCredentialError(status: number, body: string): boolean {
  if (status !== 400) return false;
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    return error === "invalid_grant" || error === "invalid_client" || error === "unauthorized_client";
  } catch {
    return false;
  }
}

/** The per-request timeout every HTTP provider's config offers (`timeoutMs`). */
export const requestTimeoutSchema = z
  .number()
  .int()
  .positive()
  .max(120_000)
  .default(30_000)
  .describe("Timeout of one API request, in milliseconds");

/** Optimistic-concurrency loops (If-Match, change batches) try this often before giving up. */
export const MAX_CONFLICT_RETRIES = 8;

/**
 * After a provider answered "the record set changed under you" (another challenge for the same name
 * wrote it): wait a short random time and let the caller read and write again — or, after
 * MAX_CONFLICT_RETRIES attempts, fail with `dns_provider_conflict` naming the provider and zone.
 */
export async function backOffAfterConflict(
  attempt: number,
  at: { provider: string; zone: string; name: string; internal?: string },
  signal: AbortSignal,
): Promise<void> {
  if (attempt >= MAX_CONFLICT_RETRIES) {
    throw new UpstreamError(
      "dns_provider_conflict",
      `${at.provider}: the TXT set ${at.name} in zone ${at.zone} kept changing under us`,
      {
        ...(at.internal !== undefined ? { internal: at.internal } : {}),
        details: { provider: at.provider, zone: at.zone, attempts: attempt },
      },
    );
  }
  await sleep(randomInt(20, 100 * attempt), signal).catch(() => throwIfAborted(signal));
}
