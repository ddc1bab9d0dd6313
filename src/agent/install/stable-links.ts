import { randomBytes } from "node:crypto";
import { lstat, mkdir, readlink, rename, symlink, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "./atomic-file.js";

/**
 * The paths an operator configured (`/etc/ssl/web/cert.pem`) are symlinks into the generation store's
 * `current` directory (`<state>/certs/web/current/cert.pem`). They are created once and never change
 * afterwards, so every later switch of a certificate happens in the store, atomically, for all files of
 * that certificate at once. A regular file already at such a path (from an earlier tool) is replaced —
 * by an atomic rename, one path at a time, so only that first migration has a short window where a
 * reader may see new and old files side by side.
 *
 * Returns true when any link had to be created or corrected.
 */
export async function ensureStableLinks(
  links: readonly { path: string; target: string }[],
): Promise<boolean> {
  let changed = false;
  for (const { path, target } of links) {
    const info = await lstat(path).catch(() => undefined);
    if (info?.isSymbolicLink() && (await readlink(path)) === target) continue;
    if (info?.isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: "EISDIR" });
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = join(dir, `.${basename(path)}.link-${randomBytes(4).toString("hex")}`);
    await symlink(target, tmp);
    try {
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fsyncDir(dir);
    changed = true;
  }
  return changed;
}
