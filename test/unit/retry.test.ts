import { describe, expect, it } from "vitest";
import { CertfleetError, UpstreamError, ValidationError } from "../../src/core/errors.js";
import { BACKOFF_SCHEDULE_MS, isRetryable, nextRetryDelayMs, parseRetryAfter } from "../../src/core/retry.js";

describe("retry policy", () => {
  it("walks the backoff table and stays on its last step", () => {
    const mid = () => 0.5;
    expect(nextRetryDelayMs(1, new Error("x"), mid)).toBe(BACKOFF_SCHEDULE_MS[0]);
    expect(nextRetryDelayMs(2, new Error("x"), mid)).toBe(BACKOFF_SCHEDULE_MS[1]);
    expect(nextRetryDelayMs(50, new Error("x"), mid)).toBe(BACKOFF_SCHEDULE_MS.at(-1));
  });
  it("respects an upstream Retry-After that is longer than the backoff", () => {
    const e = new UpstreamError("acme_rate_limited", "slow down", { retryAfter: 7200 });
    expect(nextRetryDelayMs(1, e, () => 0.5)).toBe(7_200_000);
  });
  it("caps any delay at a day", () => {
    const e = new UpstreamError("acme_rate_limited", "slow down", { retryAfter: 10 * 86400 });
    expect(nextRetryDelayMs(1, e, () => 0.5)).toBe(86_400_000);
  });
  it("does not retry what waiting cannot fix", () => {
    expect(isRetryable(new UpstreamError("dns_provider_auth", "bad token", { retryable: false }))).toBe(
      false,
    );
    expect(isRetryable(new ValidationError("csr_invalid", "bad"))).toBe(false);
    expect(isRetryable(new CertfleetError("x", "y", { status: 503 }))).toBe(true);
  });
  it("parses Retry-After as seconds or an HTTP date", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:01:00 GMT", now)).toBe(60);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
