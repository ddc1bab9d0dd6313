import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ResolvedConfig } from "../config/resolve.js";
import { CertfleetError } from "../core/errors.js";
import { silentLogger } from "../core/logger.js";
import { VERSION } from "../core/version.js";
import { backupSqlite, migrationStatus, restoreSqlite } from "../storage/backup.js";
import { openSqlDatabase } from "../storage/dialect.js";
import { loadMasterKeys } from "../storage/master-key.js";
import { migrateToLatest } from "../storage/migrate.js";
import { parseStorageUrl } from "../storage/storage-url.js";
import { loadResolvedConfig } from "./load-config.js";

/** Data-dir files a backup carries: not derived from the database, and lost with the directory. */
const CARRIED_FILES = ["api-key"];

/** Where the master key lives, in words an operator can act on. */
function masterKeyLocation(config: ResolvedConfig): string {
  return config.storage.encryptionKey !== undefined
    ? "database.encryptionKey (your configuration or CERTFLEET_DATABASE__ENCRYPTION_KEY)"
    : config.storage.encryptionKeyFile;
}

/**
 * The master keys of an existing installation. Unlike the server, never creates one: a backup or
 * restore under a fresh key would be unreadable.
 */
async function existingMasterKeys(config: ResolvedConfig) {
  if (config.storage.encryptionKey === undefined && !existsSync(config.storage.encryptionKeyFile))
    throw new CertfleetError(
      "storage_key_missing",
      `no master key at ${config.storage.encryptionKeyFile} (database.encryptionKeyFile): put the key the ` +
        "database was written under there first",
      { status: 400 },
    );
  return loadMasterKeys(config.storage);
}

function sqliteFile(config: ResolvedConfig, action: string): string {
  const target = parseStorageUrl(config.storage.url);
  if (target.dialect !== "sqlite")
    throw new CertfleetError(
      "backup_postgres",
      `${action} works on SQLite; for PostgreSQL use pg_dump and pg_restore (docs/operations.md, "Backup")`,
      { status: 400 },
    );
  if (target.filename === ":memory:")
    throw new CertfleetError("backup_memory", `an in-memory database cannot be ${action}`, { status: 400 });
  return target.filename;
}

/** `certfleet storage backup --out FILE`: an online, consistent copy of the SQLite database. */
export async function storageBackupCommand(opts: {
  config?: string;
  out: string;
  json?: boolean;
}): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  const filename = sqliteFile(config, "backed up");
  const keys = await existingMasterKeys(config);
  const files: Record<string, string> = {};
  for (const name of CARRIED_FILES) {
    const path = join(config.dataDir, name);
    if (existsSync(path)) files[name] = await readFile(path, "utf8");
  }
  const out = resolve(opts.out);
  const result = await backupSqlite({
    filename,
    out,
    masterKey: keys.current,
    files,
    version: VERSION,
    now: new Date(),
  });
  const keyAt = masterKeyLocation(config);
  process.stdout.write(
    opts.json
      ? JSON.stringify({ out, ...result, masterKey: keyAt }) + "\n"
      : `backup written to ${out} (${result.bytes} bytes, certfleet ${result.version}, master key ${result.masterKeyId})\n` +
          `The master key is NOT in the backup and the backup is useless without it: keep a copy of\n` +
          `  ${keyAt}\n` +
          `somewhere else than the backup (a password manager, a secrets store).\n`,
  );
  return 0;
}

/** `certfleet storage restore --from FILE`: a backup becomes the configured SQLite database. */
export async function storageRestoreCommand(opts: {
  config?: string;
  from: string;
  json?: boolean;
}): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  const filename = sqliteFile(config, "restored");
  const keys = await existingMasterKeys(config);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { manifest, files } = await restoreSqlite({
    backup: resolve(opts.from),
    filename,
    masterKeys: [keys.current, ...keys.previous],
  });
  const written: string[] = [];
  const kept: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    if (!CARRIED_FILES.includes(name)) continue;
    try {
      await writeFile(join(config.dataDir, name), content, { mode: 0o600, flag: "wx" });
      written.push(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      kept.push(name);
    }
  }
  // Apply what this version adds, so the server starts on a current schema (it would anyway).
  const database = openSqlDatabase(parseStorageUrl(config.storage.url), silentLogger());
  let applied: string[];
  try {
    const before = await migrationStatus(database);
    await migrateToLatest(database, silentLogger());
    applied = before.pending;
  } finally {
    await database.db.destroy();
  }
  const out = { database: filename, backup: manifest, filesRestored: written, filesKept: kept, applied };
  process.stdout.write(
    opts.json
      ? JSON.stringify(out) + "\n"
      : `restored ${filename} from a backup made ${manifest.createdAt} by certfleet ${manifest.version}\n` +
          (written.length ? `restored into ${config.dataDir}: ${written.join(", ")}\n` : "") +
          (kept.length ? `kept the existing ${kept.join(", ")} in ${config.dataDir}\n` : "") +
          (applied.length ? `migrations applied: ${applied.join(", ")}\n` : "") +
          "start the server as usual\n",
  );
  return 0;
}

/**
 * `certfleet storage migrate [--dry-run]`: apply pending migrations (the server also does this at
 * start), or only list them.
 */
export async function storageMigrateCommand(opts: {
  config?: string;
  dryRun?: boolean;
  json?: boolean;
}): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  const target = parseStorageUrl(config.storage.url);
  // A dry run creates nothing: no database file where there is none.
  if (opts.dryRun && target.dialect === "sqlite" && !existsSync(target.filename)) {
    const database = openSqlDatabase({ dialect: "sqlite", filename: ":memory:" }, silentLogger());
    try {
      const { pending } = await migrationStatus(database);
      return report({ database: target.filename, exists: false, applied: [], pending, dryRun: true });
    } finally {
      await database.db.destroy();
    }
  }
  const database = openSqlDatabase(target, silentLogger());
  try {
    const status = await migrationStatus(database);
    if (!opts.dryRun) await migrateToLatest(database, silentLogger());
    return report({
      database: target.dialect === "sqlite" ? target.filename : "postgres",
      exists: true,
      applied: status.applied.map((m) => m.name),
      pending: status.pending,
      dryRun: Boolean(opts.dryRun),
    });
  } finally {
    await database.db.destroy();
  }

  function report(r: {
    database: string;
    exists: boolean;
    applied: string[];
    pending: string[];
    dryRun: boolean;
  }): number {
    if (opts.json) {
      process.stdout.write(JSON.stringify(r) + "\n");
      return 0;
    }
    const lines = [
      `${r.applied.length} migration(s) applied` + (r.exists ? "" : ` (no database at ${r.database} yet)`),
    ];
    if (r.pending.length === 0) lines.push("no pending migrations");
    else
      lines.push(
        `${r.pending.length} pending migration(s)${r.dryRun ? " (dry run: nothing applied)" : ", now applied"}:`,
        ...r.pending.map((name) => `  ${name}`),
      );
    process.stdout.write(lines.join("\n") + "\n");
    return 0;
  }
}
