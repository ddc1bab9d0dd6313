import { createPublicKey, randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { isCertfleetError, type CertfleetError } from "../../src/core/errors.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { createIssuerRouter } from "../../src/issuance/issuer-routing.js";
import type { Issuer } from "../../src/issuance/issuer.js";
import {
  createCertificateManager,
  type CertificateEvent,
  type ManagerDeps,
} from "../../src/issuance/manager.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { Storage } from "../../src/storage/storage.js";

const policy = {
  renewWhenRemaining: 1 / 3,
  renewJitter: 0,
  keyType: "ec256" as const,
  reuseKey: true, // revocation must still never reuse the key
  issueTimeoutMs: 30_000,
};

function spki(pem: string): string {
  return createPublicKey(pem).export({ type: "spki", format: "pem" }) as string;
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCertfleetError(e)).toBe(true);
  return e as CertfleetError;
}

async function crlSerials(ca: EmbeddedCa): Promise<string[]> {
  return new x509.X509Crl(await ca.crl()).entries.map((e) => BigInt("0x" + e.serialNumber).toString(16));
}
const asNumber = (serial: string) => BigInt("0x" + serial).toString(16);

describe("manager.revoke (real SQLite, real embedded CA)", () => {
  let dir: string;
  let storage: Storage;
  let ca: EmbeddedCa;
  let events: CertificateEvent[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-revoke-"));
    storage = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: randomBytes(32) });
    await storage.migrate();
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock: systemClock,
      logger: silentLogger(),
      options: {},
    });
    events = [];
  });
  afterEach(async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  function manager(issuer: Issuer = ca, over: Partial<ManagerDeps> = {}) {
    return createCertificateManager({
      certificates: storage.certificates,
      locks: storage.locks,
      kv: storage.kv,
      journal: storage.journal,
      router: createIssuerRouter([issuer], [], issuer.id),
      clock: systemClock,
      logger: silentLogger(),
      policy,
      cacheTtlMs: 60_000, // a long memory cache: revocation must still not serve the old certificate
      onEvent: (e) => events.push(e),
      ...over,
    });
  }

  it("revokes at the CA, replaces with a fresh key, and the next obtain returns the replacement", async () => {
    const m = manager();
    const before = (await m.obtain({ names: ["r.example.test"] })).record;
    expect((await m.obtain({ names: ["r.example.test"] })).cached).toBe(true); // now in the memory cache

    const result = await m.revoke(
      { names: ["r.example.test"] },
      { reason: "keyCompromise", actor: "tester" },
    );

    expect(result.revoked).toEqual({ id: before.id, serial: before.serial, reason: "keyCompromise" });
    const after = result.replacement!;
    expect(after.serial).not.toBe(before.serial);
    expect(spki(after.privateKeyPem!)).not.toBe(spki(before.privateKeyPem!));
    expect(await crlSerials(ca)).toContain(asNumber(before.serial));
    expect(await crlSerials(ca)).not.toContain(asNumber(after.serial));
    const next = await m.obtain({ names: ["r.example.test"] });
    expect(next.record.serial).toBe(after.serial);
    expect(events.map((e) => e.type)).toEqual([
      "certificate.issued",
      "certificate.revoke",
      "certificate.renewed",
    ]);
    expect(events[1]).toMatchObject({
      serial: before.serial,
      reason: "keyCompromise",
      actor: "tester",
      replace: true,
    });
  });

  it("replace: false revokes only; the next obtain issues a new certificate with a new key", async () => {
    const m = manager();
    const before = (await m.obtain({ names: ["n.example.test"] })).record;
    const result = await m.revoke(
      { id: before.id },
      { reason: "cessationOfOperation", actor: null, replace: false },
    );
    expect(result.replacement).toBeUndefined();
    expect(await crlSerials(ca)).toContain(asNumber(before.serial));
    const next = await m.obtain({ names: ["n.example.test"] });
    expect(next.cached).toBe(false);
    expect(next.record.serial).not.toBe(before.serial);
    expect(spki(next.record.privateKeyPem!)).not.toBe(spki(before.privateKeyPem!));
  });

  it("another replica (its own memory cache) stops serving the revoked certificate", async () => {
    const a = manager();
    const b = manager();
    const before = (await b.obtain({ names: ["x.example.test"] })).record;
    await a.revoke({ names: ["x.example.test"] }, { reason: "keyCompromise", actor: null, replace: false });
    // b's memory entry is still hot; once it expires (here: a new manager, same storage) it is not served
    const c = manager();
    expect((await c.obtain({ names: ["x.example.test"] })).record.serial).not.toBe(before.serial);
  });

  it("CSR mode: the replacement is issued for the caller's stored CSR", async () => {
    const m = manager();
    const key = await generatePrivateKey("ec256");
    const csrPem = await createCsr(key, ["csr.example.test"]);
    const before = (await m.obtain({ names: ["csr.example.test"], csrPem })).record;
    const { replacement } = await m.revoke(
      { names: ["csr.example.test"], csrPem },
      { reason: "superseded", actor: null },
    );
    expect(replacement!.serial).not.toBe(before.serial);
    expect(
      spki(
        new X509Certificate(replacement!.certPem).publicKey.export({ type: "spki", format: "pem" }) as string,
      ),
    ).toBe(spki(key));
  });

  it("certificate_not_found for an unknown certificate; revocation_unsupported for an issuer that cannot", async () => {
    expect(
      (
        await rejection(
          manager().revoke({ names: ["none.example.test"] }, { reason: "unspecified", actor: null }),
        )
      ).code,
    ).toBe("certificate_not_found");
    const plain: Issuer = { id: "plain", issue: (r, s) => ca.issue(r, s) };
    const m = manager(plain);
    const before = (await m.obtain({ names: ["p.example.test"] })).record;
    const e = await rejection(m.revoke({ id: before.id }, { reason: "unspecified", actor: null }));
    expect(e.code).toBe("revocation_unsupported");
    expect((await m.obtain({ names: ["p.example.test"] })).record.serial).toBe(before.serial);
  });

  it("a retry after the CA already revoked it (already_revoked) still records and replaces", async () => {
    const m = manager();
    const before = (await m.obtain({ names: ["again.example.test"] })).record;
    await ca.revoke(before.certPem, "keyCompromise", AbortSignal.timeout(5000)); // e.g. an earlier attempt
    const { replacement } = await m.revoke({ id: before.id }, { reason: "keyCompromise", actor: null });
    expect(replacement!.serial).not.toBe(before.serial);
  });
});
