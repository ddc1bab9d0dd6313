import type { Kysely } from "kysely";

// The certificates an identity record is assigned (`GET /api/assigned-certificates`): one row per local
// certificate name. A frozen snapshot like every migration: domains are JSON text, times epoch ms.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("identity_assignments")
    .addColumn("identity_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("domains", "text", (c) => c.notNull())
    .addColumn("key_type", "text", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("identity_assignments_pk", ["identity_id", "name"])
    .execute();
}
