import { describe, expect, it } from "vitest";
import { delayAfterFailure, delayAfterSuccess } from "../../src/agent/renewal-plan.js";
import { exitCodeFor, worstExitCode } from "../../src/agent/exit-codes.js";
import { AgentAuthError, InstallError } from "../../src/agent/agent-errors.js";
import { CertfleetError, ConfigError, UpstreamError } from "../../src/core/errors.js";

const H = 3_600_000;
const now = new Date("2030-01-01T00:00:00Z");
const at = (ms: number) => new Date(now.getTime() + ms);

describe("renewal plan", () => {
  it("after success: renewAt plus jitter, the jitter bounded by the config and by the time left", () => {
    const base = {
      now,
      renewAt: at(10 * H),
      notAfter: at(30 * H),
      jitterMs: 10 * 60_000,
      maxIntervalMs: 24 * H,
    };
    expect(delayAfterSuccess({ ...base, random: () => 0 })).toBe(10 * H);
    expect(delayAfterSuccess({ ...base, random: () => 1 })).toBe(10 * H + 10 * 60_000);
    // a short certificate: at most a quarter of (notAfter - renewAt)
    expect(delayAfterSuccess({ ...base, renewAt: at(1000), notAfter: at(2000), random: () => 1 })).toBe(1250);
    // never longer than max_interval
    expect(delayAfterSuccess({ ...base, renewAt: at(100 * H), notAfter: at(200 * H), random: () => 0 })).toBe(
      24 * H,
    );
  });

  it("spreads every periodic bound over its last tenth, so agents started together drift apart", () => {
    const base = { now, jitterMs: 0, maxIntervalMs: 24 * H };
    const capped = { ...base, renewAt: at(100 * H), notAfter: at(200 * H) };
    expect(delayAfterSuccess({ ...capped, random: () => 1 })).toBe(0.9 * 24 * H);
    expect(delayAfterSuccess({ ...capped, random: () => 0.5 })).toBeCloseTo(0.95 * 24 * H, 3);
    const past = { ...base, renewAt: at(-H), notAfter: at(100 * H) };
    expect(delayAfterSuccess({ ...past, random: () => 1 })).toBe(0.9 * H);
    // many draws: never above the bound, and not all equal
    const draws = Array.from({ length: 50 }, () => delayAfterSuccess(capped));
    expect(Math.max(...draws)).toBeLessThanOrEqual(24 * H);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0.9 * 24 * H);
    expect(new Set(draws).size).toBeGreaterThan(1);
    // an upstream Retry-After is never shortened by the spread
    const limited = new CertfleetError("rate_limited", "slow down", { status: 429, retryAfter: 3600 });
    expect(
      delayAfterFailure({ now, failures: 1, error: limited, installedNotAfter: at(2 * H), random: () => 1 }),
    ).toBe(H);
  });

  it("after success with a certificate already past renewAt: soon, between 30 s and 1 h", () => {
    const base = { now, jitterMs: 0, maxIntervalMs: 24 * H, random: () => 0 };
    expect(delayAfterSuccess({ ...base, renewAt: at(-H), notAfter: at(100 * H) })).toBe(H);
    expect(delayAfterSuccess({ ...base, renewAt: at(-H), notAfter: at(60_000) })).toBe(30_000);
  });

  it("after failure: the core backoff (with Retry-After), tightened near expiry", () => {
    const error = new UpstreamError("server_unreachable", "down");
    expect(
      delayAfterFailure({ now, failures: 1, error, installedNotAfter: undefined, random: () => 0.5 }),
    ).toBe(60_000);
    expect(
      delayAfterFailure({ now, failures: 4, error, installedNotAfter: at(100 * H), random: () => 0.5 }),
    ).toBe(H);
    expect(
      delayAfterFailure({ now, failures: 4, error, installedNotAfter: at(2 * H), random: () => 0 }),
    ).toBe(H / 2);
    // the near-expiry cap is spread over its last tenth, earlier only
    expect(
      delayAfterFailure({ now, failures: 4, error, installedNotAfter: at(2 * H), random: () => 1 }),
    ).toBe(0.9 * (H / 2));
    const limited = new CertfleetError("rate_limited", "slow down", { status: 429, retryAfter: 600 });
    expect(
      delayAfterFailure({
        now,
        failures: 1,
        error: limited,
        installedNotAfter: undefined,
        random: () => 0.5,
      }),
    ).toBe(600_000);
    expect(
      delayAfterFailure({ now, failures: 2, error, installedNotAfter: undefined, retryDelay: () => 5 }),
    ).toBe(5);
  });
});

describe("exit codes", () => {
  it("map errors to the documented codes", () => {
    expect(exitCodeFor(new ConfigError([]))).toBe(2);
    expect(exitCodeFor(new AgentAuthError("exec", "plugin_failed", "x"))).toBe(3);
    expect(exitCodeFor(new CertfleetError("unauthenticated", "x", { status: 401 }))).toBe(3);
    expect(exitCodeFor(new CertfleetError("domain_not_granted", "x", { status: 403 }))).toBe(4);
    expect(exitCodeFor(new UpstreamError("server_unreachable", "x"))).toBe(5);
    expect(exitCodeFor(new CertfleetError("rate_limited", "x", { status: 429 }))).toBe(5);
    expect(exitCodeFor(new InstallError("reload_failed", "x"))).toBe(6);
    expect(exitCodeFor(new CertfleetError("domain_invalid", "x", { status: 400 }))).toBe(1);
    expect(exitCodeFor(new Error("boom"))).toBe(1);
  });

  it("combine: the most actionable failure wins", () => {
    expect(worstExitCode([0, 0])).toBe(0);
    expect(worstExitCode([5, 3, 1])).toBe(3);
    expect(worstExitCode([1, 6, 5])).toBe(6);
  });
});
