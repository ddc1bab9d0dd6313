import type { z } from "zod";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { DnsProvider } from "./dns-provider.js";

/**
 * A DNS provider is described by metadata, not chosen by a switch: its id (and aliases users bring from
 * other tools), a config schema, which fields are secret (redacted in logs and the dashboard), and a
 * factory. The list of all definitions lives in providers/index.ts.
 */
export interface DnsProviderDefinition<C = unknown> {
  /** certfleet's id, e.g. "cloudflare". */
  id: string;
  /** Other ids accepted in config, e.g. "cf" (Akash docs), lego's code when it differs. */
  aliases: readonly string[];
  /** lego's provider code, when lego has this provider. */
  legoCode?: string;
  /** lego environment-variable credential names → certfleet config keys, for le-cert-server configs. */
  legoEnv?: Readonly<Record<string, string>>;
  description: string;
  /** Validates the provider's config block (strict: unknown keys are errors). */
  schema: z.ZodType<C>;
  /** Top-level config keys holding secrets. */
  secretFields: readonly string[];
  /** Propagation defaults for this provider (ms). */
  propagation?: { timeoutMs: number; intervalMs: number };
  create(config: C, deps: DnsProviderDeps): DnsProvider;
}

export interface DnsProviderDeps {
  logger: Logger;
  clock: Clock;
  /** All outbound HTTP goes through this, so tests and proxies can be injected. */
  fetch: typeof globalThis.fetch;
}

export class DnsProviderRegistry {
  private readonly byId = new Map<string, DnsProviderDefinition<unknown>>();

  constructor(definitions: readonly DnsProviderDefinition<never>[]) {
    for (const d of definitions as readonly DnsProviderDefinition<unknown>[]) {
      for (const key of [d.id, ...d.aliases, ...(d.legoCode ? [d.legoCode] : [])]) {
        const existing = this.byId.get(key);
        if (existing && existing !== d) throw new Error(`dns provider id "${key}" is registered twice`);
        this.byId.set(key, d);
      }
    }
  }

  get(id: string): DnsProviderDefinition<unknown> | undefined {
    return this.byId.get(id.toLowerCase());
  }

  list(): DnsProviderDefinition<unknown>[] {
    return [...new Set(this.byId.values())].sort((a, b) => a.id.localeCompare(b.id));
  }
}
