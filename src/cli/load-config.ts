import { dirname, resolve } from "node:path";
import { loadConfigFile } from "../config/load.js";
import { resolveConfig, type ResolvedConfig } from "../config/resolve.js";

/**
 * `--config FILE` (or CERTFLEET_CONFIG), then the environment, resolved. No file = embedded default.
 * Relative paths in a file (dataDir, database.path, TLS files, …) are relative to the file's directory.
 */
export async function loadResolvedConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedConfig> {
  const file = path ?? env.CERTFLEET_CONFIG;
  const parsed = await loadConfigFile(file, env);
  return resolveConfig(parsed, file ? dirname(resolve(file)) : process.cwd());
}
