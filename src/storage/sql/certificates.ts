import { sql } from "kysely";
import { throwIfAborted } from "../../core/errors.js";
import type { CertificateStatus, CertificateStore } from "../certificate-store.js";
import {
  CERTIFICATE_COLUMNS,
  CERTIFICATE_SUMMARY_COLUMNS,
  certificateRow,
  toCertificateRecord,
  toCertificateSummary,
  toFailureRecord,
} from "../rows.js";
import { privateKeyContext, sqlLimit, type SqlContext } from "./context.js";

const FAILURE_COLUMNS = [
  "f.code as failure_code",
  "f.message as failure_message",
  "f.at as failure_at",
  "f.failure_count",
  "f.next_attempt_at",
] as const;

/**
 * Where two replicas may race (a new certificate version) the statement itself decides the winner
 * (an upsert, or a row lock), never a read followed by a write.
 */
export function createSqlCertificateStore({ database, db, box, clock }: SqlContext): CertificateStore {
  const currentCertificates = () =>
    db
      .selectFrom("certificates as c")
      .leftJoin("certificate_failures as f", "f.id", "c.id")
      .select(FAILURE_COLUMNS);

  const toRecord = (
    row: Parameters<typeof toCertificateRecord>[0],
    failure: Parameters<typeof toCertificateRecord>[1],
  ) => {
    const key = row.private_key === null ? null : box.open(row.private_key, privateKeyContext(row.id));
    return toCertificateRecord(row, failure, key);
  };

  return {
    async getCertificate(id, signal) {
      throwIfAborted(signal);
      const row = await currentCertificates().selectAll("c").where("c.id", "=", id).executeTakeFirst();
      return row && toRecord(row, row);
    },

    async putCertificate(record, signal) {
      throwIfAborted(signal);
      const now = clock.now().getTime();
      const sealed =
        record.privateKeyPem === null ? null : box.seal(record.privateKeyPem, privateKeyContext(record.id));
      const values = certificateRow(record, sealed);

      // Each transaction starts with a write, so SQLite takes its write lock up front (a read first
      // would let another process's write turn our later write into SQLITE_BUSY).
      const row = await db.transaction().execute(async (trx) => {
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
          .$if(database.rowLocks, (q) => q.forUpdate())
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
    },

    async listDueCertificates(at, limit, signal) {
      throwIfAborted(signal);
      const t = at.getTime();
      const rows = await currentCertificates()
        .selectAll("c")
        .where("c.renew_at", "<=", t)
        .where((eb) => eb.or([eb("f.next_attempt_at", "is", null), eb("f.next_attempt_at", "<=", t)]))
        .orderBy("c.renew_at")
        .orderBy("c.id")
        .limit(sqlLimit(limit))
        .execute();
      return rows.map((row) => toRecord(row, row));
    },

    async listCertificates(signal) {
      throwIfAborted(signal);
      const rows = await currentCertificates()
        .select(CERTIFICATE_SUMMARY_COLUMNS.map((c) => `c.${c}` as const))
        .orderBy("c.id")
        .execute();
      return rows.map((row) => toCertificateSummary(row, row));
    },

    async rescheduleRenewal(id, version, renewAt, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("certificates")
        .set({ renew_at: renewAt.getTime() })
        .where("id", "=", id)
        .where("version", "=", version)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async recordFailure(id, failure, signal, requested) {
      throwIfAborted(signal);
      const row = {
        id,
        code: failure.code,
        message: failure.message,
        at: failure.at.getTime(),
        failure_count: failure.failureCount,
        next_attempt_at: failure.nextAttemptAt?.getTime() ?? null,
        ...(requested
          ? { names: JSON.stringify(requested.names), issuer_id: requested.issuerId, owner: requested.owner }
          : {}),
      };
      const { id: _id, ...update } = row;
      await db
        .insertInto("certificate_failures")
        .values(row)
        .onConflict((oc) => oc.column("id").doUpdateSet(update))
        .execute();
    },

    async listUnissued(signal) {
      throwIfAborted(signal);
      const rows = await db
        .selectFrom("certificate_failures as f")
        .leftJoin("certificates as c", "c.id", "f.id")
        .where("c.id", "is", null)
        .where("f.names", "is not", null)
        .select([
          "f.id",
          "f.names",
          "f.issuer_id",
          "f.owner",
          "f.code as failure_code",
          "f.message as failure_message",
          "f.at as failure_at",
          "f.failure_count",
          "f.next_attempt_at",
        ])
        .orderBy("f.id")
        .execute();
      return rows.flatMap((row) => {
        const lastFailure = toFailureRecord(row);
        return lastFailure && row.names !== null
          ? [
              {
                id: row.id,
                names: JSON.parse(row.names) as string[],
                issuerId: row.issuer_id ?? "",
                owner: row.owner,
                lastFailure,
              },
            ]
          : [];
      });
    },

    async getFailure(id, signal) {
      throwIfAborted(signal);
      const row = await db
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
    },

    async listCertificateHistory(id, signal) {
      throwIfAborted(signal);
      const rows = await db
        .selectFrom("certificate_history")
        .selectAll()
        .where("id", "=", id)
        .orderBy("version", "desc")
        .execute();
      return rows.map((row) => toRecord(row, null));
    },

    async certificateStatistics(query, signal) {
      throwIfAborted(signal);
      const t = query.at.getTime();
      const status = sql<CertificateStatus>`case when c.not_after <= ${t} then 'expired' when f.failure_count > 0 then 'failing' when c.renew_at <= ${t} then 'renewal_due' else 'valid' end`;
      // status is computed once in a subquery: PostgreSQL would not match a parameterised CASE in
      // GROUP BY with the one in SELECT
      const classified = db
        .selectFrom("certificates as c")
        .leftJoin("certificate_failures as f", "f.id", "c.id")
        .select(["c.issuer_id", "c.not_after", status.as("status")])
        .as("s");
      const groups = await db
        .selectFrom(classified)
        .select([
          "s.issuer_id",
          "s.status",
          sql<string | number>`count(*)`.as("count"),
          sql<string | number>`min(s.not_after)`.as("earliest"),
          sql<string | number>`sum(s.not_after - ${t})`.as("sum_ms"),
          ...query.expiryBucketsMs.map((b, i) =>
            sql<string | number>`sum(case when s.not_after <= ${t + b} then 1 else 0 end)`.as(`b${i}`),
          ),
        ])
        .groupBy(["s.issuer_id", "s.status"])
        .orderBy("s.issuer_id")
        .execute();

      const needsAttention = currentCertificates().where((eb) =>
        eb.or([eb("c.renew_at", "<=", t), eb("f.failure_count", ">", 0)]),
      );
      const rows = await (query.allCertificates ? currentCertificates() : needsAttention)
        .select(CERTIFICATE_SUMMARY_COLUMNS.map((c) => `c.${c}` as const))
        .orderBy("c.not_after")
        .orderBy("c.id")
        .limit(sqlLimit(query.attentionLimit))
        .execute();
      const total = groups
        .filter((g) => query.allCertificates || g.status !== "valid")
        .reduce((n, g) => n + Number(g.count), 0);
      return {
        groups: groups.map((g) => {
          const row = g as unknown as Record<string, string | number>;
          return {
            issuerId: g.issuer_id,
            status: g.status,
            count: Number(g.count),
            earliestNotAfter: new Date(Number(g.earliest)),
            sumTimeToExpiryMs: Number(g.sum_ms),
            bucketCounts: query.expiryBucketsMs.map((_, i) => Number(row[`b${i}`])),
          };
        }),
        attention: rows.map((row) => toCertificateSummary(row, row)),
        attentionOmitted: Math.max(0, total - rows.length),
      };
    },
  };
}
