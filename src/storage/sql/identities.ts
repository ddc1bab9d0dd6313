import { CertfleetError, throwIfAborted } from "../../core/errors.js";
import { isUniqueViolation } from "../dialect.js";
import { createIdentityAssignments } from "../identity-assignments.js";
import type { IdentityStore } from "../identity-store.js";
import { identityPatchRow, identityRow, toIdentityRecord } from "../rows.js";
import type { SqlContext } from "./context.js";

export function createSqlIdentityStore({ db, clock }: SqlContext): IdentityStore {
  const assignments = createIdentityAssignments(db, () => clock.now());
  return {
    ...assignments,
    async createIdentity(record, signal) {
      throwIfAborted(signal);
      const row = await identityConflictAsError(() =>
        db
          .insertInto("identities")
          .values(identityRow(record, clock.now().getTime()))
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      return toIdentityRecord(row);
    },

    async getIdentity(id, signal) {
      throwIfAborted(signal);
      const row = await db.selectFrom("identities").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toIdentityRecord(row);
    },

    async findIdentityByBinding(bindingKey, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("identities")
        .selectAll()
        .where("binding_key", "=", bindingKey)
        .executeTakeFirst();
      return row && toIdentityRecord(row);
    },

    async listIdentities(signal) {
      throwIfAborted(signal);
      const rows = await db.selectFrom("identities").selectAll().orderBy("name").orderBy("id").execute();
      return rows.map(toIdentityRecord);
    },

    async updateIdentity(id, patch, signal) {
      throwIfAborted(signal);
      const row = await identityConflictAsError(() =>
        db
          .updateTable("identities")
          .set({ ...identityPatchRow(patch), updated_at: clock.now().getTime() })
          .where("id", "=", id)
          .returningAll()
          .executeTakeFirst(),
      );
      return row && toIdentityRecord(row);
    },

    async deleteIdentity(id, signal) {
      throwIfAborted(signal);
      const result = await db.deleteFrom("identities").where("id", "=", id).executeTakeFirst();
      await assignments.replaceAssignments(id, []);
      return result.numDeletedRows > 0n;
    },
  };
}

async function identityConflictAsError<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    throw new CertfleetError("identity_conflict", "an identity with this id or binding already exists", {
      status: 409,
      cause: e,
    });
  }
}
