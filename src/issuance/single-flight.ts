/**
 * Concurrent callers asking for the same key share one in-flight promise. The work runs detached from
 * any caller: a caller that gives up (its signal aborts) stops waiting, the work goes on and its result
 * is stored for the next caller.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Run `work` unless a run for `key` is in flight; wait for the shared result or `signal`. */
  do(key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<{ value: T; shared: boolean }> {
    let shared = true;
    let p = this.inflight.get(key);
    if (!p) {
      shared = false;
      p = work().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
      p.catch(() => undefined); // observed by callers; never an unhandled rejection when all gave up
    }
    return waitFor(p, signal).then((value) => ({ value, shared }));
  }

  has(key: string): boolean {
    return this.inflight.has(key);
  }

  get size(): number {
    return this.inflight.size;
  }
}

export function waitFor<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
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
