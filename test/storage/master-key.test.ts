import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateMasterKey } from "../../src/storage/master-key.js";

describe("loadOrCreateMasterKey", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "certfleet-key-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates a 32-byte key 0600 in a new 0700 directory, then reads the same key back", async () => {
    const path = join(dir, "secrets", "master.key");
    const key = await loadOrCreateMasterKey(path);
    expect(key).toHaveLength(32);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "secrets"))).mode & 0o777).toBe(0o700);
    expect(await loadOrCreateMasterKey(path)).toEqual(key);
    expect(await readdir(join(dir, "secrets"))).toEqual(["master.key"]);
  });

  it("gives every concurrent caller the same key, and leaves no temp files", async () => {
    const path = join(dir, "master.key");
    const keys = await Promise.all(Array.from({ length: 40 }, () => loadOrCreateMasterKey(path)));
    const onDisk = await readFile(path);
    expect(new Set(keys.map((k) => k.toString("hex")))).toEqual(new Set([onDisk.toString("hex")]));
    expect(await readdir(dir)).toEqual(["master.key"]);
  });

  it("never replaces a name that appeared after its check", async () => {
    // A dangling symlink reads as "no such file" yet occupies the name: it stands in for a key another
    // process links into place between our read and our link.
    const path = join(dir, "master.key");
    await symlink(join(dir, "not-yet"), path);
    await expect(loadOrCreateMasterKey(path)).rejects.toMatchObject({ code: "storage_key_missing" });
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(await readdir(dir)).toEqual(["master.key"]);
  });

  it("refuses a key file of the wrong length instead of replacing it", async () => {
    const path = join(dir, "master.key");
    await writeFile(path, "too short\n");
    await expect(loadOrCreateMasterKey(path)).rejects.toMatchObject({ code: "storage_key_invalid" });
    expect((await stat(path)).size).toBe(10);
  });

  it("does nothing once aborted", async () => {
    const path = join(dir, "master.key");
    await expect(loadOrCreateMasterKey(path, AbortSignal.abort())).rejects.toMatchObject({ code: "aborted" });
    expect(await readdir(dir)).toEqual([]);
  });
});
