import type { Migration, MigrationProvider } from "kysely";
import * as initial from "./0001_initial.js";
import * as acmeServer from "./0002_acme_server.js";
import * as identityAssignments from "./0005_identity_assignments.js";
import * as issuanceJournal from "./0006_issuance_journal.js";
import * as certificateInventory from "./0007_certificate_inventory.js";

/**
 * Every migration, by name; names sort in the order they run. To add one, write `NNNN_topic.ts`
 * exporting `up(db)` (and list it here with the next number). Never edit one that has shipped: a
 * database that already ran it will not run it again.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  "0001_initial": initial,
  "0002_acme_server": acmeServer,
  "0005_identity_assignments": identityAssignments,
  "0006_issuance_journal": issuanceJournal,
  "0007_certificate_inventory": certificateInventory,
};

/** A static map, not a directory scan: works the same from src/ under vitest and from dist/. */
export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
