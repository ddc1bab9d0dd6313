import { throwIfAborted } from "../../core/errors.js";
import type { KeyType } from "../../core/key-types.js";
import type { KeyCustody } from "../certificate-store.js";
import type { IssuanceJournal, JournalEntry, JournalState } from "../issuance-journal.js";
import type { Database } from "../schema.js";
import type { SqlContext } from "./context.js";

/** What a journaled key is sealed to (also used by reencryptSecrets). */
export const journalKeyContext = (id: string) => JSON.stringify(["issuance_journal.private_key", id]);

export function createSqlIssuanceJournal({ db, box: secretBox, clock }: SqlContext): IssuanceJournal {
  function toEntry(row: Database["issuance_journal"]): JournalEntry {
    return {
      id: row.id,
      names: JSON.parse(row.names) as string[],
      issuerId: row.issuer_id,
      keyType: row.key_type as KeyType,
      custody: row.custody as KeyCustody,
      csrPem: row.csr_pem,
      privateKeyPem:
        row.private_key === null ? null : secretBox.open(row.private_key, journalKeyContext(row.id)),
      replacingVersion: row.replacing_version === null ? null : Number(row.replacing_version),
      actor: row.actor,
      orderUrl: row.order_url,
      state: row.state as JournalState,
      createdAt: new Date(Number(row.created_at)),
      updatedAt: new Date(Number(row.updated_at)),
    };
  }

  return {
    async begin(entry, signal) {
      throwIfAborted(signal);
      const now = clock.now().getTime();
      const row = {
        id: entry.id,
        names: JSON.stringify(entry.names),
        issuer_id: entry.issuerId,
        key_type: entry.keyType,
        custody: entry.custody,
        csr_pem: entry.csrPem,
        private_key:
          entry.privateKeyPem === null
            ? null
            : secretBox.seal(entry.privateKeyPem, journalKeyContext(entry.id)),
        order_url: null,
        state: "created",
        replacing_version: entry.replacingVersion,
        actor: entry.actor,
        created_at: now,
        updated_at: now,
      };
      const { id: _id, created_at: _created, ...replace } = row;
      const stored = await db
        .insertInto("issuance_journal")
        .values(row)
        .onConflict((oc) => oc.column("id").doUpdateSet(replace))
        .returningAll()
        .executeTakeFirstOrThrow();
      return toEntry(stored);
    },
    async update(id, patch) {
      await db
        .updateTable("issuance_journal")
        .set({
          state: patch.state,
          ...(patch.orderUrl !== undefined ? { order_url: patch.orderUrl } : {}),
          updated_at: clock.now().getTime(),
        })
        .where("id", "=", id)
        .execute();
    },
    async get(id, signal) {
      throwIfAborted(signal);
      const row = await db.selectFrom("issuance_journal").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toEntry(row);
    },
    async list(signal) {
      throwIfAborted(signal);
      const rows = await db.selectFrom("issuance_journal").selectAll().orderBy("created_at").execute();
      return rows.map(toEntry);
    },
    async delete(id) {
      await db.deleteFrom("issuance_journal").where("id", "=", id).execute();
    },
  };
}
