import { sql, type Kysely } from "kysely";
import type { Clock } from "../core/clock.js";
import { CertfleetError, throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { isUniqueViolation, type SqlDatabase } from "./dialect.js";
import { createSqlIssuanceJournal, type IssuanceJournal } from "./issuance-journal.js";
import { migrateToLatest } from "./migrate.js";
import {
  auditRow,
  CERTIFICATE_COLUMNS,
  CERTIFICATE_SUMMARY_COLUMNS,
  certificateRow,
  identityPatchRow,
  identityRow,
  toAuditRecord,
  toCertificateRecord,
  toCertificateSummary,
  toFailureRecord,
  toIdentityRecord,
} from "./rows.js";
import type { Database } from "./schema.js";
import type { SecretBox } from "./secret-box.js";
import type {
  AuditEvent,
  AuditRecord,
  CertificateRecord,
  CertificateSummary,
  FailureRecord,
  IdentityPatch,
  IdentityRecord,
  NewCertificate,
  NewIdentity,
  Storage,
} from "./storage.js";

export interface SqlStorageDeps {
  database: SqlDatabase;
  secretBox: SecretBox;
  clock: Clock;
  logger: Logger;
}

// What each ciphertext is bound to (AAD): a value copied into another row does not decrypt.
const privateKeyContext = (certificateId: string) =>
  JSON.stringify(["certificates.private_key", certificateId]);
const kvContext = (namespace: string, key: string) => JSON.stringify(["kv.value", namespace, key]);

const FAILURE_COLUMNS = [
  "f.code as failure_code",
  "f.message as failure_message",
  "f.at as failure_at",
  "f.failure_count",
  "f.next_attempt_at",
] as const;

/**
 * The Storage for both SQLite and PostgreSQL. Every write is one statement or one transaction;
 * where two replicas may race (locks, create-once values, new certificate versions) the statement
 * itself decides the winner (upsert with a condition, or a row lock), never a read followed by a write.
 */
export class SqlStorage implements Storage {
  readonly #database: SqlDatabase;
  readonly #db: Kysely<Database>;
  readonly #box: SecretBox;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #closing: Promise<void> | undefined;
  readonly journal: IssuanceJournal;

  constructor(deps: SqlStorageDeps) {
    this.#database = deps.database;
    this.#db = deps.database.db;
    this.#box = deps.secretBox;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.journal = createSqlIssuanceJournal({ db: this.#db, secretBox: this.#box, clock: this.#clock });
  }

  async migrate(signal?: AbortSignal): Promise<void> {
    await migrateToLatest(this.#database, this.#logger, signal);
  }

  async ping(signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    await sql`select 1`.execute(this.#db);
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.destroy();
    return this.#closing;
  }

  // --- certificates -------------------------------------------------------------------------------

  async getCertificate(id: string, signal?: AbortSignal): Promise<CertificateRecord | undefined> {
    throwIfAborted(signal);
    const row = await this.#currentCertificates().selectAll("c").where("c.id", "=", id).executeTakeFirst();
    return row && this.#toRecord(row, row);
  }

  async putCertificate(record: NewCertificate, signal?: AbortSignal): Promise<CertificateRecord> {
    throwIfAborted(signal);
    const now = this.#clock.now().getTime();
    const sealed =
      record.privateKeyPem === null
        ? null
        : this.#box.seal(record.privateKeyPem, privateKeyContext(record.id));
    const values = certificateRow(record, sealed);

    // Each transaction starts with a write, so SQLite takes its write lock up front (a read first
    // would let another process's write turn our later write into SQLITE_BUSY).
    const row = await this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("certificates")
        .values({ ...values, version: 1, created_at: now, updated_at: now })
        .onConflict((oc) => oc.column("id").doNothing())
        .returningAll()
        .executeTakeFirst();
      await trx.deleteFrom("certificate_failures").where("id", "=", record.id).execute();
      if (inserted) return inserted;

      // A current version exists: lock it, keep it in history, replace it.
      await trx
        .selectFrom("certificates")
        .select("id")
        .where("id", "=", record.id)
        .$if(this.#database.rowLocks, (q) => q.forUpdate())
        .execute();
      await trx
        .insertInto("certificate_history")
        .columns(CERTIFICATE_COLUMNS)
        .expression(trx.selectFrom("certificates").select(CERTIFICATE_COLUMNS).where("id", "=", record.id))
        .execute();
      return trx
        .updateTable("certificates")
        .set((eb) => ({ ...values, version: eb("version", "+", 1), updated_at: now }))
        .where("id", "=", record.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    });
    return toCertificateRecord(row, null, record.privateKeyPem);
  }

  async listDueCertificates(at: Date, limit: number, signal?: AbortSignal): Promise<CertificateRecord[]> {
    throwIfAborted(signal);
    const t = at.getTime();
    const rows = await this.#currentCertificates()
      .selectAll("c")
      .where("c.renew_at", "<=", t)
      .where((eb) => eb.or([eb("f.next_attempt_at", "is", null), eb("f.next_attempt_at", "<=", t)]))
      .orderBy("c.renew_at")
      .orderBy("c.id")
      .limit(sqlLimit(limit))
      .execute();
    return rows.map((row) => this.#toRecord(row, row));
  }

  async listCertificates(signal?: AbortSignal): Promise<CertificateSummary[]> {
    throwIfAborted(signal);
    const rows = await this.#currentCertificates()
      .select(CERTIFICATE_SUMMARY_COLUMNS.map((c) => `c.${c}` as const))
      .orderBy("c.id")
      .execute();
    return rows.map((row) => toCertificateSummary(row, row));
  }

  async rescheduleRenewal(
    id: string,
    version: number,
    renewAt: Date,
    signal?: AbortSignal,
  ): Promise<boolean> {
    throwIfAborted(signal);
    const result = await this.#db
      .updateTable("certificates")
      .set({ renew_at: renewAt.getTime() })
      .where("id", "=", id)
      .where("version", "=", version)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async recordFailure(id: string, failure: FailureRecord, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const row = {
      id,
      code: failure.code,
      message: failure.message,
      at: failure.at.getTime(),
      failure_count: failure.failureCount,
      next_attempt_at: failure.nextAttemptAt?.getTime() ?? null,
    };
    const { id: _id, ...update } = row;
    await this.#db
      .insertInto("certificate_failures")
      .values(row)
      .onConflict((oc) => oc.column("id").doUpdateSet(update))
      .execute();
  }

  async getFailure(id: string, signal?: AbortSignal): Promise<FailureRecord | undefined> {
    throwIfAborted(signal);
    const row = await this.#db
      .selectFrom("certificate_failures")
      .select([
        "code as failure_code",
        "message as failure_message",
        "at as failure_at",
        "failure_count",
        "next_attempt_at",
      ])
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? (toFailureRecord(row) ?? undefined) : undefined;
  }

  async listCertificateHistory(id: string, signal?: AbortSignal): Promise<CertificateRecord[]> {
    throwIfAborted(signal);
    const rows = await this.#db
      .selectFrom("certificate_history")
      .selectAll()
      .where("id", "=", id)
      .orderBy("version", "desc")
      .execute();
    return rows.map((row) => this.#toRecord(row, null));
  }

  #currentCertificates() {
    return this.#db
      .selectFrom("certificates as c")
      .leftJoin("certificate_failures as f", "f.id", "c.id")
      .select(FAILURE_COLUMNS);
  }

  #toRecord(
    row: Parameters<typeof toCertificateRecord>[0],
    failure: Parameters<typeof toCertificateRecord>[1],
  ) {
    const key = row.private_key === null ? null : this.#box.open(row.private_key, privateKeyContext(row.id));
    return toCertificateRecord(row, failure, key);
  }

  async reencryptSecrets(signal?: AbortSignal): Promise<{ rewritten: number; total: number }> {
    let rewritten = 0;
    let total = 0;
    const box = this.#box;
    const reseal = (envelope: string, context: string) => box.seal(box.open(envelope, context), context);

    const current = await this.#db
      .selectFrom("certificates")
      .select(["id", "private_key"])
      .where("private_key", "is not", null)
      .execute();
    for (const row of current) {
      throwIfAborted(signal);
      total++;
      if (box.isCurrent(row.private_key!)) continue;
      const result = await this.#db
        .updateTable("certificates")
        .set({ private_key: reseal(row.private_key!, privateKeyContext(row.id)) })
        .where("id", "=", row.id)
        .where("private_key", "=", row.private_key)
        .executeTakeFirst();
      rewritten += Number(result.numUpdatedRows);
    }

    const history = await this.#db
      .selectFrom("certificate_history")
      .select(["id", "version", "private_key"])
      .where("private_key", "is not", null)
      .execute();
    for (const row of history) {
      throwIfAborted(signal);
      total++;
      if (box.isCurrent(row.private_key!)) continue;
      const result = await this.#db
        .updateTable("certificate_history")
        .set({ private_key: reseal(row.private_key!, privateKeyContext(row.id)) })
        .where("id", "=", row.id)
        .where("version", "=", row.version)
        .where("private_key", "=", row.private_key)
        .executeTakeFirst();
      rewritten += Number(result.numUpdatedRows);
    }

    const values = await this.#db
      .selectFrom("kv")
      .select(["namespace", "key", "value"])
      .where("secret", "=", 1)
      .execute();
    for (const row of values) {
      throwIfAborted(signal);
      total++;
      if (box.isCurrent(row.value)) continue;
      const result = await this.#db
        .updateTable("kv")
        .set({ value: reseal(row.value, kvContext(row.namespace, row.key)) })
        .where("namespace", "=", row.namespace)
        .where("key", "=", row.key)
        .where("value", "=", row.value)
        .executeTakeFirst();
      rewritten += Number(result.numUpdatedRows);
    }
    if (rewritten > 0) this.#logger.info({ rewritten, total, key: box.keyId }, "secrets re-encrypted");
    return { rewritten, total };
  }

  // --- key/value ----------------------------------------------------------------------------------

  async getValue(namespace: string, key: string, signal?: AbortSignal): Promise<string | undefined> {
    throwIfAborted(signal);
    const row = await this.#db
      .selectFrom("kv")
      .select(["value", "secret"])
      .where("namespace", "=", namespace)
      .where("key", "=", key)
      .executeTakeFirst();
    return row && this.#openValue(namespace, key, row);
  }

  async putValue(
    namespace: string,
    key: string,
    value: string,
    options: { secret?: boolean; ifAbsent?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<string> {
    throwIfAborted(signal);
    const secret = options.secret ?? false;
    const stored = secret ? this.#box.seal(value, kvContext(namespace, key)) : value;
    // With ifAbsent, the conflict "update" rewrites the existing value with itself: one atomic
    // statement that returns whichever value won, even when a concurrent delete runs alongside.
    const row = await this.#db
      .insertInto("kv")
      .values({ namespace, key, value: stored, secret: secret ? 1 : 0 })
      .onConflict((oc) =>
        oc
          .columns(["namespace", "key"])
          .doUpdateSet((eb) =>
            options.ifAbsent
              ? { value: eb.ref("kv.value"), secret: eb.ref("kv.secret") }
              : { value: eb.ref("excluded.value"), secret: eb.ref("excluded.secret") },
          ),
      )
      .returning(["value", "secret"])
      .executeTakeFirstOrThrow();
    return this.#openValue(namespace, key, row);
  }

  async deleteValue(namespace: string, key: string): Promise<void> {
    await this.#db.deleteFrom("kv").where("namespace", "=", namespace).where("key", "=", key).execute();
  }

  #openValue(namespace: string, key: string, row: { value: string; secret: number }): string {
    return row.secret === 1 ? this.#box.open(row.value, kvContext(namespace, key)) : row.value;
  }

  // --- HTTP-01 tokens -----------------------------------------------------------------------------

  async putChallengeToken(
    token: string,
    keyAuthorization: string,
    expiresAt: Date,
    signal?: AbortSignal,
  ): Promise<void> {
    throwIfAborted(signal);
    const row = { token, key_authorization: keyAuthorization, expires_at: expiresAt.getTime() };
    await this.#db
      .insertInto("challenge_tokens")
      .values(row)
      .onConflict((oc) =>
        oc
          .column("token")
          .doUpdateSet({ key_authorization: row.key_authorization, expires_at: row.expires_at }),
      )
      .execute();
    // Housekeeping rides along with writes, so the table never needs a sweeper.
    await this.#db
      .deleteFrom("challenge_tokens")
      .where("expires_at", "<=", this.#clock.now().getTime())
      .execute();
  }

  async getChallengeToken(token: string, signal?: AbortSignal): Promise<string | undefined> {
    throwIfAborted(signal);
    const row = await this.#db
      .selectFrom("challenge_tokens")
      .select("key_authorization")
      .where("token", "=", token)
      .where("expires_at", ">", this.#clock.now().getTime())
      .executeTakeFirst();
    return row?.key_authorization;
  }

  async deleteChallengeToken(token: string): Promise<void> {
    await this.#db.deleteFrom("challenge_tokens").where("token", "=", token).execute();
  }

  // --- locks --------------------------------------------------------------------------------------

  async tryLock(name: string, owner: string, ttlMs: number, signal?: AbortSignal): Promise<boolean> {
    throwIfAborted(signal);
    const now = this.#clock.now().getTime();
    // One statement: insert, or take over a row that has expired or is already ours. A row comes back
    // only if we wrote it, so concurrent callers see exactly one winner.
    const row = await this.#db
      .insertInto("locks")
      .values({ name, owner, expires_at: now + ttlMs })
      .onConflict((oc) =>
        oc
          .column("name")
          .doUpdateSet((eb) => ({
            owner: eb.ref("excluded.owner"),
            expires_at: eb.ref("excluded.expires_at"),
          }))
          .where((eb) => eb.or([eb("locks.expires_at", "<=", now), eb("locks.owner", "=", owner)])),
      )
      .returning("name")
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Ours while the row names us: an expired lock that nobody took over may still be refreshed. */
  async refreshLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const result = await this.#db
      .updateTable("locks")
      .set({ expires_at: this.#clock.now().getTime() + ttlMs })
      .where("name", "=", name)
      .where("owner", "=", owner)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async unlock(name: string, owner: string): Promise<void> {
    await this.#db.deleteFrom("locks").where("name", "=", name).where("owner", "=", owner).execute();
  }

  async releaseStaleLocks(ownerPrefix: string, currentOwner: string): Promise<number> {
    // a prefix compare, not LIKE: the prefix is data, its `%` or `_` must not act as wildcards
    const result = await this.#db
      .deleteFrom("locks")
      .where((eb) => eb(eb.fn("substr", ["owner", eb.val(1), eb.val(ownerPrefix.length)]), "=", ownerPrefix))
      .where("owner", "!=", currentOwner)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // --- identities ---------------------------------------------------------------------------------

  async createIdentity(record: NewIdentity, signal?: AbortSignal): Promise<IdentityRecord> {
    throwIfAborted(signal);
    const row = await identityConflictAsError(() =>
      this.#db
        .insertInto("identities")
        .values(identityRow(record, this.#clock.now().getTime()))
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toIdentityRecord(row);
  }

  async getIdentity(id: string, signal?: AbortSignal): Promise<IdentityRecord | undefined> {
    throwIfAborted(signal);
    const row = await this.#db.selectFrom("identities").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toIdentityRecord(row);
  }

  async findIdentityByBinding(bindingKey: string, signal?: AbortSignal): Promise<IdentityRecord | undefined> {
    throwIfAborted(signal);
    const row = await this.#db
      .selectFrom("identities")
      .selectAll()
      .where("binding_key", "=", bindingKey)
      .executeTakeFirst();
    return row && toIdentityRecord(row);
  }

  async listIdentities(signal?: AbortSignal): Promise<IdentityRecord[]> {
    throwIfAborted(signal);
    const rows = await this.#db.selectFrom("identities").selectAll().orderBy("name").orderBy("id").execute();
    return rows.map(toIdentityRecord);
  }

  async updateIdentity(
    id: string,
    patch: IdentityPatch,
    signal?: AbortSignal,
  ): Promise<IdentityRecord | undefined> {
    throwIfAborted(signal);
    const row = await identityConflictAsError(() =>
      this.#db
        .updateTable("identities")
        .set({ ...identityPatchRow(patch), updated_at: this.#clock.now().getTime() })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst(),
    );
    return row && toIdentityRecord(row);
  }

  async deleteIdentity(id: string, signal?: AbortSignal): Promise<boolean> {
    throwIfAborted(signal);
    const result = await this.#db.deleteFrom("identities").where("id", "=", id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  // --- audit --------------------------------------------------------------------------------------

  async appendAudit(event: AuditEvent | readonly AuditEvent[], signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const events = Array.isArray(event) ? event : [event as AuditEvent];
    if (events.length === 0) return;
    const now = this.#clock.now();
    await this.#db
      .insertInto("audit_log")
      .values(events.map((e) => auditRow(e, now)))
      .execute();
  }

  async listAudit(
    query: { limit: number; before?: number; type?: string },
    signal?: AbortSignal,
  ): Promise<AuditRecord[]> {
    throwIfAborted(signal);
    const rows = await this.#db
      .selectFrom("audit_log")
      .selectAll()
      .$if(query.before !== undefined, (q) => q.where("id", "<", query.before ?? 0))
      .$if(query.type !== undefined, (q) => q.where("type", "=", query.type ?? ""))
      .orderBy("id", "desc")
      .limit(sqlLimit(query.limit))
      .execute();
    return rows.map(toAuditRecord);
  }
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

/** Negative limits mean "no limit" to SQLite and are an error to PostgreSQL: treat them as zero. */
function sqlLimit(limit: number): number {
  return Math.max(0, Math.floor(limit));
}
