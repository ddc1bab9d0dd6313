/**
 * The one error base class. Every error certfleet raises on purpose is a CertfleetError with a stable
 * `code` (tests and clients branch on it, never on message text), an HTTP status, and a flag saying
 * whether its message may be shown to the caller. `internal` carries detail for logs and the audit
 * trail only; it is never serialised into a response.
 */
export interface ErrorOptions {
  status?: number;
  /** May the message be shown to an API caller? Defaults to true for 4xx, false for 5xx. */
  expose?: boolean;
  /** Detail for logs / audit only. Never sent to a client. */
  internal?: string;
  /** Structured, caller-safe detail (e.g. the offending name). */
  details?: Record<string, unknown>;
  /** Seconds a caller should wait before trying again (429 / 503). */
  retryAfter?: number;
  cause?: unknown;
}

export class CertfleetError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  readonly internal: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? this.status < 500;
    this.internal = options.internal;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }
}

/** A configuration file or environment value is wrong. `path` names the key, e.g. `acme.caDirUrl`. */
export class ConfigError extends CertfleetError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: readonly { path: string; message: string }[]) {
    super(
      "config_invalid",
      "invalid configuration:\n" + issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"),
      { status: 500, expose: false },
    );
    this.issues = issues;
  }
}

/** The caller sent something we refuse to act on. */
export class ValidationError extends CertfleetError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, { status: 400, details });
  }
}

export class AuthenticationError extends CertfleetError {
  /** `reason` goes to the audit log; the caller only ever sees a generic message. */
  constructor(reason: string, code = "unauthenticated", details?: Record<string, unknown>) {
    super(code, "authentication required", { status: 401, internal: reason, details });
  }
}

export class ForbiddenError extends CertfleetError {
  constructor(code: string, message: string, internal?: string, details?: Record<string, unknown>) {
    super(code, message, { status: 403, internal, details });
  }
}

export class RateLimitedError extends CertfleetError {
  constructor(code: string, message: string, retryAfterSeconds: number, internal?: string) {
    super(code, message, { status: 429, retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)), internal });
  }
}

/**
 * A failure talking to something upstream (an ACME CA, a DNS API). `retryable` drives the retry
 * policy in core/retry.ts; `retryAfter` carries an upstream Retry-After in seconds.
 */
export class UpstreamError extends CertfleetError {
  readonly retryable: boolean;
  constructor(code: string, message: string, options: ErrorOptions & { retryable?: boolean } = {}) {
    super(code, message, { status: 502, expose: true, ...options });
    this.retryable = options.retryable ?? true;
  }
}

export function isCertfleetError(e: unknown): e is CertfleetError {
  return e instanceof CertfleetError;
}

/** Turn anything thrown into a CertfleetError without losing the original as `cause`. */
export function toCertfleetError(e: unknown): CertfleetError {
  if (e instanceof CertfleetError) return e;
  if (e instanceof Error && e.name === "AbortError") {
    return new CertfleetError("aborted", "operation was cancelled", {
      status: 499,
      cause: e,
      internal: e.message,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CertfleetError("internal_error", "internal error", { status: 500, internal: message, cause: e });
}

/** Throw the signal's reason as an AbortError-shaped CertfleetError if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
  }
}
