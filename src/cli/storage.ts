import { mkdir } from "node:fs/promises";
import { createStorage } from "../storage/create-storage.js";
import { loadMasterKeys, rotateMasterKeyFile } from "../storage/master-key.js";
import { masterKeyId } from "../storage/secret-box.js";
import { loadResolvedConfig } from "./load-config.js";

/**
 * `certfleet storage rotate-key`: a new master key file, every encrypted value re-sealed under it, the
 * old key kept beside it as `<file>.previous-<time>` (still read, so nothing is lost if a value was
 * missed; delete it when you are done). Stop the server first: a running server holds the old key only.
 * Keys given inline (`database.encryptionKey`) are rotated through config instead: see docs/storage.md.
 */
export async function storageRotateKeyCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  if (config.storage.encryptionKey !== undefined) {
    process.stderr.write(
      "certfleet: the master key comes from database.encryptionKey, not a file: set the new key there, " +
        "move the old one to database.previousEncryptionKeys, restart, then run `certfleet storage reencrypt` " +
        "(docs/storage.md)\n",
    );
    return 2;
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const loaded = await loadMasterKeys(config.storage);
  let counts = { rewritten: 0, total: 0 };
  const result = await rotateMasterKeyFile(
    config.storage.encryptionKeyFile,
    async (next, old) => {
      const storage = createStorage({
        url: config.storage.url,
        encryptionKey: next,
        previousEncryptionKeys: [old, ...loaded.previous],
      });
      try {
        await storage.migrate();
        counts = await storage.reencryptSecrets();
      } finally {
        await storage.close();
      }
    },
    new Date(),
  );
  const out = {
    keyId: masterKeyId(result.key),
    previousKeyId: masterKeyId(loaded.current),
    previousKeyFile: result.previousFile,
    ...counts,
  };
  process.stdout.write(
    opts.json
      ? JSON.stringify(out) + "\n"
      : `master key rotated: ${out.previousKeyId} -> ${out.keyId}; ${out.rewritten} of ${out.total} encrypted values re-sealed\n` +
          `the old key is kept at ${out.previousKeyFile} and still read; delete it once the server runs fine\n`,
  );
  return 0;
}

/** `certfleet storage reencrypt`: re-seal every value not yet under the current master key. */
export async function storageReencryptCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  const keys = await loadMasterKeys(config.storage);
  const storage = createStorage({
    url: config.storage.url,
    encryptionKey: keys.current,
    previousEncryptionKeys: keys.previous,
  });
  try {
    await storage.migrate();
    const counts = await storage.reencryptSecrets();
    const out = { keyId: masterKeyId(keys.current), ...counts };
    process.stdout.write(
      opts.json
        ? JSON.stringify(out) + "\n"
        : `${out.rewritten} of ${out.total} encrypted values re-sealed under master key ${out.keyId}\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}
