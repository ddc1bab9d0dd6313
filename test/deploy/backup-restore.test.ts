import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startCertfleet } from "../harness/certfleet-process.js";

// Each step spawns the built bin; on a loaded 2-core machine that takes seconds, hence the timeouts.

/**
 * Backup and restore as docs/operations.md tells an operator to do them, with the built bin: an online
 * SQLite backup while the server serves, restored into a fresh data dir with only the master key
 * copied over, and a PostgreSQL pg_dump / pg_restore into another database. Both restored servers must
 * hand out the same certificate (same serial, from cache) to the same credential.
 */
const exec = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;
const PG_BASE = process.env.CERTFLEET_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${process.pid}_${Date.now().toString(36)}`;

async function cli(args: string[], env: Record<string, string> = {}) {
  return exec(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    timeout: 60_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

/** The config the harness writes, so the CLI sees what the server sees. */
async function writeConfig(dir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, "certfleet.yaml");
  await writeFile(
    path,
    stringify({
      server: { bind: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      logging: { level: "info" },
      ...extra,
    }),
  );
  return path;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "certfleet-backup-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("SQLite: certfleet storage backup / restore", () => {
  it("backs up while serving; a fresh data dir restored from it serves the same certificate", async () => {
    const before = join(work, "before");
    await mkdir(before);
    const configBefore = await writeConfig(before);
    const server = await startCertfleet({ dataDir: before });
    let serial: string;
    let backup: string;
    try {
      const issued = await server.post("/api/certificate", { domain: "app.example.internal" });
      expect(issued.status).toBe(200);
      serial = issued.body.serial;

      // requests keep arriving while the backup runs
      backup = join(work, "certfleet-backup.db");
      const busy = Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          server.post("/api/certificate", { domain: `busy-${i}.example.internal` }),
        ),
      );
      const result = await cli(["storage", "backup", "--config", configBefore, "--out", backup]);
      expect((await busy).map((r) => r.status)).toEqual(Array(4).fill(200));
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      // the output says the master key is not in the backup and where it is
      expect(result.stdout).toContain("The master key is NOT in the backup");
      expect(result.stdout).toContain(join(before, "data", "master.key"));
      expect((await stat(backup)).mode & 0o777).toBe(0o600);
      // no partial files are left behind
      expect((await readdir(work)).filter((f) => f.includes("partial"))).toEqual([]);

      // a second backup to the same file is refused and leaves the first one as it was
      const first = await readFile(backup);
      const again = await cli(["storage", "backup", "--config", configBefore, "--out", backup]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/already exists/);
      expect(await readFile(backup)).toEqual(first);

      // the backup holds the private keys sealed, never in the clear
      const copy = new BetterSqlite3(backup, { readonly: true });
      try {
        const text = copy.serialize().toString("latin1");
        expect(text).not.toContain("PRIVATE KEY");
        expect(text).not.toContain(server.apiKey!);
      } finally {
        copy.close();
      }
    } finally {
      await server.stop();
    }

    // a new machine: only the master key is copied, by hand, as the docs say
    const after = join(work, "after");
    await mkdir(join(after, "data"), { recursive: true, mode: 0o700 });
    const configAfter = await writeConfig(after);

    // without the master key the restore refuses and writes nothing
    const noKey = await cli(["storage", "restore", "--config", configAfter, "--from", backup]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no master key at .*master\.key/);
    // with a different master key too
    await writeFile(join(after, "data", "master.key"), Buffer.alloc(32, 1), { mode: 0o600 });
    const wrongKey = await cli(["storage", "restore", "--config", configAfter, "--from", backup, "--json"]);
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).toMatch(/backup was made under master key/);
    expect(await readdir(join(after, "data"))).toEqual(["master.key"]);

    await copyFile(join(before, "data", "master.key"), join(after, "data", "master.key"));
    const restored = await cli(["storage", "restore", "--config", configAfter, "--from", backup, "--json"]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ filesRestored: ["api-key"], applied: [] });

    // restoring over a database is refused
    const over = await cli(["storage", "restore", "--config", configAfter, "--from", backup]);
    expect(over.code).toBe(2);
    expect(over.stderr).toMatch(/already exists: stop the server/);

    const server2 = await startCertfleet({ dataDir: after });
    try {
      // the same bootstrap key, printed as existing, not generated now
      expect(server2.stdout()).toContain("generated at first start");
      const again = await server2.post("/api/certificate", { domain: "app.example.internal" });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ serial: serial!, cached: true });
      expect(again.body.privateKey).toMatch(/PRIVATE KEY/);
      // the embedded CA is the same: the restored server's root signed the certificate it hands out
      expect(server2.caPem).toBe(await readFile(join(before, "data", "ca.pem"), "utf8"));
    } finally {
      await server2.stop();
    }
  }, 300_000);
});

describe("PostgreSQL: pg_dump / pg_restore into another database", () => {
  const schema = `certfleet_backup_${RUN}`;
  const restoreDb = `certfleet_restore_${RUN}`;
  const psql = (url: string, command: string) => exec("psql", [url, "-v", "ON_ERROR_STOP=1", "-qc", command]);
  afterAll(async () => {
    await psql(PG_BASE, `drop schema if exists ${schema} cascade`).catch(() => undefined);
    await psql(PG_BASE, `drop database if exists ${restoreDb} with (force)`).catch(() => undefined);
  });

  it("serves the same certificate from the restored database", async () => {
    const before = join(work, "pg-before");
    await mkdir(before);
    const server = await startCertfleet({
      dataDir: before,
      config: { database: { url: `${PG_BASE}?schema=${schema}` } },
    });
    let serial: string;
    try {
      const issued = await server.post("/api/certificate", { domain: "pg.example.internal" });
      expect(issued.status).toBe(200);
      serial = issued.body.serial;
      // the commands docs/operations.md shows, run while the server serves
      const dump = join(work, "certfleet.dump");
      await exec("pg_dump", ["--format=custom", `--schema=${schema}`, "--file", dump, PG_BASE]);
      await psql(PG_BASE, `create database ${restoreDb}`);
      const target = new URL(PG_BASE);
      target.pathname = `/${restoreDb}`;
      await exec("pg_restore", ["--no-owner", "--dbname", target.toString(), dump]);
    } finally {
      await server.stop();
    }

    const after = join(work, "pg-after");
    await mkdir(join(after, "data"), { recursive: true, mode: 0o700 });
    await copyFile(join(before, "data", "master.key"), join(after, "data", "master.key"));
    const target = new URL(PG_BASE);
    target.pathname = `/${restoreDb}`;
    const server2 = await startCertfleet({
      dataDir: after,
      config: { database: { url: `${target.toString()}?schema=${schema}` } },
    });
    try {
      const again = await server2.post(
        "/api/certificate",
        { domain: "pg.example.internal" },
        { apiKey: server2.apiKey },
      );
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ serial: serial!, cached: true });
    } finally {
      await server2.stop();
    }
  }, 300_000);
});

describe("certfleet storage migrate --dry-run", () => {
  it("lists pending migrations without applying them; without --dry-run applies them", async () => {
    const { migrations } = await import("../../src/storage/migrations/index.js");
    const names = Object.keys(migrations).sort();
    const dir = join(work, "migrate");
    await mkdir(dir);
    const config = await writeConfig(dir);
    const dbFile = join(dir, "data", "certfleet.db");

    // no database yet: everything is pending, and a dry run creates nothing
    const fresh = await cli(["storage", "migrate", "--dry-run", "--config", config, "--json"]);
    expect(fresh.code).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({
      exists: false,
      applied: [],
      pending: names,
      dryRun: true,
    });
    expect(existsSync(dbFile)).toBe(false);

    // a database an older certfleet left: only the first migration applied
    await mkdir(join(dir, "data"), { mode: 0o700 });
    const { Kysely, Migrator, SqliteDialect } = await import("kysely");
    const { migrationProvider } = await import("../../src/storage/migrations/index.js");
    const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(dbFile) }) });
    expect(
      (await new Migrator({ db: old, provider: migrationProvider }).migrateTo(names[0]!)).error,
    ).toBeUndefined();
    await old.destroy();

    const dry = await cli(["storage", "migrate", "--dry-run", "--config", config]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`${names.length - 1} pending migration(s) (dry run: nothing applied):`);
    for (const name of names.slice(1)) expect(dry.stdout).toContain(`  ${name}\n`);
    const still = await cli(["storage", "migrate", "--dry-run", "--config", config, "--json"]);
    expect(JSON.parse(still.stdout)).toMatchObject({ applied: [names[0]], pending: names.slice(1) });

    const applied = await cli(["storage", "migrate", "--config", config, "--json"]);
    expect(JSON.parse(applied.stdout)).toMatchObject({ pending: names.slice(1), dryRun: false });
    const after = await cli(["storage", "migrate", "--dry-run", "--config", config]);
    expect(after.stdout).toContain("no pending migrations");
  }, 300_000);
});
