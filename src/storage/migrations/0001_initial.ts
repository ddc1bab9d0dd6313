import type { CreateTableBuilder, Kysely } from "kysely";
import { isPostgres } from "./sql-dialect.js";

// A migration is a frozen snapshot: it never imports schema.ts, which moves on with later migrations.
// Times are epoch milliseconds in bigint columns; booleans are 0/1 integers; JSON is text.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("certificates")
    .$call(certificateColumns)
    .addPrimaryKeyConstraint("certificates_pk", ["id"])
    .execute();
  await db.schema.createIndex("certificates_renew_at").on("certificates").column("renew_at").execute();

  await db.schema
    .createTable("certificate_history")
    .$call(certificateColumns)
    .addPrimaryKeyConstraint("certificate_history_pk", ["id", "version"])
    .execute();

  await db.schema
    .createTable("certificate_failures")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("message", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("failure_count", "integer", (c) => c.notNull())
    .addColumn("next_attempt_at", "bigint")
    .execute();

  await db.schema
    .createTable("kv")
    .addColumn("namespace", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("secret", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("kv_pk", ["namespace", "key"])
    .execute();

  await db.schema
    .createTable("challenge_tokens")
    .addColumn("token", "text", (c) => c.primaryKey())
    .addColumn("key_authorization", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("locks")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("identities")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("method", "text", (c) => c.notNull())
    .addColumn("binding", "text", (c) => c.notNull())
    .addColumn("binding_key", "text", (c) => c.unique())
    .addColumn("grants", "text", (c) => c.notNull())
    .addColumn("enabled", "integer", (c) => c.notNull())
    .addColumn("admin", "integer", (c) => c.notNull())
    .addColumn("secret_hash", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("audit_log")
    .$call((t) =>
      isPostgres(db)
        ? t.addColumn("id", "bigint", (c) => c.primaryKey().generatedByDefaultAsIdentity())
        : t.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement()),
    )
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("actor", "text")
    .addColumn("method", "text")
    .addColumn("subject", "text")
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("reason", "text")
    .addColumn("remote_address", "text")
    .addColumn("data", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_log_type_id").on("audit_log").columns(["type", "id"]).execute();
}

/** The current version and the history share one shape, so a row can be copied across as is. */
function certificateColumns<T extends string>(table: CreateTableBuilder<T>) {
  return table
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("names", "text", (c) => c.notNull())
    .addColumn("issuer_id", "text", (c) => c.notNull())
    .addColumn("key_type", "text", (c) => c.notNull())
    .addColumn("custody", "text", (c) => c.notNull())
    .addColumn("cert_pem", "text", (c) => c.notNull())
    .addColumn("chain_pem", "text", (c) => c.notNull())
    .addColumn("private_key", "text")
    .addColumn("not_before", "bigint", (c) => c.notNull())
    .addColumn("not_after", "bigint", (c) => c.notNull())
    .addColumn("serial", "text", (c) => c.notNull())
    .addColumn("ari_cert_id", "text")
    .addColumn("renew_at", "bigint", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull());
}
