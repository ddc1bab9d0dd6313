import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir, writeFileAtomic, writeNewFile, type FileAttributes } from "./atomic-file.js";

/**
 * Where one certificate's installed files live, as immutable generations behind one symlink:
 *
 *   <dir>/current -> g-<time>-<rand>        the only thing that ever changes, by rename(2)
 *   <dir>/g-<time>-<rand>/cert.pem key.pem …  a complete, fsynced set of files, never modified
 *   <dir>/.g-<time>-<rand>.partial/          a generation being written (ignored; removed later)
 *
 * `commit` writes every file of the new generation into a `.partial` directory, fsyncs each file and
 * the directory, renames it to its final name, then points `current` at it by renaming a fresh symlink
 * over the old one. A crash at any instant leaves `current` at the old complete generation or the new
 * complete one — never at a mix, never at a half-written file. The previous generation is kept until the
 * next commit, so a reader that resolved `current` just before a switch can still finish reading.
 *
 *   <dir>/reload-owed                        the generation whose reload command has not succeeded yet
 *
 * A commit that owes a reload writes `reload-owed` (atomically, fsynced) naming the new generation
 * *before* `current` switches to it, and the marker is removed only after the reload command succeeded.
 * So a crash anywhere between the switch and the end of the reload leaves the marker naming exactly the
 * generation `current` points at, and the next start runs the reload for it. A marker naming another
 * generation (a crash before the switch) owes nothing: that generation was never live.
 */
export interface GenerationFile {
  name: string;
  data: string | Uint8Array;
  attrs: FileAttributes;
}

export interface GenerationStore {
  readonly dir: string;
  /** `<dir>/current`: stable paths go through this symlink. */
  readonly currentPath: string;
  /** The generation `current` points at, or undefined before the first commit. */
  current(): Promise<string | undefined>;
  /** A file of the current generation; undefined when there is none. */
  readCurrent(name: string): Promise<Buffer | undefined>;
  /**
   * Write a new generation and switch `current` to it. Returns the generation's name. With
   * `reloadOwed`, the reload is recorded as owed for it before the switch (see above).
   */
  commit(files: readonly GenerationFile[], options?: { reloadOwed?: boolean }): Promise<string>;
  /** The current generation when a reload is owed for it, else undefined. */
  reloadOwed(): Promise<string | undefined>;
  /** The reload for `generation` succeeded: forget the debt (only if it still names that generation). */
  reloadDone(generation: string): Promise<void>;
  /**
   * Remove leftovers of interrupted commits (partial generations, stray temp links) and every generation
   * except the current one and the one before it (`previous`, else the newest other one). Safe to call
   * at any time; failures are ignored.
   */
  prune(previous?: string): Promise<void>;
}

const GENERATION = /^g-[0-9TZ]+-[0-9a-f]+$/;

const RELOAD_OWED = "reload-owed";

export function createGenerationStore(dir: string): GenerationStore {
  const currentPath = join(dir, "current");
  const owedPath = join(dir, RELOAD_OWED);
  const owedGeneration = async () => (await readFile(owedPath, "utf8").catch(() => "")).trim() || undefined;

  async function current(): Promise<string | undefined> {
    try {
      const target = await readlink(currentPath);
      return GENERATION.test(target) ? target : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    dir,
    currentPath,
    current,
    async readCurrent(name) {
      const generation = await current();
      if (!generation) return undefined;
      return readFile(join(dir, generation, name)).catch(() => undefined);
    },
    async commit(files, options) {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const stamp = new Date()
        .toISOString()
        .replace(/[-:.]/g, "")
        .replace(/\d{3}Z$/, "Z");
      const name = `g-${stamp}-${randomBytes(4).toString("hex")}`;
      const partial = join(dir, `.${name}.partial`);
      await mkdir(partial, { mode: 0o755 });
      try {
        for (const file of files) await writeNewFile(join(partial, file.name), file.data, file.attrs);
        await fsyncDir(partial);
        await rename(partial, join(dir, name));
      } catch (e) {
        await rm(partial, { recursive: true, force: true }).catch(() => undefined);
        throw e;
      }
      await fsyncDir(dir);
      if (options?.reloadOwed) await writeFileAtomic(owedPath, name + "\n", { mode: 0o644 });
      const link = join(dir, `.current-${randomBytes(4).toString("hex")}`);
      await symlink(name, link);
      await rename(link, currentPath);
      await fsyncDir(dir);
      return name;
    },
    async reloadOwed() {
      const owed = await owedGeneration();
      return owed !== undefined && owed === (await current()) ? owed : undefined;
    },
    async reloadDone(generation) {
      if ((await owedGeneration()) !== generation) return;
      await unlink(owedPath).catch(() => undefined);
      await fsyncDir(dir);
    },
    async prune(before) {
      let entries: string[];
      try {
        entries = await readdir(dir);
      } catch {
        return;
      }
      const now = await current();
      // Names sort by creation time; the newest non-current one is what `current` pointed at before.
      const previous =
        before ??
        entries
          .filter((e) => GENERATION.test(e) && e !== now)
          .sort()
          .at(-1);
      const live = new Set([now, previous]);
      for (const entry of entries) {
        const stale =
          (entry.startsWith(".g-") && entry.endsWith(".partial")) ||
          entry.startsWith(".current-") ||
          entry.startsWith(`.${RELOAD_OWED}.tmp-`) ||
          (GENERATION.test(entry) && !live.has(entry));
        if (!stale) continue;
        const path = join(dir, entry);
        const info = await lstat(path).catch(() => undefined);
        if (info) await rm(path, { recursive: info.isDirectory(), force: true }).catch(() => undefined);
      }
    },
  };
}
