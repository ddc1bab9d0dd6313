import type { Kysely } from "kysely";

// The ACME server's tables (src/acme-server). A frozen snapshot like every migration: times are epoch
// milliseconds in bigint columns, booleans 0/1 integers, JSON text. EAB HMAC keys are not here: they
// live encrypted in `kv` (namespace "acme-eab").

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("acme_accounts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("profile", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("jwk", "text", (c) => c.notNull())
    .addColumn("thumbprint", "text", (c) => c.notNull())
    .addColumn("contact", "text", (c) => c.notNull())
    .addColumn("eab_kid", "text", (c) => c.unique())
    .addColumn("grants", "text", (c) => c.notNull())
    .addColumn("owner_id", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addUniqueConstraint("acme_accounts_profile_thumbprint", ["profile", "thumbprint"])
    .execute();

  await db.schema
    .createTable("acme_orders")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("profile", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("identifiers", "text", (c) => c.notNull())
    .addColumn("authorizations", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("error", "text")
    .addColumn("certificate_id", "text")
    .addColumn("replaces", "text")
    .addColumn("processing_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("acme_orders_account_created")
    .on("acme_orders")
    .columns(["account_id", "created_at"])
    .execute();

  await db.schema
    .createTable("acme_authorizations")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("profile", "text", (c) => c.notNull())
    .addColumn("identifier", "text", (c) => c.notNull())
    .addColumn("wildcard", "integer", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("acme_authorizations_account_status")
    .on("acme_authorizations")
    .columns(["account_id", "status"])
    .execute();

  await db.schema
    .createTable("acme_challenges")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("authorization_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("token", "text", (c) => c.notNull().unique())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("validated_at", "bigint")
    .addColumn("error", "text")
    .addColumn("processing_at", "bigint")
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("acme_challenges_authorization")
    .on("acme_challenges")
    .column("authorization_id")
    .execute();

  await db.schema
    .createTable("acme_certificates")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("profile", "text", (c) => c.notNull())
    .addColumn("order_id", "text", (c) => c.notNull())
    .addColumn("names", "text", (c) => c.notNull())
    .addColumn("serial", "text", (c) => c.notNull())
    .addColumn("ari_cert_id", "text", (c) => c.unique())
    .addColumn("cert_pem", "text", (c) => c.notNull())
    .addColumn("chains", "text", (c) => c.notNull())
    .addColumn("not_before", "bigint", (c) => c.notNull())
    .addColumn("not_after", "bigint", (c) => c.notNull())
    .addColumn("revoked_at", "bigint")
    .addColumn("revocation_reason", "integer")
    .addColumn("replaced_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("acme_used_nonces")
    .addColumn("nonce", "text", (c) => c.primaryKey())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("acme_used_nonces_expires")
    .on("acme_used_nonces")
    .column("expires_at")
    .execute();
}
