import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { createStorage } from "../../src/storage/create-storage.js";
import { openSqlDatabase } from "../../src/storage/dialect.js";
import { parseStorageUrl } from "../../src/storage/storage-url.js";
import { runStorageConformance } from "./conformance.js";

runStorageConformance("SQLite file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-storage-"));
  const url = `sqlite:${join(dir, "data", "certfleet.db")}`;
  const encryptionKey = randomBytes(32);
  const storage = createStorage({ url, encryptionKey });
  const raw = openSqlDatabase(parseStorageUrl(url), silentLogger()).db;
  return {
    storage,
    sameDatabase: {
      raw,
      encryptionKey,
      open: (key = encryptionKey, previous = []) =>
        createStorage({ url, encryptionKey: key, previousEncryptionKeys: previous }),
    },
    cleanup: async () => {
      await storage.close();
      await raw.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

runStorageConformance(
  "SQLite in memory",
  async () => {
    const storage = createStorage({ url: "sqlite::memory:", encryptionKey: randomBytes(32) });
    return { storage, cleanup: () => storage.close() };
  },
  { inMemory: true },
);

describe("SQLite file setup", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it("creates the parent directory 0700 and the file 0600, in WAL mode, from a plain path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certfleet-storage-"));
    dirs.push(dir);
    const file = join(dir, "nested", "deeper", "certfleet.db");
    const storage = createStorage({ url: file, encryptionKey: randomBytes(32) });
    try {
      await storage.migrate();
      await storage.kv.putValue("ns", "k", "v");
      expect((await stat(join(dir, "nested", "deeper"))).mode & 0o777).toBe(0o700);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await storage.close();
    }
    const raw = openSqlDatabase(parseStorageUrl(`sqlite:${file}`), silentLogger()).db;
    try {
      const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(raw);
      expect(rows[0]?.journal_mode).toBe("wal");
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(raw);
      expect(fk.rows[0]?.foreign_keys).toBe(1);
    } finally {
      await raw.destroy();
    }
  });

  it("reopens a file and finds its data", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certfleet-storage-"));
    dirs.push(dir);
    const url = `sqlite://${join(dir, "certfleet.db")}`;
    const encryptionKey = randomBytes(32);
    const first = createStorage({ url, encryptionKey });
    await first.migrate();
    await first.kv.putValue("ns", "k", "kept", { secret: true });
    await first.close();
    const second = createStorage({ url, encryptionKey });
    try {
      await second.migrate();
      expect(await second.kv.getValue("ns", "k")).toBe("kept");
    } finally {
      await second.close();
    }
  });
});
