import { sql } from "kysely";
import { throwIfAborted } from "../core/errors.js";
import { migrateToLatest } from "./migrate.js";
import { createSqlAcmeStore } from "./sql/acme.js";
import { createSqlAuditLog } from "./sql/audit.js";
import { createSqlCertificateStore } from "./sql/certificates.js";
import { createSqlChallengeTokenStore } from "./sql/challenges.js";
import type { SqlContext } from "./sql/context.js";
import { createSqlIdentityStore } from "./sql/identities.js";
import { createSqlIssuanceJournal } from "./sql/journal.js";
import { createSqlKeyValueStore } from "./sql/kv.js";
import { createSqlLockStore } from "./sql/locks.js";
import { reencryptSecrets } from "./sql/reencrypt.js";
import type { Storage } from "./storage.js";

/**
 * The Storage for both SQLite and PostgreSQL: every seam over one database handle (one connection
 * per process on SQLite, so it never sees two writers from one process). Every write is one
 * statement or one transaction.
 */
export function createSqlStorage(context: SqlContext): Storage {
  let closing: Promise<void> | undefined;
  return {
    certificates: createSqlCertificateStore(context),
    acme: createSqlAcmeStore(context),
    kv: createSqlKeyValueStore(context),
    locks: createSqlLockStore(context),
    identities: createSqlIdentityStore(context),
    audit: createSqlAuditLog(context),
    challenges: createSqlChallengeTokenStore(context),
    journal: createSqlIssuanceJournal(context),

    migrate: (signal) => migrateToLatest(context.database, context.logger, signal),
    async ping(signal) {
      throwIfAborted(signal);
      await sql`select 1`.execute(context.db);
    },
    close() {
      closing ??= context.db.destroy();
      return closing;
    },
    reencryptSecrets: (signal) => reencryptSecrets(context, signal),
  };
}
