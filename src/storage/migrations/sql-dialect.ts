import { PostgresAdapter, type Kysely } from "kysely";

/** For the few column definitions that differ between the dialects (identity columns). */
export function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
