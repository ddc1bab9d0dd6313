import { loadConfigFile } from "../config/load.js";
import { resolveConfig, type ResolvedConfig } from "../config/resolve.js";

/** `--config FILE` (or CERTFLEET_CONFIG), then the environment, resolved. No file = embedded default. */
export async function loadResolvedConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedConfig> {
  const file = await loadConfigFile(path ?? env.CERTFLEET_CONFIG, env);
  return resolveConfig(file);
}
