import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { sql, type Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrations } from "../../src/storage/migrations/index.js";
import { createSecretBox } from "../../src/storage/secret-box.js";
import type { NewJournalEntry } from "../../src/storage/issuance-journal.js";
import type { Database } from "../../src/storage/schema.js";
import type { NewCertificate, NewIdentity, Storage } from "../../src/storage/storage.js";

export interface StorageFixture {
  /** A Storage on a fresh database that has not been migrated yet. */
  storage: Storage;
  cleanup(): Promise<void>;
  /** For databases that outlive one connection (every kind except in-memory). */
  sameDatabase?: {
    /** Another Storage on the same database; the suite closes it. Defaults to the same key. */
    open(encryptionKey?: Buffer, previousEncryptionKeys?: Buffer[]): Storage;
    /** The key `storage` was opened with. */
    encryptionKey: Buffer;
    /** Plain kysely on the same database: sees rows as stored, encrypted. */
    raw: Kysely<Database>;
  };
}

/**
 * The behaviour every Storage must show, run against each backend. `inMemory` leaves out the tests
 * that need a second connection to the same database (migration races, raw rows, another key).
 */
export function runStorageConformance(
  name: string,
  factory: () => Promise<StorageFixture>,
  options: { inMemory?: boolean } = {},
): void {
  describe(`Storage conformance: ${name}`, () => {
    let fixture: StorageFixture;
    let storage: Storage;
    const opened: Storage[] = [];
    const shared = () => {
      if (!fixture.sameDatabase) throw new Error("this fixture must provide sameDatabase");
      return fixture.sameDatabase;
    };
    const openAgain = (key?: Buffer, previous?: Buffer[]) => {
      const other = shared().open(key, previous);
      opened.push(other);
      return other;
    };

    beforeEach(async () => {
      fixture = await factory();
      storage = fixture.storage;
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await fixture.cleanup();
    });

    describe("migrate", () => {
      it("is idempotent, and ping answers afterwards", async () => {
        await storage.migrate();
        await storage.migrate();
        await storage.ping();
        expect(await storage.certificates.getCertificate("nothing")).toBeUndefined();
      });

      it("tolerates concurrent calls on one instance", async () => {
        await Promise.all([storage.migrate(), storage.migrate(), storage.migrate()]);
        await storage.kv.putValue("ns", "k", "v");
        expect(await storage.kv.getValue("ns", "k")).toBe("v");
      });

      if (!options.inMemory) {
        it("lets two instances race on a fresh database; each migration runs once", async () => {
          const second = openAgain();
          await Promise.all([storage.migrate(), second.migrate()]);
          const { rows } = await sql<{
            name: string;
          }>`select name from kysely_migration order by name`.execute(shared().raw);
          expect(rows.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
          await second.kv.putValue("ns", "k", "from second");
          expect(await storage.kv.getValue("ns", "k")).toBe("from second");
        });
      }
    });

    describe("after migrate", () => {
      beforeEach(async () => {
        await storage.migrate();
      });

      describe("certificates", () => {
        it("misses return undefined / empty", async () => {
          expect(await storage.certificates.getCertificate("missing")).toBeUndefined();
          expect(await storage.certificates.listCertificateHistory("missing")).toEqual([]);
          expect(await storage.certificates.listCertificates()).toEqual([]);
        });

        it("round-trips every field; the first version is 1", async () => {
          const input = newCertificate();
          const stored = await storage.certificates.putCertificate(input);
          expect(stored).toMatchObject({ ...input, version: 1, lastFailure: null });
          expect(stored.createdAt).toEqual(stored.updatedAt);
          expect(await storage.certificates.getCertificate(input.id)).toEqual(stored);
        });

        it("stores a CSR-custody certificate without a private key", async () => {
          const input = newCertificate({
            custody: "csr",
            privateKeyPem: null,
            ariCertId: null,
            chainPem: "",
          });
          await storage.certificates.putCertificate(input);
          expect(await storage.certificates.getCertificate(input.id)).toMatchObject(input);
        });

        it("keeps replaced versions in history, newest first, with their own keys", async () => {
          const v1 = await storage.certificates.putCertificate(newCertificate({ id: "c1" }));
          const v2 = await storage.certificates.putCertificate(newCertificate({ id: "c1", serial: "02" }));
          const v3 = await storage.certificates.putCertificate(newCertificate({ id: "c1", serial: "03" }));
          expect(v2.version).toBe(2);
          expect(v3.version).toBe(3);
          expect(v3.createdAt).toEqual(v1.createdAt);
          expect(await storage.certificates.getCertificate("c1")).toEqual(v3);
          expect(await storage.certificates.listCertificateHistory("c1")).toEqual([v2, v1]);
          expect(v1.privateKeyPem).not.toBe(v2.privateKeyPem);
        });

        it("records failures, and putCertificate clears them", async () => {
          const cert = await storage.certificates.putCertificate(newCertificate());
          const failure = {
            code: "acme_rejected",
            message: "CA said no",
            at: new Date(1_700_000_000_123),
            failureCount: 1,
            nextAttemptAt: new Date(1_700_000_600_456),
          };
          await storage.certificates.recordFailure(cert.id, failure);
          expect((await storage.certificates.getCertificate(cert.id))?.lastFailure).toEqual(failure);
          const second = { ...failure, failureCount: 2, nextAttemptAt: null };
          await storage.certificates.recordFailure(cert.id, second);
          expect((await storage.certificates.getCertificate(cert.id))?.lastFailure).toEqual(second);
          expect((await storage.certificates.listCertificates())[0]?.lastFailure).toEqual(second);

          const renewed = await storage.certificates.putCertificate(newCertificate({ id: cert.id }));
          expect(renewed.lastFailure).toBeNull();
          expect((await storage.certificates.getCertificate(cert.id))?.lastFailure).toBeNull();
        });

        it("records a failure for a request that has no certificate yet; the first certificate clears it", async () => {
          const failure = {
            code: "dns_timeout",
            message: "m",
            at: new Date(),
            failureCount: 1,
            nextAttemptAt: null,
          };
          await storage.certificates.recordFailure("pending", failure);
          expect(await storage.certificates.getCertificate("pending")).toBeUndefined();
          expect(await storage.certificates.getFailure("pending")).toMatchObject({
            code: "dns_timeout",
            failureCount: 1,
            nextAttemptAt: null,
          });
          expect(await storage.certificates.getFailure("never-failed")).toBeUndefined();
          const first = await storage.certificates.putCertificate(newCertificate({ id: "pending" }));
          expect(first.lastFailure).toBeNull();
          expect(await storage.certificates.getFailure("pending")).toBeUndefined();
          expect((await storage.certificates.getCertificate("pending"))?.lastFailure).toBeNull();
        });

        it("lists due certificates by renewAt, honouring a later nextAttemptAt, up to the limit", async () => {
          const at = new Date(1_800_000_000_000);
          const minutes = (n: number) => new Date(at.getTime() + n * 60_000);
          await storage.certificates.putCertificate(newCertificate({ id: "late", renewAt: minutes(-10) }));
          await storage.certificates.putCertificate(newCertificate({ id: "early", renewAt: minutes(-30) }));
          await storage.certificates.putCertificate(newCertificate({ id: "exact", renewAt: at }));
          await storage.certificates.putCertificate(newCertificate({ id: "future", renewAt: minutes(5) }));
          await storage.certificates.putCertificate(newCertificate({ id: "backoff", renewAt: minutes(-60) }));
          await storage.certificates.putCertificate(
            newCertificate({ id: "retry-now", renewAt: minutes(-50) }),
          );
          const failure = { code: "x", message: "x", at: minutes(-1), failureCount: 3 };
          await storage.certificates.recordFailure("backoff", { ...failure, nextAttemptAt: minutes(1) });
          await storage.certificates.recordFailure("retry-now", { ...failure, nextAttemptAt: minutes(-1) });

          const due = await storage.certificates.listDueCertificates(at, 10);
          expect(due.map((c) => c.id)).toEqual(["retry-now", "early", "late", "exact"]);
          expect(due[1]?.privateKeyPem).toMatch(/PRIVATE KEY/);
          expect((await storage.certificates.listDueCertificates(at, 2)).map((c) => c.id)).toEqual([
            "retry-now",
            "early",
          ]);
          expect(await storage.certificates.listDueCertificates(at, 0)).toEqual([]);
        });

        it("reschedules renewal only for the version it was asked about", async () => {
          const at = new Date("2030-01-01T00:00:00Z");
          const first = await storage.certificates.putCertificate(newCertificate({ id: "ari", renewAt: at }));
          const earlier = new Date(at.getTime() - 86_400_000);
          expect(await storage.certificates.rescheduleRenewal("ari", first.version, earlier)).toBe(true);
          expect((await storage.certificates.getCertificate("ari"))?.renewAt).toEqual(earlier);
          expect((await storage.certificates.listDueCertificates(earlier, 10)).map((c) => c.id)).toEqual([
            "ari",
          ]);

          const second = await storage.certificates.putCertificate(
            newCertificate({ id: "ari", renewAt: at }),
          );
          expect(await storage.certificates.rescheduleRenewal("ari", first.version, earlier)).toBe(false);
          expect((await storage.certificates.getCertificate("ari"))?.renewAt).toEqual(at);
          expect(second.version).toBe(first.version + 1);
          expect(await storage.certificates.rescheduleRenewal("missing", 1, earlier)).toBe(false);
        });

        it("lists summaries without PEM bodies", async () => {
          const b = await storage.certificates.putCertificate(newCertificate({ id: "b" }));
          await storage.certificates.putCertificate(newCertificate({ id: "a" }));
          const list = await storage.certificates.listCertificates();
          expect(list.map((c) => c.id)).toEqual(["a", "b"]);
          expect(list[1]).toEqual({
            ...b,
            certPem: undefined,
            chainPem: undefined,
            privateKeyPem: undefined,
          });
          expect(Object.keys(list[1] ?? {})).not.toContain("privateKeyPem");
        });

        it("serialises concurrent writers of one certificate: every version kept exactly once", async () => {
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              storage.certificates.putCertificate(newCertificate({ id: "hot", serial: `s${i}` })),
            ),
          );
          expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual([
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
          ]);
          const current = await storage.certificates.getCertificate("hot");
          expect(current?.version).toBe(10);
          const history = await storage.certificates.listCertificateHistory("hot");
          expect(history.map((h) => h.version)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
          const serials = new Set([current?.serial, ...history.map((h) => h.serial)]);
          expect(serials.size).toBe(10);
        });
      });

      describe("key/value", () => {
        it("gets, overwrites and deletes values per namespace", async () => {
          expect(await storage.kv.getValue("ns", "k")).toBeUndefined();
          expect(await storage.kv.putValue("ns", "k", "one")).toBe("one");
          await storage.kv.putValue("other", "k", "elsewhere");
          expect(await storage.kv.putValue("ns", "k", "two")).toBe("two");
          expect(await storage.kv.getValue("ns", "k")).toBe("two");
          expect(await storage.kv.getValue("other", "k")).toBe("elsewhere");
          await storage.kv.deleteValue("ns", "k");
          await storage.kv.deleteValue("ns", "never-there");
          expect(await storage.kv.getValue("ns", "k")).toBeUndefined();
          expect(await storage.kv.getValue("other", "k")).toBe("elsewhere");
        });

        it("ifAbsent keeps and returns the existing value", async () => {
          expect(await storage.kv.putValue("ns", "k", "first", { ifAbsent: true })).toBe("first");
          expect(await storage.kv.putValue("ns", "k", "second", { ifAbsent: true })).toBe("first");
          expect(await storage.kv.getValue("ns", "k")).toBe("first");
        });

        it("concurrent ifAbsent writers all get the one value that won", async () => {
          const returned = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              storage.kv.putValue("ca", "root", `candidate-${i}`, { ifAbsent: true }),
            ),
          );
          const winner = await storage.kv.getValue("ca", "root");
          expect(winner).toMatch(/^candidate-\d+$/);
          expect(new Set(returned)).toEqual(new Set([winner]));
        });

        it("lists one namespace's values in key order, paged, secrets in plaintext", async () => {
          for (const k of ["b", "a", "d", "c"]) {
            await storage.kv.putValue("listed", k, `value-${k}`, { secret: k === "c" });
          }
          await storage.kv.putValue("listed-not", "a", "elsewhere");
          const first = await storage.kv.listValues("listed", { limit: 3 });
          expect(first).toEqual([
            { key: "a", value: "value-a" },
            { key: "b", value: "value-b" },
            { key: "c", value: "value-c" },
          ]);
          expect(await storage.kv.listValues("listed", { after: "c", limit: 3 })).toEqual([
            { key: "d", value: "value-d" },
          ]);
          expect(await storage.kv.listValues("listed", { after: "d", limit: 3 })).toEqual([]);
          expect(await storage.kv.listValues("nothing-here", { limit: 3 })).toEqual([]);
        });

        it("lists ACME accounts in id order with their newest order time, or by EAB key", async () => {
          const account = (id: string, eabKid: string | null) => ({
            id,
            profile: "default",
            status: "valid" as const,
            jwk: { kty: "EC", crv: "P-256", x: id, y: id },
            thumbprint: `tp-${id}`,
            contact: [],
            eabKid,
            grants: ["*"],
            ownerId: null,
          });
          await storage.acme.createAccount(account("acct-b", "kid-b"));
          await storage.acme.createAccount(account("acct-a", null));
          await storage.acme.createAccount(account("acct-c", null));
          await storage.acme.createOrder(
            {
              id: "order-1",
              accountId: "acct-b",
              profile: "default",
              status: "ready",
              identifiers: ["a.example.com"],
              authorizationIds: [],
              expiresAt: new Date(Date.now() + 86_400_000),
              replaces: null,
            },
            [],
          );
          const page = await storage.acme.listAccounts({ limit: 2 });
          expect(page.map((a) => a.id)).toEqual(["acct-a", "acct-b"]);
          expect(page[0]!.lastOrderAt).toBeNull();
          expect(page[1]!.lastOrderAt).toBeInstanceOf(Date);
          expect(page[1]).toMatchObject({ eabKid: "kid-b", grants: ["*"], profile: "default" });
          expect((await storage.acme.listAccounts({ after: "acct-b", limit: 2 })).map((a) => a.id)).toEqual([
            "acct-c",
          ]);
          expect((await storage.acme.listAccounts({ eabKid: "kid-b", limit: 5 })).map((a) => a.id)).toEqual([
            "acct-b",
          ]);
          expect(await storage.acme.listAccounts({ eabKid: "kid-none", limit: 5 })).toEqual([]);
        });

        it("secret values read back as plaintext, also through ifAbsent", async () => {
          expect(await storage.kv.putValue("acme", "account-key", "s3cret", { secret: true })).toBe("s3cret");
          expect(await storage.kv.getValue("acme", "account-key")).toBe("s3cret");
          expect(
            await storage.kv.putValue("acme", "account-key", "other", { secret: true, ifAbsent: true }),
          ).toBe("s3cret");
          await storage.kv.putValue("acme", "account-key", "now-plain");
          expect(await storage.kv.getValue("acme", "account-key")).toBe("now-plain");
          await storage.kv.putValue("acme", "account-key", "secret-again", { secret: true });
          expect(await storage.kv.getValue("acme", "account-key")).toBe("secret-again");
        });
      });

      describe("challenge tokens", () => {
        it("stores, replaces, expires and deletes tokens", async () => {
          const later = new Date(Date.now() + 60_000);
          await storage.challenges.putChallengeToken("t1", "t1.thumb", later);
          expect(await storage.challenges.getChallengeToken("t1")).toBe("t1.thumb");
          await storage.challenges.putChallengeToken("t1", "t1.other", later);
          expect(await storage.challenges.getChallengeToken("t1")).toBe("t1.other");
          await storage.challenges.putChallengeToken("old", "old.thumb", new Date(Date.now() - 1));
          expect(await storage.challenges.getChallengeToken("old")).toBeUndefined();
          await storage.challenges.deleteChallengeToken("t1");
          await storage.challenges.deleteChallengeToken("never-there");
          expect(await storage.challenges.getChallengeToken("t1")).toBeUndefined();
        });
      });

      describe("locks", () => {
        it("is held by one owner at a time; the holder may take it again", async () => {
          expect(await storage.locks.tryLock("renew:a", "alice", 60_000)).toBe(true);
          expect(await storage.locks.tryLock("renew:a", "bob", 60_000)).toBe(false);
          expect(await storage.locks.tryLock("renew:a", "alice", 60_000)).toBe(true);
          expect(await storage.locks.tryLock("renew:b", "bob", 60_000)).toBe(true);
        });

        it("unlock frees it; unlocking someone else's lock does nothing", async () => {
          await storage.locks.tryLock("l", "alice", 60_000);
          await storage.locks.unlock("l", "bob");
          expect(await storage.locks.tryLock("l", "bob", 60_000)).toBe(false);
          await storage.locks.unlock("l", "alice");
          await storage.locks.unlock("l", "alice");
          expect(await storage.locks.tryLock("l", "bob", 60_000)).toBe(true);
        });

        it("an expired lock is taken over, and the old owner can no longer refresh it", async () => {
          expect(await storage.locks.tryLock("l", "alice", 20)).toBe(true);
          await sleep(40);
          expect(await storage.locks.tryLock("l", "bob", 60_000)).toBe(true);
          expect(await storage.locks.refreshLock("l", "alice", 60_000)).toBe(false);
          await storage.locks.unlock("l", "alice");
          expect(await storage.locks.tryLock("l", "carol", 60_000)).toBe(false);
        });

        it("refreshLock extends a held lock", async () => {
          expect(await storage.locks.tryLock("l", "alice", 30)).toBe(true);
          expect(await storage.locks.refreshLock("l", "alice", 60_000)).toBe(true);
          await sleep(50);
          expect(await storage.locks.tryLock("l", "bob", 60_000)).toBe(false);
          expect(await storage.locks.refreshLock("nothing", "alice", 60_000)).toBe(false);
        });

        const winners = async (contenders: number) => {
          const wins = await Promise.all(
            Array.from({ length: contenders }, (_, i) => storage.locks.tryLock("race", `o${i}`, 60_000)),
          );
          return wins.filter(Boolean).length;
        };

        it("20 concurrent contenders for a free lock: exactly one wins", async () => {
          expect(await winners(20)).toBe(1);
        });

        it("20 concurrent contenders for an expired lock: exactly one takes it over", async () => {
          await storage.locks.tryLock("race", "gone", 1);
          await sleep(10);
          expect(await winners(20)).toBe(1);
        });
      });

      describe("identities", () => {
        it("creates, reads, finds by binding and lists", async () => {
          const input = newIdentity({ name: "web-1", bindingKey: "jwt:iss|sub-1" });
          const created = await storage.identities.createIdentity(input);
          expect(created).toMatchObject(input);
          expect(created.createdAt).toBeInstanceOf(Date);
          expect(await storage.identities.getIdentity(input.id)).toEqual(created);
          expect(await storage.identities.findIdentityByBinding("jwt:iss|sub-1")).toEqual(created);
          expect(await storage.identities.findIdentityByBinding("jwt:iss|nobody")).toBeUndefined();
          expect(await storage.identities.getIdentity(randomUUID())).toBeUndefined();
          const other = await storage.identities.createIdentity(
            newIdentity({ name: "api-0", bindingKey: null }),
          );
          expect(await storage.identities.listIdentities()).toEqual([other, created]);
        });

        it("rejects a duplicate id or binding key with identity_conflict (409)", async () => {
          const first = await storage.identities.createIdentity(newIdentity({ bindingKey: "k1" }));
          await expect(
            storage.identities.createIdentity(newIdentity({ id: first.id, bindingKey: "k2" })),
          ).rejects.toMatchObject({
            code: "identity_conflict",
            status: 409,
          });
          await expect(
            storage.identities.createIdentity(newIdentity({ bindingKey: "k1" })),
          ).rejects.toMatchObject({
            code: "identity_conflict",
          });
          expect(await storage.identities.listIdentities()).toHaveLength(1);
        });

        it("allows many identities without a binding key", async () => {
          await storage.identities.createIdentity(newIdentity({ bindingKey: null }));
          await storage.identities.createIdentity(newIdentity({ bindingKey: null }));
          expect(await storage.identities.listIdentities()).toHaveLength(2);
        });

        it("updates only the patched fields", async () => {
          const created = await storage.identities.createIdentity(
            newIdentity({ bindingKey: "k1", secretHash: "hash" }),
          );
          await sleep(2);
          const updated = await storage.identities.updateIdentity(created.id, {
            grants: ["*.b.example"],
            enabled: false,
          });
          expect(updated).toEqual({
            ...created,
            grants: ["*.b.example"],
            enabled: false,
            updatedAt: updated?.updatedAt,
          });
          expect(updated?.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
          const cleared = await storage.identities.updateIdentity(created.id, {
            bindingKey: null,
            secretHash: null,
            admin: true,
          });
          expect(cleared).toMatchObject({
            bindingKey: null,
            secretHash: null,
            admin: true,
            name: created.name,
          });
          expect(await storage.identities.getIdentity(created.id)).toEqual(cleared);
          expect(await storage.identities.updateIdentity(randomUUID(), { name: "x" })).toBeUndefined();
        });

        it("an update to a binding key that is taken fails with identity_conflict", async () => {
          await storage.identities.createIdentity(newIdentity({ bindingKey: "taken" }));
          const other = await storage.identities.createIdentity(newIdentity({ bindingKey: "mine" }));
          await expect(
            storage.identities.updateIdentity(other.id, { bindingKey: "taken" }),
          ).rejects.toMatchObject({
            code: "identity_conflict",
          });
          expect((await storage.identities.getIdentity(other.id))?.bindingKey).toBe("mine");
        });

        it("deletes", async () => {
          const created = await storage.identities.createIdentity(newIdentity());
          expect(await storage.identities.deleteIdentity(created.id)).toBe(true);
          expect(await storage.identities.deleteIdentity(created.id)).toBe(false);
          expect(await storage.identities.getIdentity(created.id)).toBeUndefined();
        });
      });

      describe("audit", () => {
        it("appends and lists newest first, with every field", async () => {
          const at = new Date(1_700_000_000_789);
          await storage.audit.appendAudit({ type: "auth.deny", actor: null, outcome: "deny" });
          await storage.audit.appendAudit({
            type: "certificate.issue",
            at,
            actor: "agent-1",
            method: "jwt",
            subject: "a.example",
            outcome: "success",
            reason: "renewal",
            remoteAddress: "127.0.0.1",
            data: { names: ["a.example"], n: 1 },
          });
          const [newest, oldest] = await storage.audit.listAudit({ limit: 10 });
          expect(newest).toEqual({
            id: expect.any(Number),
            type: "certificate.issue",
            at,
            actor: "agent-1",
            method: "jwt",
            subject: "a.example",
            outcome: "success",
            reason: "renewal",
            remoteAddress: "127.0.0.1",
            data: { names: ["a.example"], n: 1 },
          });
          expect(oldest).toMatchObject({
            type: "auth.deny",
            method: null,
            subject: null,
            reason: null,
            data: {},
          });
          expect(Math.abs((oldest?.at.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
          expect(newest?.id).toBeGreaterThan(oldest?.id ?? Infinity);
        });

        it("pages with before, filters by type, honours limit", async () => {
          for (let i = 0; i < 6; i++) {
            await storage.audit.appendAudit({
              type: i % 2 ? "odd" : "even",
              actor: `a${i}`,
              outcome: "success",
            });
          }
          const all = await storage.audit.listAudit({ limit: 100 });
          expect(all.map((r) => r.actor)).toEqual(["a5", "a4", "a3", "a2", "a1", "a0"]);
          const page = await storage.audit.listAudit({ limit: 2, before: all[1]?.id });
          expect(page.map((r) => r.actor)).toEqual(["a3", "a2"]);
          const odd = await storage.audit.listAudit({ limit: 100, type: "odd" });
          expect(odd.map((r) => r.actor)).toEqual(["a5", "a3", "a1"]);
          expect(
            (await storage.audit.listAudit({ limit: 100, type: "odd", before: odd[0]?.id })).map(
              (r) => r.actor,
            ),
          ).toEqual(["a3", "a1"]);
        });
      });

      describe("cancellation", () => {
        it("an aborted signal stops a call before it starts", async () => {
          const signal = AbortSignal.abort();
          await expect(storage.kv.putValue("ns", "k", "v", {}, signal)).rejects.toMatchObject({
            code: "aborted",
          });
          await expect(storage.locks.tryLock("l", "o", 1000, signal)).rejects.toMatchObject({
            code: "aborted",
          });
          await expect(storage.certificates.putCertificate(newCertificate(), signal)).rejects.toMatchObject({
            code: "aborted",
          });
          expect(await storage.kv.getValue("ns", "k")).toBeUndefined();
          expect(await storage.locks.tryLock("l", "someone-else", 1000)).toBe(true);
        });
      });

      describe("issuance journal", () => {
        it("keeps one entry per id: begin replaces, update records the order, delete always runs", async () => {
          const key = newCertificate().privateKeyPem;
          const first = await storage.journal.begin(journalEntry("a", key));
          expect(first).toMatchObject({ id: "a", state: "created", orderUrl: null, privateKeyPem: key });
          await storage.journal.begin(journalEntry("b", null));
          await storage.journal.update("a", { orderUrl: "https://ca.test/order/1", state: "ordered" });
          await storage.journal.update("a", { state: "finalizing" });
          expect(await storage.journal.get("a")).toMatchObject({
            orderUrl: "https://ca.test/order/1",
            state: "finalizing",
            privateKeyPem: key,
            names: ["a.example.com"],
          });
          expect((await storage.journal.list()).map((e) => e.id).sort()).toEqual(["a", "b"]);
          // a new attempt supersedes an abandoned one: the old order URL goes with it
          await storage.journal.begin(journalEntry("a", key));
          expect(await storage.journal.get("a")).toMatchObject({ state: "created", orderUrl: null });
          await storage.journal.delete("a");
          await storage.journal.delete("a");
          expect(await storage.journal.get("a")).toBeUndefined();
          expect((await storage.journal.list()).map((e) => e.id)).toEqual(["b"]);
        });

        if (!options.inMemory) {
          it("keeps a journaled key encrypted at rest", async () => {
            const key = newCertificate().privateKeyPem!;
            await storage.journal.begin(journalEntry("sealed", key));
            const rows = await shared().raw.selectFrom("issuance_journal").selectAll().execute();
            expect(rows[0]?.private_key).toMatch(/^v2:/);
            expect(JSON.stringify(rows)).not.toContain(pemBody(key));
            await expect(openAgain(randomBytes(32)).journal.get("sealed")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
          });
        }
      });

      if (!options.inMemory) {
        describe("encryption at rest", () => {
          it("stores private keys and secret values encrypted, other values as they are", async () => {
            const cert = newCertificate({ id: "enc" });
            await storage.certificates.putCertificate(cert);
            await storage.certificates.putCertificate(newCertificate({ id: "enc" }));
            await storage.kv.putValue("acme", "account", "very-secret-value", { secret: true });
            await storage.kv.putValue("settings", "plain", "visible-value");
            const { raw } = shared();
            const certRows = [
              ...(await raw.selectFrom("certificates").selectAll().execute()),
              ...(await raw.selectFrom("certificate_history").selectAll().execute()),
            ];
            expect(certRows).toHaveLength(2);
            for (const row of certRows) {
              expect(row.private_key).toMatch(/^v2:[A-Za-z0-9_-]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
              expect(JSON.stringify(row)).not.toContain("PRIVATE KEY");
            }
            expect(JSON.stringify(certRows)).not.toContain(pemBody(cert.privateKeyPem ?? ""));
            const kv = await raw.selectFrom("kv").selectAll().orderBy("namespace").execute();
            expect(kv.map((r) => [r.value.startsWith("v2:"), r.secret])).toEqual([
              [true, 1],
              [false, 0],
            ]);
            expect(JSON.stringify(kv)).not.toContain("very-secret-value");
            expect(kv[1]?.value).toBe("visible-value");
          });

          it("re-encrypts every secret under a new key; the old key is then no longer needed", async () => {
            const oldKey = shared().encryptionKey;
            const newKey = randomBytes(32);
            await storage.certificates.putCertificate(newCertificate({ id: "r" }));
            const latest = await storage.certificates.putCertificate(newCertificate({ id: "r" })); // one in history
            await storage.certificates.putCertificate(newCertificate({ id: "csr", privateKeyPem: null }));
            await storage.kv.putValue("acme", "account", "account-secret", { secret: true });
            await storage.kv.putValue("settings", "plain", "p");
            // an order in flight: its key must survive the rotation, or the next start cannot finish it
            const inFlight = newCertificate({ id: "j" });
            await storage.journal.begin(journalEntry("j", inFlight.privateKeyPem));
            await storage.journal.begin(journalEntry("j-csr", null));

            const rotating = openAgain(newKey, [oldKey]);
            expect(await rotating.reencryptSecrets()).toEqual({ rewritten: 4, total: 4 });
            expect(await rotating.reencryptSecrets()).toEqual({ rewritten: 0, total: 4 });

            const { raw } = shared();
            const sealed = [
              ...(await raw.selectFrom("certificates").select("private_key").execute()).map(
                (r) => r.private_key,
              ),
              ...(await raw.selectFrom("certificate_history").select("private_key").execute()).map(
                (r) => r.private_key,
              ),
              ...(await raw.selectFrom("kv").select("value").where("secret", "=", 1).execute()).map(
                (r) => r.value,
              ),
              ...(await raw.selectFrom("issuance_journal").select("private_key").execute()).map(
                (r) => r.private_key,
              ),
            ].filter((v) => v !== null);
            expect(sealed).toHaveLength(4);
            const newId = createSecretBox(newKey).keyId;
            for (const v of sealed) expect(v!.split(":").slice(0, 2)).toEqual(["v2", newId]);

            const newOnly = openAgain(newKey);
            expect((await newOnly.certificates.getCertificate("r"))?.privateKeyPem).toBe(
              latest.privateKeyPem,
            );
            expect((await newOnly.certificates.listCertificateHistory("r"))[0]?.privateKeyPem).toMatch(
              /PRIVATE KEY/,
            );
            expect(await newOnly.kv.getValue("acme", "account")).toBe("account-secret");
            expect(await newOnly.kv.getValue("settings", "plain")).toBe("p");
            expect((await newOnly.journal.get("j"))?.privateKeyPem).toBe(inFlight.privateKeyPem);
            expect((await newOnly.journal.get("j-csr"))?.privateKeyPem).toBeNull();
            await expect(openAgain(oldKey).certificates.getCertificate("r")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
          });

          it("another key fails with storage_decrypt_failed; plain data stays readable", async () => {
            await storage.certificates.putCertificate(newCertificate({ id: "c" }));
            await storage.kv.putValue("acme", "account", "s", { secret: true });
            await storage.kv.putValue("settings", "plain", "p");
            const wrong = openAgain(randomBytes(32));
            await expect(wrong.certificates.getCertificate("c")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
            await expect(wrong.kv.getValue("acme", "account")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
            expect(await wrong.kv.getValue("settings", "plain")).toBe("p");
            const right = openAgain();
            expect((await right.certificates.getCertificate("c"))?.privateKeyPem).toMatch(/PRIVATE KEY/);
          });

          it("a ciphertext moved to another row does not decrypt", async () => {
            await storage.certificates.putCertificate(newCertificate({ id: "a" }));
            await storage.certificates.putCertificate(newCertificate({ id: "b" }));
            await storage.kv.putValue("ns", "a", "secret-a", { secret: true });
            await storage.kv.putValue("ns", "b", "secret-b", { secret: true });
            const { raw } = shared();
            const a = await raw
              .selectFrom("certificates")
              .select("private_key")
              .where("id", "=", "a")
              .executeTakeFirstOrThrow();
            await raw
              .updateTable("certificates")
              .set({ private_key: a.private_key })
              .where("id", "=", "b")
              .execute();
            const va = await raw
              .selectFrom("kv")
              .select("value")
              .where("key", "=", "a")
              .executeTakeFirstOrThrow();
            await raw.updateTable("kv").set({ value: va.value }).where("key", "=", "b").execute();

            await expect(storage.certificates.getCertificate("b")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
            await expect(storage.kv.getValue("ns", "b")).rejects.toMatchObject({
              code: "storage_decrypt_failed",
            });
            expect((await storage.certificates.getCertificate("a"))?.privateKeyPem).toMatch(/PRIVATE KEY/);
            expect(await storage.kv.getValue("ns", "a")).toBe("secret-a");
          });
        });
      }
    });
  });
}

function journalEntry(id: string, privateKeyPem: string | null): NewJournalEntry {
  return {
    id,
    names: [`${id}.example.com`],
    issuerId: "pebble",
    keyType: "ec256",
    custody: privateKeyPem === null ? "csr" : "server",
    csrPem: "-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n",
    privateKeyPem,
    replacingVersion: null,
    actor: null,
  };
}

function newCertificate(overrides: Partial<NewCertificate> = {}): NewCertificate {
  const notBefore = new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 123));
  return {
    id: `cert-${randomUUID()}`,
    names: ["a.example", "*.a.example"],
    issuerId: "acme:pebble",
    keyType: "ec256",
    custody: "server",
    certPem: "-----BEGIN CERTIFICATE-----\nMIIBleaf\n-----END CERTIFICATE-----\n",
    chainPem: "-----BEGIN CERTIFICATE-----\nMIIBchain\n-----END CERTIFICATE-----\n",
    privateKeyPem: freshPrivateKeyPem(),
    notBefore,
    notAfter: new Date(notBefore.getTime() + 90 * 86_400_000),
    serial: "0a1b2c",
    ariCertId: "aaa.bbb",
    renewAt: new Date(notBefore.getTime() + 60 * 86_400_000),
    ...overrides,
  };
}

function newIdentity(overrides: Partial<NewIdentity> = {}): NewIdentity {
  return {
    id: randomUUID(),
    name: "agent",
    method: "jwt",
    binding: { iss: "https://issuer.example", sub: randomUUID() },
    bindingKey: `jwt:${randomUUID()}`,
    grants: ["a.example", "*.a.example"],
    enabled: true,
    admin: false,
    secretHash: null,
    ...overrides,
  };
}

/** A real PKCS#8 PEM made at test time, so no key is ever committed. */
function freshPrivateKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

function pemBody(pem: string): string {
  return pem.split("\n").slice(1, 2).join("");
}
