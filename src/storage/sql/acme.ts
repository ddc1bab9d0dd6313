import type { Selectable } from "kysely";
import type { JWK } from "jose";
import { throwIfAborted } from "../../core/errors.js";
import type {
  AccountRecord,
  AccountStatus,
  AcmeStore,
  AuthorizationRecord,
  AuthorizationStatus,
  ChallengeRecord,
  ChallengeStatus,
  ChallengeType,
  IssuedRecord,
  OrderRecord,
  OrderStatus,
  ProblemDoc,
} from "../acme-store.js";
import { isUniqueViolation } from "../dialect.js";
import type {
  AcmeAccountsTable,
  AcmeAuthorizationsTable,
  AcmeCertificatesTable,
  AcmeChallengesTable,
  AcmeOrdersTable,
} from "../schema.js";
import type { SqlContext } from "./context.js";

/** The ACME seam on SQL (migration 0002's tables). */
export function createSqlAcmeStore({ db, clock }: SqlContext): AcmeStore {
  const nowMs = () => clock.now().getTime();
  return {
    async createAccount(a, signal) {
      throwIfAborted(signal);
      const now = nowMs();
      try {
        await db
          .insertInto("acme_accounts")
          .values({
            id: a.id,
            profile: a.profile,
            status: a.status,
            jwk: JSON.stringify(a.jwk),
            thumbprint: a.thumbprint,
            contact: JSON.stringify(a.contact),
            eab_kid: a.eabKid,
            grants: JSON.stringify(a.grants),
            owner_id: a.ownerId,
            created_at: now,
            updated_at: now,
          })
          .execute();
        return { ok: true };
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        const sameKey = await this.findAccountByThumbprint(a.profile, a.thumbprint);
        return { ok: false, conflict: sameKey ? "key" : "eab" };
      }
    },

    async getAccount(profile, id, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_accounts")
        .selectAll()
        .where("id", "=", id)
        .where("profile", "=", profile)
        .executeTakeFirst();
      return row && toAccount(row);
    },

    async listAccounts(page, signal) {
      throwIfAborted(signal);
      let query = db
        .selectFrom("acme_accounts")
        .selectAll()
        .select((eb) =>
          eb
            .selectFrom("acme_orders")
            .select((o) => o.fn.max("acme_orders.created_at").as("m"))
            .whereRef("acme_orders.account_id", "=", "acme_accounts.id")
            .as("last_order_at"),
        )
        .orderBy("id")
        .limit(page.limit);
      if (page.after !== undefined) query = query.where("id", ">", page.after);
      if (page.eabKid !== undefined) query = query.where("eab_kid", "=", page.eabKid);
      const rows = await query.execute();
      return rows.map((row) => ({
        ...toAccount(row),
        lastOrderAt: row.last_order_at === null ? null : new Date(Number(row.last_order_at)),
      }));
    },

    async findAccountByThumbprint(profile, thumbprint, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_accounts")
        .selectAll()
        .where("profile", "=", profile)
        .where("thumbprint", "=", thumbprint)
        .executeTakeFirst();
      return row && toAccount(row);
    },

    async updateAccount(id, patch, signal) {
      throwIfAborted(signal);
      const row = await db
        .updateTable("acme_accounts")
        .set({
          ...(patch.contact ? { contact: JSON.stringify(patch.contact) } : {}),
          ...(patch.status ? { status: patch.status } : {}),
          updated_at: nowMs(),
        })
        .where("id", "=", id)
        .where("status", "=", "valid")
        .returningAll()
        .executeTakeFirst();
      return row && toAccount(row);
    },

    async changeAccountKey(id, oldThumbprint, jwk, thumbprint, signal) {
      throwIfAborted(signal);
      try {
        const result = await db
          .updateTable("acme_accounts")
          .set({ jwk: JSON.stringify(jwk), thumbprint, updated_at: nowMs() })
          .where("id", "=", id)
          .where("status", "=", "valid")
          .where("thumbprint", "=", oldThumbprint)
          .executeTakeFirst();
        return result.numUpdatedRows > 0n ? "changed" : "stale";
      } catch (e) {
        if (isUniqueViolation(e)) return "conflict";
        throw e;
      }
    },

    async createOrder(order, authorizations, signal) {
      throwIfAborted(signal);
      const now = nowMs();
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto("acme_orders")
          .values({
            id: order.id,
            account_id: order.accountId,
            profile: order.profile,
            status: order.status,
            identifiers: JSON.stringify(order.identifiers),
            authorizations: JSON.stringify(order.authorizationIds),
            expires_at: order.expiresAt.getTime(),
            error: null,
            certificate_id: null,
            replaces: order.replaces,
            processing_at: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
        for (const authz of authorizations) {
          await trx
            .insertInto("acme_authorizations")
            .values({
              id: authz.id,
              account_id: authz.accountId,
              profile: authz.profile,
              identifier: authz.identifier,
              wildcard: authz.wildcard ? 1 : 0,
              status: authz.status,
              expires_at: authz.expiresAt.getTime(),
              created_at: now,
              updated_at: now,
            })
            .execute();
          if (authz.challenges.length > 0) {
            await trx
              .insertInto("acme_challenges")
              .values(
                authz.challenges.map((c) => ({
                  id: c.id,
                  authorization_id: authz.id,
                  type: c.type,
                  token: c.token,
                  status: c.status,
                  validated_at: c.validatedAt?.getTime() ?? null,
                  error: null,
                  processing_at: null,
                  updated_at: now,
                })),
              )
              .execute();
          }
        }
      });
    },

    async getOrder(profile, id, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_orders")
        .selectAll()
        .where("id", "=", id)
        .where("profile", "=", profile)
        .executeTakeFirst();
      return row && toOrder(row);
    },

    async listOrderIds(accountId, limit, after, signal) {
      throwIfAborted(signal);
      const rows = await db
        .selectFrom("acme_orders")
        .select("id")
        .where("account_id", "=", accountId)
        .where("status", "!=", "invalid")
        .$if(after !== undefined, (q) => q.where("id", ">", after ?? ""))
        .orderBy("id")
        .limit(Math.max(0, Math.floor(limit)))
        .execute();
      return rows.map((r) => r.id);
    },

    async countOrdersSince(accountId, since, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_orders")
        .select((eb) => [eb.fn.countAll<number | string>().as("count"), eb.fn.min("created_at").as("oldest")])
        .where("account_id", "=", accountId)
        .where("created_at", ">=", since.getTime())
        .executeTakeFirst();
      const oldest = row?.oldest;
      return {
        count: Number(row?.count ?? 0),
        oldest: oldest === null || oldest === undefined ? null : new Date(Number(oldest)),
      };
    },

    async transitionOrder(id, from, to, fields = {}, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("acme_orders")
        .set({
          status: to,
          updated_at: nowMs(),
          ...(fields.error !== undefined
            ? { error: fields.error === null ? null : JSON.stringify(fields.error) }
            : {}),
          ...(fields.certificateId !== undefined ? { certificate_id: fields.certificateId } : {}),
          ...(fields.processingAt !== undefined
            ? { processing_at: fields.processingAt?.getTime() ?? null }
            : {}),
        })
        .where("id", "=", id)
        .where("status", "in", [...from])
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async countPendingAuthorizations(accountId, now, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_authorizations")
        .select((eb) => eb.fn.countAll<number | string>().as("count"))
        .where("account_id", "=", accountId)
        .where("status", "=", "pending")
        .where("expires_at", ">", now.getTime())
        .executeTakeFirst();
      return Number(row?.count ?? 0);
    },

    async getAuthorization(profile, id, signal) {
      const [authz] = await this.getAuthorizations(profile, [id], signal);
      return authz;
    },

    async getAuthorizations(profile, ids, signal) {
      throwIfAborted(signal);
      if (ids.length === 0) return [];
      const rows = await db
        .selectFrom("acme_authorizations")
        .selectAll()
        .where("id", "in", [...ids])
        .where("profile", "=", profile)
        .execute();
      const challenges = await db
        .selectFrom("acme_challenges")
        .selectAll()
        .where("authorization_id", "in", [...ids])
        .orderBy("type")
        .execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.flatMap((id) => {
        const row = byId.get(id);
        if (!row) return [];
        return [
          toAuthorization(
            row,
            challenges.filter((c) => c.authorization_id === id),
          ),
        ];
      });
    },

    async transitionAuthorization(id, from, to, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("acme_authorizations")
        .set({ status: to, updated_at: nowMs() })
        .where("id", "=", id)
        .where("status", "in", [...from])
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async getChallenge(profile, id, signal) {
      throwIfAborted(signal);
      const row = await db.selectFrom("acme_challenges").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) return undefined;
      const authorization = await this.getAuthorization(profile, row.authorization_id, signal);
      if (!authorization) return undefined;
      const challenge = authorization.challenges.find((c) => c.id === id);
      return challenge && { challenge, authorization };
    },

    async startChallenge(id, at, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("acme_challenges")
        .set({ status: "processing", processing_at: at.getTime(), updated_at: at.getTime() })
        .where("id", "=", id)
        .where("status", "=", "pending")
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async finishChallenge(challengeId, authorizationId, outcome) {
      const at = outcome.at.getTime();
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable("acme_challenges")
          .set({
            status: outcome.status,
            updated_at: at,
            ...(outcome.status === "valid" ? { validated_at: at } : { error: JSON.stringify(outcome.error) }),
          })
          .where("id", "=", challengeId)
          .where("status", "=", "processing")
          .execute();
        await trx
          .updateTable("acme_authorizations")
          .set({ status: outcome.status, updated_at: at })
          .where("id", "=", authorizationId)
          .where("status", "=", "pending")
          .execute();
      });
    },

    async putCertificate(r, signal) {
      throwIfAborted(signal);
      await db
        .insertInto("acme_certificates")
        .values({
          id: r.id,
          account_id: r.accountId,
          profile: r.profile,
          order_id: r.orderId,
          names: JSON.stringify(r.names),
          serial: r.serial,
          ari_cert_id: r.ariCertId,
          cert_pem: r.certPem,
          chains: JSON.stringify(r.chains),
          not_before: r.notBefore.getTime(),
          not_after: r.notAfter.getTime(),
          revoked_at: r.revokedAt?.getTime() ?? null,
          revocation_reason: r.revocationReason,
          replaced_by: r.replacedBy,
          created_at: r.createdAt.getTime(),
        })
        .execute();
    },

    async getCertificate(profile, id, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_certificates")
        .selectAll()
        .where("id", "=", id)
        .where("profile", "=", profile)
        .executeTakeFirst();
      return row && toIssued(row);
    },

    async findCertificateByAriId(profile, ariCertId, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("acme_certificates")
        .selectAll()
        .where("ari_cert_id", "=", ariCertId)
        .where("profile", "=", profile)
        .executeTakeFirst();
      return row && toIssued(row);
    },

    async revokeCertificate(id, reason, at, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("acme_certificates")
        .set({ revoked_at: at.getTime(), revocation_reason: reason })
        .where("id", "=", id)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async markReplaced(id, orderId, signal) {
      throwIfAborted(signal);
      const result = await db
        .updateTable("acme_certificates")
        .set({ replaced_by: orderId })
        .where("id", "=", id)
        .where((eb) => eb.or([eb("replaced_by", "is", null), eb("replaced_by", "=", orderId)]))
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async useNonce(nonce, expiresAt, signal) {
      throwIfAborted(signal);
      try {
        await db.insertInto("acme_used_nonces").values({ nonce, expires_at: expiresAt.getTime() }).execute();
        return true;
      } catch (e) {
        if (isUniqueViolation(e)) return false;
        throw e;
      }
    },

    async purgeNonces(now) {
      await db.deleteFrom("acme_used_nonces").where("expires_at", "<", now.getTime()).execute();
    },
  };
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function toAccount(row: Selectable<AcmeAccountsTable>): AccountRecord {
  return {
    id: row.id,
    profile: row.profile,
    status: row.status as AccountStatus,
    jwk: JSON.parse(row.jwk) as JWK,
    thumbprint: row.thumbprint,
    contact: JSON.parse(row.contact) as string[],
    eabKid: row.eab_kid,
    grants: JSON.parse(row.grants) as string[],
    ownerId: row.owner_id,
    createdAt: new Date(Number(row.created_at)),
  };
}

function toOrder(row: Selectable<AcmeOrdersTable>): OrderRecord {
  return {
    id: row.id,
    accountId: row.account_id,
    profile: row.profile,
    status: row.status as OrderStatus,
    identifiers: JSON.parse(row.identifiers) as string[],
    authorizationIds: JSON.parse(row.authorizations) as string[],
    expiresAt: new Date(Number(row.expires_at)),
    error: parseJson<ProblemDoc>(row.error),
    certificateId: row.certificate_id,
    replaces: row.replaces,
    processingAt: row.processing_at === null ? null : new Date(Number(row.processing_at)),
    createdAt: new Date(Number(row.created_at)),
  };
}

function toChallenge(row: Selectable<AcmeChallengesTable>): ChallengeRecord {
  return {
    id: row.id,
    authorizationId: row.authorization_id,
    type: row.type as ChallengeType,
    token: row.token,
    status: row.status as ChallengeStatus,
    validatedAt: row.validated_at === null ? null : new Date(Number(row.validated_at)),
    error: parseJson<ProblemDoc>(row.error),
    processingAt: row.processing_at === null ? null : new Date(Number(row.processing_at)),
  };
}

function toAuthorization(
  row: Selectable<AcmeAuthorizationsTable>,
  challenges: Selectable<AcmeChallengesTable>[],
): AuthorizationRecord {
  return {
    id: row.id,
    accountId: row.account_id,
    profile: row.profile,
    identifier: row.identifier,
    wildcard: row.wildcard === 1,
    status: row.status as AuthorizationStatus,
    expiresAt: new Date(Number(row.expires_at)),
    challenges: challenges.map(toChallenge),
  };
}

function toIssued(row: Selectable<AcmeCertificatesTable>): IssuedRecord {
  return {
    id: row.id,
    accountId: row.account_id,
    profile: row.profile,
    orderId: row.order_id,
    names: JSON.parse(row.names) as string[],
    serial: row.serial,
    ariCertId: row.ari_cert_id,
    certPem: row.cert_pem,
    chains: JSON.parse(row.chains) as string[],
    notBefore: new Date(Number(row.not_before)),
    notAfter: new Date(Number(row.not_after)),
    revokedAt: row.revoked_at === null ? null : new Date(Number(row.revoked_at)),
    revocationReason: row.revocation_reason,
    replacedBy: row.replaced_by,
    createdAt: new Date(Number(row.created_at)),
  };
}
