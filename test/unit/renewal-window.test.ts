import { describe, expect, it } from "vitest";
import { computeRenewAt, isRenewalDue } from "../../src/issuance/renewal-window.js";

const day = 86_400_000;
const policy = { renewWhenRemaining: 1 / 3, renewJitter: 0 };

describe("computeRenewAt", () => {
  it.each([
    [90, 60],
    [47, 47 - 47 / 3],
    [6, 4],
  ])("a %i-day certificate renews at day %d", (lifetime, at) => {
    const notBefore = new Date(0);
    const renewAt = computeRenewAt(policy, { notBefore, notAfter: new Date(lifetime * day), now: notBefore });
    expect(renewAt.getTime() / day).toBeCloseTo(at, 5);
  });

  it("jitter only moves renewal earlier, bounded by the jitter fraction", () => {
    const input = { notBefore: new Date(0), notAfter: new Date(90 * day), now: new Date(0) };
    const late = computeRenewAt({ ...policy, renewJitter: 0.1 }, { ...input, random: () => 0 });
    const early = computeRenewAt({ ...policy, renewJitter: 0.1 }, { ...input, random: () => 0.999999 });
    expect(late.getTime()).toBe(60 * day);
    expect(early.getTime()).toBeGreaterThan(51 * day - 1);
    expect(early.getTime()).toBeLessThan(late.getTime());
  });

  it("jitter never exceeds half the renewal window, even for long-lived certificates", () => {
    const fiveYears = { notBefore: new Date(0), notAfter: new Date(5 * 365 * day), now: new Date(0) };
    const r = computeRenewAt(
      { ...policy, renewJitter: 0.05, renewBeforeDays: 30 },
      { ...fiveYears, random: () => 0.999999 },
    );
    expect((fiveYears.notAfter.getTime() - r.getTime()) / day).toBeLessThanOrEqual(45);
    expect((fiveYears.notAfter.getTime() - r.getTime()) / day).toBeGreaterThan(44.9);
  });

  it("renewBeforeDays overrides the fraction but never exceeds the lifetime", () => {
    const input = { notBefore: new Date(0), notAfter: new Date(90 * day), now: new Date(0) };
    expect(computeRenewAt({ ...policy, renewBeforeDays: 30 }, input).getTime()).toBe(60 * day);
    const short = { notBefore: new Date(0), notAfter: new Date(6 * day), now: new Date(0) };
    expect(computeRenewAt({ ...policy, renewBeforeDays: 30 }, short).getTime()).toBeGreaterThan(0);
  });

  it("follows an ARI window: a moment inside it, or now when it has passed", () => {
    const base = { notBefore: new Date(0), notAfter: new Date(90 * day) };
    const ariWindow = { start: new Date(10 * day), end: new Date(11 * day) };
    const r = computeRenewAt(policy, { ...base, ariWindow, now: new Date(0), random: () => 0.5 });
    expect(r.getTime()).toBe(10.5 * day);
    const now = new Date(12 * day);
    expect(computeRenewAt(policy, { ...base, ariWindow, now }).getTime()).toBe(now.getTime());
  });

  it("isRenewalDue compares with now", () => {
    expect(isRenewalDue(new Date(10), new Date(9))).toBe(false);
    expect(isRenewalDue(new Date(10), new Date(10))).toBe(true);
  });
});
