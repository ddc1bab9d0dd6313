import type { Kysely } from "kysely";
import type { Clock } from "../../core/clock.js";
import type { Logger } from "../../core/logger.js";
import type { SqlDatabase } from "../dialect.js";
import type { Database } from "../schema.js";
import type { SecretBox } from "../secret-box.js";

/** What every SQL seam is built from: one database (one pool / connection per process), shared. */
export interface SqlContext {
  database: SqlDatabase;
  db: Kysely<Database>;
  box: SecretBox;
  clock: Clock;
  logger: Logger;
}

// What each ciphertext is bound to (AAD): a value copied into another row does not decrypt.
export const privateKeyContext = (certificateId: string) =>
  JSON.stringify(["certificates.private_key", certificateId]);
export const kvContext = (namespace: string, key: string) => JSON.stringify(["kv.value", namespace, key]);

/** Negative limits mean "no limit" to SQLite and are an error to PostgreSQL: treat them as zero. */
export function sqlLimit(limit: number): number {
  return Math.max(0, Math.floor(limit));
}
