import type { DnsProviderConfig } from "../config/resolve.js";
import { zodIssues } from "../config/load.js";
import { ConfigError } from "../core/errors.js";
import { configFromLegoEnv } from "./lego-compat.js";
import type { DnsProviderDefinition, DnsProviderRegistry } from "./registry.js";

/** One configured DNS provider with its definition and the settings its own schema produced. */
export interface CheckedDnsProvider {
  entry: DnsProviderConfig;
  definition: DnsProviderDefinition<unknown>;
  settings: unknown;
}

/**
 * Validate every configured DNS provider's settings with that provider's own schema (strict: unknown
 * keys are errors). `config check`, `serve` and a SIGHUP reload all call this one function, so a config
 * one of them accepts, the others accept too. Throws ConfigError with every problem, each naming the
 * key path the user wrote (e.g. `dns.providers.0.config.apiTokn`, `letsEncrypt.providers.cloudflare`).
 */
export function checkDnsProviderConfigs(
  providers: readonly DnsProviderConfig[],
  registry: DnsProviderRegistry,
): CheckedDnsProvider[] {
  const checked: CheckedDnsProvider[] = [];
  const issues: { path: string; message: string }[] = [];
  for (const entry of providers) {
    const definition = registry.get(entry.type);
    if (!definition) {
      issues.push({
        path: `${entry.path}${entry.legoEnv ? "" : ".type"}`,
        message: `unknown DNS provider "${entry.type}" (see docs/dns-providers.md)`,
      });
      continue;
    }
    const raw = entry.legoEnv ? configFromLegoEnv(definition, entry.legoEnv) : entry.config;
    const parsed = definition.schema.safeParse(raw);
    if (!parsed.success) {
      const where = entry.legoEnv
        ? "letsEncrypt.dnsCredentials"
        : (entry.configPath ?? `${entry.path}.config`);
      issues.push(...zodIssues(parsed.error, [where]));
      continue;
    }
    checked.push({ entry, definition, settings: parsed.data });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return checked;
}
