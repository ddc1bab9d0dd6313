import type { Kysely } from "kysely";
import { systemClock } from "../core/clock.js";
import { silentLogger } from "../core/logger.js";
import type { CreateStorageOptions } from "../storage/create-storage.js";
import { openSqlDatabase } from "../storage/dialect.js";
import type { Database } from "../storage/schema.js";
import { createSecretBox } from "../storage/secret-box.js";
import { SqlStorage } from "../storage/sql-storage.js";
import type { Storage } from "../storage/storage.js";
import { parseStorageUrl } from "../storage/storage-url.js";

/**
 * `createStorage`, also handing out the kysely handle the ACME server's tables are reached through:
 * one connection (pool) per process for both, so SQLite never sees two writers from one process.
 * Call `storage.migrate()` before use, as with createStorage; `storage.close()` closes both.
 */
export function openStorageWithDatabase(options: CreateStorageOptions): {
  storage: Storage;
  db: Kysely<Database>;
} {
  const logger = (options.logger ?? silentLogger()).child({ component: "storage" });
  const database = openSqlDatabase(parseStorageUrl(options.url), logger);
  const storage = new SqlStorage({
    database,
    secretBox: createSecretBox(options.encryptionKey, options.previousEncryptionKeys),
    clock: options.clock ?? systemClock,
    logger,
  });
  return { storage, db: database.db };
}
