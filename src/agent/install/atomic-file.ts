import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. A reader sees the old file or the new one, whole, never a mix — and
 * after a power cut the directory entry points at complete data. Ownership and mode are set on the
 * temp file before it becomes visible.
 */
export interface FileAttributes {
  /** Permission bits, applied regardless of the umask. */
  mode: number;
  uid?: number;
  gid?: number;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  attrs: FileAttributes,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString("hex")}`);
  await writeNewFile(tmp, data, attrs);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

/** Create `path` (it must not exist), write, chown/chmod, fsync, close. Removes it again on failure. */
export async function writeNewFile(
  path: string,
  data: string | Uint8Array,
  attrs: FileAttributes,
): Promise<void> {
  const handle = await open(path, "wx", attrs.mode);
  try {
    await handle.writeFile(data);
    if (attrs.uid !== undefined || attrs.gid !== undefined)
      await handle.chown(attrs.uid ?? -1, attrs.gid ?? -1);
    await handle.chmod(attrs.mode);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw e;
  }
  await handle.close();
}

/** Make a directory's entries (renames, new files) durable. A no-op where directories cannot be opened (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic there.
  } finally {
    await handle.close();
  }
}
