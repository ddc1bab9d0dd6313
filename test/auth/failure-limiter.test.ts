import { describe, expect, it } from "vitest";
import { addressKey, createFailureLimiter } from "../../src/auth/failure-limiter.js";
import { createManualClock } from "../../src/core/clock.js";

describe("failure limiter", () => {
  it("blocks a key after maxFailures in the window and frees it as failures age out", () => {
    const clock = createManualClock(new Date("2026-01-01T00:00:00Z"));
    const limiter = createFailureLimiter({ clock, maxFailures: 3, windowMs: 60_000 });
    limiter.recordFailure("addr:1");
    clock.advance(10_000);
    limiter.recordFailure("addr:1");
    expect(limiter.blockedFor("addr:1")).toBeUndefined();
    limiter.recordFailure("addr:1");
    expect(limiter.blockedFor("addr:1")).toBe(50); // the first failure leaves the window in 50 s
    expect(limiter.blockedFor("addr:2")).toBeUndefined();
    clock.advance(50_000);
    expect(limiter.blockedFor("addr:1")).toBeUndefined();
  });

  it("stays bounded, forgetting the least recently touched key", () => {
    const clock = createManualClock(new Date("2026-01-01T00:00:00Z"));
    const limiter = createFailureLimiter({ clock, maxFailures: 1, maxEntries: 100 });
    limiter.recordFailure("keep");
    for (let i = 0; i < 1000; i++) {
      limiter.recordFailure(`flood-${i}`);
      if (i % 50 === 0) limiter.recordFailure("keep");
    }
    expect(limiter.size()).toBe(100);
    expect(limiter.blockedFor("keep")).toBeGreaterThan(0);
    expect(limiter.blockedFor("flood-0")).toBeUndefined();
  });

  it("groups IPv6 sources by /64 and unwraps IPv4-mapped addresses", () => {
    expect(addressKey("::ffff:10.0.0.1")).toBe("addr:10.0.0.1");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe(addressKey("2001:db8:1:2:bbbb::2"));
    expect(addressKey("2001:db8:1:2::1")).not.toBe(addressKey("2001:db8:1:3::1"));
  });
});
