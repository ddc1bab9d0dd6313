import { systemClock, type Clock } from "../core/clock.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { openSqlDatabase } from "./dialect.js";
import { createSecretBox } from "./secret-box.js";
import { createSqlStorage } from "./sql-storage.js";
import type { Storage } from "./storage.js";
import { parseStorageUrl } from "./storage-url.js";

export interface CreateStorageOptions {
  /** `sqlite:/path/file.db`, `sqlite::memory:`, a plain file path, or `postgres://…[?schema=NAME]`. */
  url: string;
  /** 32 bytes; see master-key.ts. Encrypts private keys and secret values at rest. */
  encryptionKey: Buffer;
  /** Earlier master keys, still accepted for reading while values are re-encrypted (key rotation). */
  previousEncryptionKeys?: readonly Buffer[];
  logger?: Logger;
  /** Decides lock expiry and challenge-token expiry. */
  clock?: Clock;
}

/**
 * Open storage for a URL. Connects lazily (PostgreSQL) or opens the file at once (SQLite, creating
 * its directory 0700); call `migrate()` before first use. One handle serves every seam.
 */
export function createStorage(options: CreateStorageOptions): Storage {
  const secretBox = createSecretBox(options.encryptionKey, options.previousEncryptionKeys);
  const logger = (options.logger ?? silentLogger()).child({ component: "storage" });
  const database = openSqlDatabase(parseStorageUrl(options.url), logger);
  return createSqlStorage({
    database,
    db: database.db,
    box: secretBox,
    clock: options.clock ?? systemClock,
    logger,
  });
}
