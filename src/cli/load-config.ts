import { dirname, resolve } from "node:path";
import { loadConfigFile } from "../config/load.js";
import { resolveConfig, type ResolvedConfig } from "../config/resolve.js";
import { checkDnsProviderConfigs } from "../dns/provider-configs.js";
import { createDnsProviderRegistry } from "../dns/providers/index.js";

/**
 * `--config FILE` (or CERTFLEET_CONFIG), then the environment, resolved. No file = embedded default.
 * Relative paths in a file (dataDir, database.path, TLS files, …) are relative to the file's directory.
 * This is the whole validation: `serve`, a SIGHUP reload and `config check` all load through here, so
 * each DNS provider's settings are checked against that provider's schema before anything starts.
 */
export async function loadResolvedConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedConfig> {
  const file = path ?? env.CERTFLEET_CONFIG;
  const parsed = await loadConfigFile(file, env);
  const config = resolveConfig(parsed, file ? dirname(resolve(file)) : process.cwd());
  checkDnsProviderConfigs(config.dns.providers, createDnsProviderRegistry());
  return config;
}
