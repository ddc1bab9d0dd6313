import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Migrator } from "kysely";
import { CertfleetError, throwIfAborted } from "../core/errors.js";
import type { SqlDatabase } from "./dialect.js";
import { migrationProvider } from "./migrations/index.js";
import { createSecretBox, masterKeyId } from "./secret-box.js";

/**
 * Backup, restore and upgrade plumbing for the `certfleet storage` commands.
 *
 * A SQLite backup is a consistent copy made with SQLite's online backup API while the server keeps
 * writing, plus one extra table, `certfleet_backup`, holding what a restore needs from beside the
 * database: the format, the version that wrote it, the id of the master key its values are sealed
 * under, and the data-dir files that are not derived from the database (the bootstrap API key), sealed
 * under that master key. The master key itself is never in a backup. PostgreSQL is backed up with its
 * own tools (pg_dump / pg_restore; docs/operations.md).
 */

export const BACKUP_FORMAT = "certfleet-sqlite-backup/1";
const META_TABLE = "certfleet_backup";

export interface BackupManifest {
  format: string;
  version: string;
  createdAt: string;
  /** masterKeyId() of the key the database's values are sealed under. */
  masterKeyId: string;
  /** Data-dir file names carried in the backup. */
  files: string[];
}

/** Which migrations a database has applied and which the running code would apply at start. */
export async function migrationStatus(
  database: SqlDatabase,
  signal?: AbortSignal,
): Promise<{ applied: { name: string; executedAt: Date }[]; pending: string[] }> {
  throwIfAborted(signal);
  // Under the migration lock, so the answer is not taken halfway through another process's migration.
  const migrations = await database.withMigrationLock(
    (db, migrationTableSchema) =>
      new Migrator({ db, provider: migrationProvider, migrationTableSchema }).getMigrations(),
    signal,
  );
  return {
    applied: migrations.flatMap((m) => (m.executedAt ? [{ name: m.name, executedAt: m.executedAt }] : [])),
    pending: migrations.filter((m) => !m.executedAt).map((m) => m.name),
  };
}

/**
 * Copy the SQLite database at `filename` to `out`, online. `out` must not exist; the copy is made
 * under a temporary name in the same directory and renamed into place only when complete, so a
 * failure leaves no file that looks like a backup. The copy is mode 0600.
 */
