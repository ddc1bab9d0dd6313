import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../../src/core/clock.js";
import { CertfleetError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { createInventory } from "../../src/issuance/inventory.js";
import { createIssuerRouter } from "../../src/issuance/issuer-routing.js";
import type { Issuer } from "../../src/issuance/issuer.js";
import { createCertificateManager } from "../../src/issuance/manager.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { Storage } from "../../src/storage/storage.js";

/**
 * The inventory over real SQLite storage and the real embedded CA: issued, revoked, expired and
 * never-issued (failed first attempt) certificates, with their owners, filters and cursor paging.
 */
const policy = {
  renewWhenRemaining: 1 / 3,
  renewJitter: 0,
  keyType: "ec256" as const,
  reuseKey: false,
  issueTimeoutMs: 30_000,
};

describe("certificate inventory", () => {
  let dir: string;
  let storage: Storage;
  let ca: EmbeddedCa;
  const clock = createManualClock(new Date());

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-inventory-"));
    storage = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: randomBytes(32) });
    await storage.migrate();
    clock.set(new Date());
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock,
      logger: silentLogger(),
      options: { leafValidityDays: 30 },
    });
  });
  afterEach(async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The embedded CA, except that it refuses names under refused.example (as a CA's policy would). */
  function issuer(): Issuer & { revoke: EmbeddedCa["revoke"] } {
    return {
      id: "embedded",
      async issue(request, signal) {
        if (request.names.some((n) => n.endsWith(".refused.example")))
          throw new CertfleetError("rejected_identifier", "the CA refuses this name", { status: 400 });
        return ca.issue(request, signal);
      },
      revoke: (certPem, reason, signal) => ca.revoke(certPem, reason, signal),
    };
  }

  function setup() {
    const iss = issuer();
    const manager = createCertificateManager({
      certificates: storage.certificates,
      locks: storage.locks,
      kv: storage.kv,
      journal: storage.journal,
      router: createIssuerRouter([iss], [], iss.id),
      clock,
      logger: silentLogger(),
      policy,
    });
    const inventory = createInventory({ certificates: storage.certificates, kv: storage.kv, clock });
    return { manager, inventory };
  }

  it("lists a refused first issuance as failed, with its names, owner, error and failure count", async () => {
    const { manager, inventory } = setup();
    await expect(
      manager.obtain({ names: ["a.refused.example"], owner: "identity:web", actor: "identity:web" }),
    ).rejects.toMatchObject({ code: "rejected_identifier" });

    const { certificates, next } = await inventory.list({});
    expect(next).toBeNull();
    expect(certificates).toHaveLength(1);
    expect(certificates[0]).toMatchObject({
      names: ["a.refused.example"],
      status: "failed",
      issuer: "embedded",
      owner: "identity:web",
      notAfter: null,
      consecutiveFailures: 1,
      lastError: { code: "rejected_identifier", message: "the CA refuses this name" },
    });
    expect((await inventory.get(certificates[0]!.id)).status).toBe("failed");

    // after the back-off, the next attempt fails again: counted, still one entry
    clock.advance(2 * 60 * 60_000);
    await expect(manager.obtain({ names: ["a.refused.example"], owner: "identity:web" })).rejects.toThrow();
    const again = await inventory.list({ status: "failed" });
    expect(again.certificates.map((c) => c.consecutiveFailures)).toEqual([2]);
  });

  it("shows owners and statuses, filters, and pages with a cursor", async () => {
    const { manager, inventory } = setup();
    const a = await manager.obtain({ names: ["a.inv.example"], owner: "identity:one" });
    const b = await manager.obtain({ names: ["b.inv.example"], owner: "acme:default:acct1" });
    await manager.obtain({ names: ["c.inv.example"], owner: "identity:one" });
    await manager.obtain({ names: ["x.refused.example"], owner: "identity:two" }).catch(() => undefined);
    await manager.revoke({ id: b.record.id }, { reason: "keyCompromise", actor: "admin", replace: false });

    const all = await inventory.list({});
    expect(all.certificates).toHaveLength(4);
    const byName = new Map(all.certificates.map((c) => [c.names[0], c]));
    expect(byName.get("a.inv.example")).toMatchObject({
      status: "valid",
      owner: "identity:one",
      notAfter: a.record.notAfter.toISOString(),
      consecutiveFailures: 0,
      lastError: null,
    });
    expect(byName.get("b.inv.example")).toMatchObject({
      status: "revoked",
      owner: "acme:default:acct1",
      revocation: { serial: b.record.serial, reason: "keyCompromise" },
    });

    expect(
      (await inventory.list({ owner: "identity:one" })).certificates.map((c) => c.names[0]).sort(),
    ).toEqual(["a.inv.example", "c.inv.example"]);
    expect((await inventory.list({ search: "B.INV" })).certificates.map((c) => c.names[0])).toEqual([
      "b.inv.example",
    ]);
    expect((await inventory.list({ status: "revoked" })).certificates).toHaveLength(1);
    expect((await inventory.list({ issuer: "other" })).certificates).toHaveLength(0);
    expect((await inventory.list({ expiringWithinSeconds: 3600 })).certificates).toHaveLength(0);
    expect((await inventory.list({ expiringWithinSeconds: 31 * 86400 })).certificates).toHaveLength(3);

    // pages of 3 then 1, no entry twice, the same order as one page
    const first = await inventory.list({ limit: 3 });
    expect(first.certificates).toHaveLength(3);
    expect(first.next).not.toBeNull();
    const second = await inventory.list({ limit: 3, after: first.next! });
    expect(second.next).toBeNull();
    expect([...first.certificates, ...second.certificates].map((c) => c.id)).toEqual(
      all.certificates.map((c) => c.id),
    );

    // a certificate past its notAfter is expired
    clock.advance(31 * 86400_000);
    expect((await inventory.get(a.record.id)).status).toBe("expired");
  });
});
