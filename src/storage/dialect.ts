import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from "kysely";
import pg from "pg";
import { throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Database } from "./schema.js";
import type { StorageTarget } from "./storage-url.js";

/** What differs between SQLite and PostgreSQL, in one place; everything else is plain kysely. */
export interface SqlDatabase {
  readonly dialect: StorageTarget["dialect"];
  readonly db: Kysely<Database>;
  /** PostgreSQL needs `SELECT … FOR UPDATE` to serialise writers of one row; SQLite has one writer at a time. */
  readonly rowLocks: boolean;
  /**
   * Run the migrator on a handle where migrating is safe while other processes migrate too, and tell
   * it which schema its bookkeeping tables belong in.
   */
  withMigrationLock<T>(
    run: (db: Kysely<Database>, migrationTableSchema: string | undefined) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T>;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;
const SQLITE_MIGRATION_LOCK_TIMEOUT_MS = 60_000;

export function openSqlDatabase(target: StorageTarget, logger: Logger): SqlDatabase {
  return target.dialect === "sqlite" ? openSqlite(target.filename, logger) : openPostgres(target, logger);
}

/** A duplicate primary key or unique value, on either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

function openSqlite(filename: string, logger: Logger): SqlDatabase {
  const inMemory = filename === ":memory:";
  if (!inMemory) {
    mkdirSync(dirname(filename), { recursive: true, mode: 0o700 });
    // Create the file 0600 ourselves: SQLite gives its -wal and -shm files the database file's mode.
    closeSync(openSync(filename, "a", 0o600));
  }
  const sqlite = new BetterSqlite3(filename);
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  sqlite.pragma("foreign_keys = ON");
  if (!inMemory) {
    const mode: unknown = sqlite.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal")
      logger.warn({ mode }, "SQLite could not switch to WAL mode; readers will block writers");
    sqlite.pragma("synchronous = NORMAL");
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) });

  return {
    dialect: "sqlite",
    db,
    rowLocks: false,
    // kysely takes no lock on SQLite (it assumes one connection). Other processes may share the file,
    // so the whole migration runs in one BEGIN IMMEDIATE transaction, which holds SQLite's write lock.
    withMigrationLock: (run, signal) =>
      db.connection().execute(async (conn) => {
        await beginImmediate(conn, signal);
        try {
          const result = await run(conn, undefined);
          await sql`commit`.execute(conn);
          return result;
        } catch (e) {
          if (sqlite.inTransaction) await sql`rollback`.execute(conn);
          throw e;
        }
      }),
  };
}

/** Prepared statements kept per connection; SQL with varying `in (…)` lists makes new entries, so bound it. */
const SQLITE_STATEMENT_CACHE = 256;

/**
 * kysely's SQLite driver prepares every query anew; hand it each SQL text's statement prepared once
 * (most recently used kept). Safe because the driver runs one query at a time on the connection and
 * never leaves an iterator open across queries (certfleet does not stream); SQLite re-prepares a
 * statement itself after a schema change.
 */
function reusingStatements(sqlite: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(text) {
      let statement = statements.get(text);
      if (statement) statements.delete(text);
      else {
        statement = sqlite.prepare(text);
        if (statements.size >= SQLITE_STATEMENT_CACHE) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
    close: () => sqlite.close(),
  };
}

/**
 * Take SQLite's write lock. Waiting through busy_timeout would block this process's event loop
 * (better-sqlite3 is synchronous) for as long as another replica migrates, so wait on timers instead.
 */
async function beginImmediate(conn: Kysely<Database>, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + SQLITE_MIGRATION_LOCK_TIMEOUT_MS;
  await sql.raw("pragma busy_timeout = 0").execute(conn);
  try {
    for (;;) {
      try {
        await sql`begin immediate`.execute(conn);
        return;
      } catch (e) {
        if (!String((e as { code?: unknown }).code).startsWith("SQLITE_BUSY") || Date.now() >= deadline)
          throw e;
      }
      throwIfAborted(signal);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await sql.raw(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).execute(conn);
  }
}

function openPostgres(target: Extract<StorageTarget, { dialect: "postgres" }>, logger: Logger): SqlDatabase {
  // Per pool, not pg's global parsers: int8 columns hold epoch milliseconds and ids, far below 2^53.
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, Number);
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    types,
    ...(target.schema === undefined ? {} : { options: `-c search_path=${target.schema}` }),
  });
  // An idle connection that dies emits here; without a listener it would crash the process.
  pool.on("error", (err) => logger.warn({ err }, "idle PostgreSQL connection failed"));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });

  return {
    dialect: "postgres",
    db,
    rowLocks: true,
    // kysely's Migrator takes a session advisory lock itself. Naming the schema matters: its "does the
    // migration table exist" check otherwise looks at every schema in the database.
    withMigrationLock: async (run) => {
      const schema =
        target.schema ??
        (await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db)).rows[0]
          ?.schema ??
        undefined;
      return run(db, schema);
    },
  };
}
