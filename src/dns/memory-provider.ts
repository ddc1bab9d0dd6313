import { throwIfAborted } from "../core/errors.js";
import type { DnsProvider, TxtRecord } from "./dns-provider.js";

/**
 * A DnsProvider that keeps TXT values in memory: for tests of code built on the DnsProvider seam and for
 * dry runs. Not registered as a configurable provider.
 */
export interface MemoryDnsProvider extends DnsProvider {
  /** Current values at `name` (insertion order). */
  values(name: string): string[];
  /** Every record currently held. */
  records(): TxtRecord[];
}

export function createMemoryDnsProvider(id = "memory"): MemoryDnsProvider {
  const byName = new Map<string, TxtRecord[]>();
  const normalize = (name: string) => name.toLowerCase().replace(/\.$/, "");

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const name = normalize(record.name);
      const list = byName.get(name) ?? [];
      if (!list.some((r) => r.value === record.value)) list.push({ ...record, name });
      byName.set(name, list);
    },
    async deleteTxt(record) {
      const name = normalize(record.name);
      const left = (byName.get(name) ?? []).filter((r) => r.value !== record.value);
      if (left.length > 0) byName.set(name, left);
      else byName.delete(name);
    },
    values(name) {
      return (byName.get(normalize(name)) ?? []).map((r) => r.value);
    },
    records() {
      return [...byName.values()].flat();
    },
  };
}
