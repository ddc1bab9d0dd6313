import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startProgress } from "../../src/agent/progress.js";

describe("progress line for long waits", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("silent for 2 s, then a line every 10 s when not a terminal", () => {
    let out = "";
    const stop = startProgress("waiting for web", { write: (t: string) => (out += t) }, () => Date.now());
    vi.advanceTimersByTime(1500);
    expect(out).toBe("");
    vi.advanceTimersByTime(1000);
    expect(out).toBe("waiting for web (2s)\n");
    vi.advanceTimersByTime(10_000);
    expect(out.trim().split("\n")).toEqual(["waiting for web (2s)", "waiting for web (12s)"]);
    stop();
    vi.advanceTimersByTime(30_000);
    expect(out.trim().split("\n")).toHaveLength(2);
  });

  it("redrawn in place on a terminal and cleared when done", () => {
    let out = "";
    const stop = startProgress("waiting", { write: (t: string) => (out += t), isTTY: true }, () =>
      Date.now(),
    );
    vi.advanceTimersByTime(3000);
    expect(out).toBe("\rwaiting (2s)\u001b[K\rwaiting (3s)\u001b[K");
    stop();
    expect(out.endsWith("\r\u001b[K")).toBe(true);
  });
});
