import type { Kysely } from "kysely";

// The inventory: every certificate has an owner (who asked for it: an identity, an ACME account / EAB
// key), and a certificate that has never been issued exists from its first attempt — its failure row
// carries the names, issuer and owner it was requested with. A frozen snapshot like every migration.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("certificates").addColumn("owner", "text").execute();
  await db.schema.alterTable("certificate_history").addColumn("owner", "text").execute();
  await db.schema.alterTable("certificate_failures").addColumn("names", "text").execute();
  await db.schema.alterTable("certificate_failures").addColumn("issuer_id", "text").execute();
  await db.schema.alterTable("certificate_failures").addColumn("owner", "text").execute();
}
