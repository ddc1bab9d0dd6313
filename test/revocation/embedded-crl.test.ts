import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCertfleetError, type CertfleetError } from "../../src/core/errors.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { hasRevoke } from "../../src/issuance/issuer.js";
import { newCa } from "../internal-ca/helpers.js";

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "certfleet-crl-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function crlPem(der: Uint8Array): string {
  return x509.PemConverter.encode(der.slice().buffer, "X509 CRL");
}

async function leaf(ca: EmbeddedCa, name: string): Promise<string> {
  const key = await generatePrivateKey("ec256");
  const issued = await ca.issue(
    { names: [name], csrPem: await createCsr(key, [name]), keyType: "ec256" },
    AbortSignal.timeout(10_000),
  );
  return issued.certPem;
}

let n = 0;
/** `openssl verify -crl_check` with the CA's current CRL; ok and what OpenSSL printed. */
async function verifyWithCrl(ca: EmbeddedCa, leafPem: string) {
  const sub = join(dir, String(++n));
  await run("mkdir", ["-p", sub]);
  await Promise.all([
    writeFile(join(sub, "root.pem"), ca.rootPem),
    writeFile(join(sub, "int.pem"), ca.intermediatePem),
    writeFile(join(sub, "leaf.pem"), leafPem),
    writeFile(join(sub, "crl.pem"), crlPem(await ca.crl())),
  ]);
  const args = ["verify", "-crl_check", "-CAfile", "root.pem", "-untrusted", "int.pem"];
  try {
    const { stdout, stderr } = await run("openssl", [...args, "-CRLfile", "crl.pem", "leaf.pem"], {
      cwd: sub,
    });
    return { ok: true, output: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: (err.stdout ?? "") + (err.stderr ?? "") };
  }
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCertfleetError(e)).toBe(true);
  return e as CertfleetError;
}

describe("embedded CA revocation and CRL", () => {
  it("lists a revoked leaf: openssl -crl_check says revoked for it and accepts another leaf", async () => {
    const { ca } = await newCa();
    expect(hasRevoke(ca)).toBe(true);
    const revoked = await leaf(ca, "revoked.example.test");
    const kept = await leaf(ca, "kept.example.test");
    expect((await verifyWithCrl(ca, revoked)).ok).toBe(true); // an empty CRL first

    await ca.revoke(revoked, "keyCompromise", AbortSignal.timeout(5000));

    const bad = await verifyWithCrl(ca, revoked);
    expect(bad.ok).toBe(false);
    expect(bad.output).toContain("certificate revoked");
    const good = await verifyWithCrl(ca, kept);
    expect(good.ok, good.output).toBe(true);
  });

  it("signs with the intermediate: AKI, CRL number, a nextUpdate within 7 days, the reason", async () => {
    const { ca, clock } = await newCa();
    const first = new x509.X509Crl(await ca.crl());
    const cert = await leaf(ca, "a.example.test");
    clock.advance(2000);
    await ca.revoke(cert, "superseded", AbortSignal.timeout(5000));
    const crl = new x509.X509Crl(await ca.crl());
    const intermediate = new x509.X509Certificate(ca.intermediatePem);
    expect(await crl.verify({ publicKey: intermediate.publicKey })).toBe(true);
    expect(crl.issuer).toBe(intermediate.subject);
    const aki = crl.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    const span = crl.nextUpdate!.getTime() - crl.thisUpdate.getTime();
    expect(span).toBeGreaterThan(0);
    expect(span).toBeLessThanOrEqual(7 * 86_400_000);
    const number = (c: x509.X509Crl) =>
      BigInt("0x" + Buffer.from(c.getExtension("2.5.29.20")!.value).toString("hex").slice(4));
    expect(number(crl)).toBeGreaterThan(number(first));
    expect(crl.entries).toHaveLength(1);
    expect(crl.entries[0]!.reason).toBe(x509.X509CrlReason.superseded);
  });

  it("keeps the cached CRL for a day, then makes a new one", async () => {
    const { ca, clock } = await newCa();
    const a = new x509.X509Crl(await ca.crl());
    clock.advance(3600_000);
    const b = new x509.X509Crl(await ca.crl());
    expect(b.thisUpdate.getTime()).toBe(a.thisUpdate.getTime());
    clock.advance(86_400_000);
    const c = new x509.X509Crl(await ca.crl());
    expect(c.thisUpdate.getTime()).toBeGreaterThan(a.thisUpdate.getTime());
  });

  it("twice is already_revoked; a foreign certificate is refused; replicas share the list", async () => {
    const { ca, store, clock } = await newCa();
    const other = await createEmbeddedCa({ store, clock, logger: silentLogger(), options: {} });
    const cert = await leaf(ca, "b.example.test");
    const other2 = await leaf(other, "c.example.test");
    await other.revoke(cert, "unspecified", AbortSignal.timeout(5000));
    expect((await rejection(ca.revoke(cert, "keyCompromise", AbortSignal.timeout(5000)))).code).toBe(
      "already_revoked",
    );
    // both replicas revoke different leaves at once; each CRL lists both afterwards
    const third = await leaf(ca, "d.example.test");
    await Promise.all([
      ca.revoke(third, "unspecified", AbortSignal.timeout(5000)),
      other.revoke(other2, "unspecified", AbortSignal.timeout(5000)),
    ]);
    for (const replica of [ca, other]) {
      const serials = new x509.X509Crl(await replica.crl()).entries.map((e) => e.serialNumber.toLowerCase());
      expect(serials).toHaveLength(3);
    }
    const { ca: stranger } = await newCa();
    const foreign = await leaf(stranger, "e.example.test");
    expect((await rejection(ca.revoke(foreign, "unspecified", AbortSignal.timeout(5000)))).code).toBe(
      "certificate_not_issued_here",
    );
  });

  it("writes crlUrl into new leaves as a CRL distribution point", async () => {
    const { ca } = await newCa({ crlUrl: "https://certs.example.test/ca/intermediate.crl" });
    const cert = new x509.X509Certificate(await leaf(ca, "f.example.test"));
    const cdp = cert.getExtension(x509.CRLDistributionPointsExtension);
    expect(cdp).not.toBeNull();
    const uri = cdp!.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier;
    expect(uri).toBe("https://certs.example.test/ca/intermediate.crl");
    const { ca: plain } = await newCa();
    expect(
      new x509.X509Certificate(await leaf(plain, "g.example.test")).getExtension(
        x509.CRLDistributionPointsExtension,
      ),
    ).toBeNull();
  });
});
