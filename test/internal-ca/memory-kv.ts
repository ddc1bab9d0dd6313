import type { KeyValueStore } from "../../src/storage/storage.js";

/**
 * A Map-backed key/value store with Storage's getValue/putValue contract (misses are undefined,
 * `ifAbsent` returns the value that won). Every call yields to the event loop first, so concurrent
 * callers interleave the way separate replicas would. `secretKeys` records what was written as secret.
 */
export interface MemoryKv extends Pick<KeyValueStore, "getValue" | "putValue"> {
  readonly values: Map<string, string>;
  readonly secretKeys: Set<string>;
}

export function createMemoryKv(): MemoryKv {
  const values = new Map<string, string>();
  const secretKeys = new Set<string>();
  const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    values,
    secretKeys,
    async getValue(namespace, key, signal) {
      signal?.throwIfAborted();
      await yieldTurn();
      return values.get(`${namespace}/${key}`);
    },
    async putValue(namespace, key, value, options = {}, signal) {
      signal?.throwIfAborted();
      await yieldTurn();
      const k = `${namespace}/${key}`;
      const existing = values.get(k);
      if (options.ifAbsent && existing !== undefined) return existing;
      values.set(k, value);
      if (options.secret) secretKeys.add(k);
      else secretKeys.delete(k);
      return value;
    },
  };
}
