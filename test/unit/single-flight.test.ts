import { describe, expect, it } from "vitest";
import { SingleFlight } from "../../src/issuance/single-flight.js";

describe("SingleFlight", () => {
  it("runs the work once for concurrent callers", async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    let release!: (v: number) => void;
    const work = () => {
      runs++;
      return new Promise<number>((r) => (release = r));
    };
    const calls = Array.from({ length: 20 }, () => sf.do("k", work));
    release(42);
    const results = await Promise.all(calls);
    expect(runs).toBe(1);
    expect(results.map((r) => r.value)).toEqual(Array(20).fill(42));
    expect(results.filter((r) => !r.shared)).toHaveLength(1);
    expect(sf.size).toBe(0);
  });

  it("a caller that gives up does not cancel the work", async () => {
    const sf = new SingleFlight<string>();
    let release!: (v: string) => void;
    let finished = false;
    const work = () =>
      new Promise<string>((r) => (release = r)).then((v) => {
        finished = true;
        return v;
      });
    const ac = new AbortController();
    const first = sf.do("k", work, ac.signal);
    const second = sf.do("k", work);
    ac.abort(new Error("client went away"));
    await expect(first).rejects.toThrow("client went away");
    release("done");
    expect((await second).value).toBe("done");
    expect(finished).toBe(true);
  });
});