export async function backupSqlite(options: {
  filename: string;
  out: string;
  masterKey: Buffer;
  /** Data-dir files to carry (name → content), sealed under the master key. */
  files: Record<string, string>;
  version: string;
  now: Date;
  signal?: AbortSignal;
}): Promise<BackupManifest & { bytes: number }> {
  const { filename, out, signal } = options;
  if (!existsSync(filename))
    throw new CertfleetError("backup_source_missing", `there is no SQLite database at ${filename}`, {
      status: 400,
    });
  if (existsSync(out))
    throw new CertfleetError("backup_target_exists", `${out} already exists; choose a new file name`, {
      status: 400,
    });
  const temp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString("hex")}.partial`);
  // Create it 0600 before SQLite writes into it: a backup holds sealed keys and every record.
  await (await open(temp, "wx", 0o600)).close();
  try {
    const source = new BetterSqlite3(filename, { fileMustExist: true });
    try {
      source.pragma("busy_timeout = 5000");
      // Copies in steps; pages the server writes meanwhile restart the copy, so the result is a
      // snapshot of one moment.
      await source.backup(temp, {
        progress: () => {
          throwIfAborted(signal);
          return 256;
        },
      });
    } finally {
      source.close();
    }
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: options.version,
      createdAt: options.now.toISOString(),
      masterKeyId: masterKeyId(options.masterKey),
      files: Object.keys(options.files).sort(),
    };
    const box = createSecretBox(options.masterKey);
    const copy = new BetterSqlite3(temp, { fileMustExist: true });
    try {
      copy.pragma("journal_mode = DELETE");
      copy.exec(`create table ${META_TABLE} (name text primary key, value text not null)`);
      const insert = copy.prepare(`insert into ${META_TABLE} (name, value) values (?, ?)`);
      copy.transaction(() => {
        insert.run("manifest", JSON.stringify(manifest));
        for (const [name, content] of Object.entries(options.files))
          insert.run(`file:${name}`, box.seal(content, `backup-file:${name}`));
      })();
    } finally {
      copy.close();
    }
    await fsyncFile(temp);
    throwIfAborted(signal);
    await rename(temp, out);
    return { ...manifest, bytes: (await stat(out)).size };
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

/**
 * Put a backup made by backupSqlite in place as the SQLite database `filename`, which must not exist
 * yet (a restore never overwrites data). The backup is checked first — SQLite's integrity check, the
 * format, and that one of `masterKeys` is the key it was sealed under — and returned files are the
 * carried data-dir files, opened. The database appears under its name only when complete.
 */
export async function restoreSqlite(options: {
  backup: string;
  filename: string;
  masterKeys: readonly Buffer[];
  signal?: AbortSignal;
}): Promise<{ manifest: BackupManifest; files: Record<string, string> }> {
  const { backup, filename, signal } = options;
  if (!existsSync(backup))
    throw new CertfleetError("backup_source_missing", `there is no backup at ${backup}`, { status: 400 });
  for (const path of [filename, `${filename}-wal`, `${filename}-journal`])
    if (existsSync(path) && (await stat(path)).size > 0)
      throw new CertfleetError(
        "restore_target_exists",
        `${path} already exists: stop the server and move the old database away first (a restore never overwrites data)`,
        { status: 400 },
      );
  const temp = join(dirname(filename), `.${basename(filename)}.${randomBytes(6).toString("hex")}.restoring`);
  await (await open(temp, "wx", 0o600)).close();
  try {
    const source = new BetterSqlite3(backup, { readonly: true, fileMustExist: true });
    try {
      await source.backup(temp);
    } finally {
      source.close();
    }
    throwIfAborted(signal);
    const db = new BetterSqlite3(temp, { fileMustExist: true });
    let result: { manifest: BackupManifest; files: Record<string, string> };
    try {
      const integrity = db.pragma("integrity_check", { simple: true });
      if (integrity !== "ok")
        throw new CertfleetError("backup_invalid", `${backup} is damaged: ${String(integrity)}`, {
          status: 400,
        });
      result = readManifest(db, backup, options.masterKeys);
      db.exec(`drop table ${META_TABLE}`);
      db.pragma("journal_mode = WAL");
    } finally {
      db.close();
    }
    await fsyncFile(temp);
    await rename(temp, filename);
    return result;
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

function readManifest(
  db: BetterSqlite3.Database,
  source: string,
  masterKeys: readonly Buffer[],
): { manifest: BackupManifest; files: Record<string, string> } {
  const notABackup = () =>
    new CertfleetError(
      "backup_invalid",
      `${source} is not a certfleet backup (made by \`certfleet storage backup\`)`,
      { status: 400 },
    );
  let rows: { name: string; value: string }[];
  try {
    rows = db.prepare(`select name, value from ${META_TABLE}`).all() as { name: string; value: string }[];
  } catch {
    throw notABackup();
  }
  const manifestRow = rows.find((r) => r.name === "manifest");
  if (!manifestRow) throw notABackup();
  const manifest = JSON.parse(manifestRow.value) as BackupManifest;
  if (manifest.format !== BACKUP_FORMAT)
    throw new CertfleetError(
      "backup_invalid",
      `${source} has format ${manifest.format}, not ${BACKUP_FORMAT}`,
      {
        status: 400,
      },
    );
  const key = masterKeys.find((k) => masterKeyId(k) === manifest.masterKeyId);
  if (!key)
    throw new CertfleetError(
      "restore_master_key_mismatch",
      `the backup was made under master key ${manifest.masterKeyId}, but the configured key is ` +
        `${masterKeys.map(masterKeyId).join(", ")}: put the master key that was in use when the backup ` +
        "was made in place (database.encryptionKeyFile or database.encryptionKey) and run the restore again",
      { status: 400 },
    );
  const box = createSecretBox(key);
  const files: Record<string, string> = {};
  for (const row of rows)
    if (row.name.startsWith("file:")) {
      const name = row.name.slice("file:".length);
      files[name] = box.open(row.value, `backup-file:${name}`);
    }
  return { manifest, files };
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
