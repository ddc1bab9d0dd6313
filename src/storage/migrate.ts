import { Migrator } from "kysely";
import { CertfleetError, isCertfleetError, throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { SqlDatabase } from "./dialect.js";
import { migrationProvider } from "./migrations/index.js";

/** Run pending migrations under the dialect's cross-process lock. Idempotent. */
export async function migrateToLatest(
  database: SqlDatabase,
  logger: Logger,
  signal?: AbortSignal,
): Promise<void> {
  throwIfAborted(signal);
  try {
    await database.withMigrationLock(async (db, migrationTableSchema) => {
      const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema });
      const { error, results = [] } = await migrator.migrateToLatest();
      if (error !== undefined) throw error;
      for (const { migrationName } of results)
        logger.info({ migration: migrationName }, "storage migration applied");
    }, signal);
  } catch (e) {
    if (isCertfleetError(e)) throw e;
    throw new CertfleetError("storage_migration_failed", "the database could not be migrated", {
      internal: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
}
