import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Zero-config start: with no credential configured, certfleet generates one admin API key on first start
 * and keeps it in `<dataDir>/api-key` (mode 0600), like an initial admin password. It is printed at every
 * start so the Quick start's curl line works; configure `auth.apiKeys` to replace it.
 */
export async function loadOrCreateBootstrapKey(path: string): Promise<{ key: string; created: boolean }> {
  try {
    return { key: (await readFile(path, "utf8")).trim(), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = "cf_" + randomBytes(32).toString("base64url");
  try {
    await writeFile(path, key + "\n", { mode: 0o600, flag: "wx" });
    return { key, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST")
      return { key: (await readFile(path, "utf8")).trim(), created: false };
    throw e;
  }
}
