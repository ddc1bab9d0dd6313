import type { Kysely } from "kysely";

// The issuance journal (src/storage/issuance-journal.ts): one row per certificate id while an order for
// it is in flight, written before the order is finalized so a restart (or another replica) resumes the
// same order instead of ordering again. A frozen snapshot like every migration: times are epoch
// milliseconds in bigint columns, JSON as text, the private key a SecretBox envelope.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("issuance_journal")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("names", "text", (c) => c.notNull())
    .addColumn("issuer_id", "text", (c) => c.notNull())
    .addColumn("key_type", "text", (c) => c.notNull())
    .addColumn("custody", "text", (c) => c.notNull())
    .addColumn("csr_pem", "text", (c) => c.notNull())
    .addColumn("private_key", "text")
    .addColumn("order_url", "text")
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("replacing_version", "integer")
    .addColumn("actor", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
}
