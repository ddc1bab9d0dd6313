import { mkdir } from "node:fs/promises";
import type { ResolvedConfig } from "../config/resolve.js";
import { createStorage } from "../storage/create-storage.js";
import { loadMasterKeys } from "../storage/master-key.js";
import type { Storage } from "../storage/storage.js";
import { loadResolvedConfig } from "./load-config.js";

/** For admin commands: the same storage the server uses (same config, same master key), migrated. */
export async function withConfiguredStorage<T>(
  configPath: string | undefined,
  fn: (storage: Storage, config: ResolvedConfig) => Promise<T>,
): Promise<T> {
  const config = await loadResolvedConfig(configPath);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const keys = await loadMasterKeys(config.storage);
  const storage = createStorage({
    url: config.storage.url,
    encryptionKey: keys.current,
    previousEncryptionKeys: keys.previous,
  });
  try {
    await storage.migrate();
    return await fn(storage, config);
  } finally {
    await storage.close();
  }
}
