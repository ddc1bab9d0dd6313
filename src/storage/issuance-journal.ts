import type { Kysely } from "kysely";
import type { Clock } from "../core/clock.js";
import { throwIfAborted } from "../core/errors.js";
import type { KeyType } from "../core/key-types.js";
import type { Database } from "./schema.js";
import type { SecretBox } from "./secret-box.js";
import type { KeyCustody } from "./storage.js";

/**
 * The issuance journal: what a process needs to finish an order someone else (or its own previous
 * life) started. One entry per certificate id, written under the certificate's lock before the order
 * is finalized and deleted once the certificate is stored, so an entry that survives a crash names an
 * order the CA may already have finalized. Private keys are encrypted at rest (bound to the id);
 * callers see plaintext. Every write is one statement; misses return `undefined`.
 */
export interface IssuanceJournal {
  /** Create or replace the entry for `entry.id` (a new attempt supersedes an abandoned one). */
  begin(entry: NewJournalEntry, signal?: AbortSignal): Promise<JournalEntry>;
  /** Record progress: the order URL once the CA created the order, then the state. Always runs. */
  update(id: string, patch: { orderUrl?: string; state: JournalState }): Promise<void>;
  get(id: string, signal?: AbortSignal): Promise<JournalEntry | undefined>;
  /** Every entry, oldest first. */
  list(signal?: AbortSignal): Promise<JournalEntry[]>;
  /** Always runs; a missing entry is not an error. */
  delete(id: string): Promise<void>;
}

/**
 * `created`: key and CSR chosen, no order yet. `ordered`: the CA holds an order (`orderUrl`).
 * `finalizing`: the CSR is (being) submitted: the CA may have issued the certificate.
 */
export type JournalState = "created" | "ordered" | "finalizing";

export interface NewJournalEntry {
  id: string;
  names: string[];
  issuerId: string;
  keyType: KeyType;
  custody: KeyCustody;
  csrPem: string;
  /** Plaintext PEM; null in CSR mode. Encrypted at rest. */
  privateKeyPem: string | null;
  /** The certificate version this issuance replaces (renewal), else null. */
  replacingVersion: number | null;
  actor: string | null;
}

export interface JournalEntry extends NewJournalEntry {
  orderUrl: string | null;
  state: JournalState;
  createdAt: Date;
  updatedAt: Date;
}

export interface SqlJournalDeps {
  db: Kysely<Database>;
  secretBox: SecretBox;
  clock: Clock;
}

const keyContext = (id: string) => JSON.stringify(["issuance_journal.private_key", id]);

export function createSqlIssuanceJournal(deps: SqlJournalDeps): IssuanceJournal {
  const { db, secretBox, clock } = deps;

  function toEntry(row: Database["issuance_journal"]): JournalEntry {
    return {
      id: row.id,
      names: JSON.parse(row.names) as string[],
      issuerId: row.issuer_id,
      keyType: row.key_type as KeyType,
      custody: row.custody as KeyCustody,
      csrPem: row.csr_pem,
      privateKeyPem: row.private_key === null ? null : secretBox.open(row.private_key, keyContext(row.id)),
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
          entry.privateKeyPem === null ? null : secretBox.seal(entry.privateKeyPem, keyContext(entry.id)),
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
