import { X509Certificate, createPublicKey } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { keyMatchesCertificate, parseCertificate } from "../../src/core/certificate-info.js";
import type { KeyType } from "../../src/core/key-types.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import type { EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import type { Issuer } from "../../src/issuance/issuer.js";
import { extensionsOf, newCa, opensslVerify, wholeSecondNow } from "./helpers.js";

const DAY = 86_400_000;
const { KeyUsageFlags, ExtendedKeyUsage } = x509;
const signal = () => new AbortController().signal;

function tamper(csrPem: string, needle: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const at = der.indexOf(Buffer.from(needle));
  der[at] = der[at]! ^ 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** The content octets of the certificate's serialNumber INTEGER, straight from the DER. */
function serialDer(certPem: string): Buffer {
  const der = Buffer.from(new x509.X509Certificate(certPem).rawData);
  // Skip a SEQUENCE/explicit-tag header at `at`, returning the offset of its content.
  const enter = (at: number) => at + 2 + (der[at + 1]! & 0x80 ? der[at + 1]! & 0x7f : 0);
  let at = enter(enter(0)); // Certificate -> TBSCertificate
  if (der[at] === 0xa0) at += 2 + der[at + 1]!; // [0] version
  expect(der[at]).toBe(0x02);
  return der.subarray(at + 2, at + 2 + der[at + 1]!);
}

describe("embedded CA: issue()", () => {
  let ca: EmbeddedCa;
  let start: Date;
  let ecKey: string;
  beforeAll(async () => {
    start = wholeSecondNow();
    ({ ca } = await newCa({}, undefined, start));
    ecKey = await generatePrivateKey("ec256");
  });

  it("is an Issuer with id 'embedded'", () => {
    const issuer: Issuer = ca;
    expect(issuer.id).toBe("embedded");
  });

  it("issues an ECDSA server certificate that OpenSSL and Node verify up to the root", async () => {
    const names = ["www.example.com", "*.example.com", "example.com"];
    const csrPem = await createCsr(ecKey, names);
    const { certPem, chainPem } = await ca.issue({ names, csrPem, keyType: "ec256" }, signal());
    expect(chainPem).toBe(ca.intermediatePem);

    const check = await opensslVerify(ca.rootPem, chainPem, certPem, [
      "-purpose",
      "sslserver",
      "-verify_hostname",
      "www.example.com",
    ]);
    expect(check.output).toContain("OK");
    expect(check.ok).toBe(true);
    // …and not as a client certificate, nor for another host.
    expect((await opensslVerify(ca.rootPem, chainPem, certPem, ["-purpose", "sslclient"])).ok).toBe(false);
    expect((await opensslVerify(ca.rootPem, chainPem, certPem, ["-verify_hostname", "other.org"])).ok).toBe(
      false,
    );

    const leaf = new X509Certificate(certPem);
    const intermediate = new X509Certificate(ca.intermediatePem);
    expect(leaf.checkIssued(intermediate)).toBe(true);
    expect(leaf.verify(intermediate.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subject).toBe("CN=www.example.com");
    expect(leaf.checkHost("a.example.com")).toBe("*.example.com");
    expect(leaf.checkHost("a.b.example.com")).toBeUndefined();
    expect(keyMatchesCertificate(ecKey, certPem)).toBe(true);

    const info = parseCertificate(certPem);
    expect(info.dnsNames).toEqual(names);
    expect(info.notBefore.getTime()).toBe(start.getTime() - 60_000);
    expect(info.notAfter.getTime()).toBe(start.getTime() + 30 * DAY);

    const ext = extensionsOf(certPem);
    expect(ext.basicConstraints).toEqual({ ca: false, pathLength: undefined, critical: true });
    expect(ext.keyUsage).toEqual({ usages: KeyUsageFlags.digitalSignature, critical: true });
    expect(ext.extendedKeyUsage).toEqual([ExtendedKeyUsage.serverAuth]);
    expect(ext.aki).toBe(extensionsOf(ca.intermediatePem).ski);
    expect(ext.ski).toMatch(/^[0-9a-f]{40}$/);
    expect(ext.san).toEqual({ names: names.map((n) => `dns:${n}`), critical: false });
  });

  it("uses a random, positive 128-bit serial", async () => {
    const csrPem = await createCsr(ecKey, ["serial.example.com"]);
    const serials = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const { certPem } = await ca.issue(
          { names: ["serial.example.com"], csrPem, keyType: "ec256" },
          signal(),
        );
        return serialDer(certPem);
      }),
    );
    expect(new Set(serials.map((s) => s.toString("hex"))).size).toBe(8);
    for (const raw of serials) {
      // DER INTEGER content: 16 random bytes, with a leading 00 only when needed to keep it positive.
      expect(raw[0]! & 0x80).toBe(0);
      if (raw[0] === 0) expect(raw.length === 17 && raw[1]! >= 0x80).toBe(true);
      else expect(raw.length).toBeLessThanOrEqual(16);
      expect(raw.length).toBeGreaterThanOrEqual(14);
    }
  });

  it("adds keyEncipherment for an RSA key", async () => {
    const rsaKey = await generatePrivateKey("rsa2048");
    const csrPem = await createCsr(rsaKey, ["rsa.example.com"]);
    const { certPem, chainPem } = await ca.issue(
      { names: ["rsa.example.com"], csrPem, keyType: "rsa2048" },
      signal(),
    );
    expect(extensionsOf(certPem).keyUsage).toEqual({
      usages: KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment,
      critical: true,
    });
    expect(keyMatchesCertificate(rsaKey, certPem)).toBe(true);
    expect((await opensslVerify(ca.rootPem, chainPem, certPem, ["-purpose", "sslserver"])).ok).toBe(true);
  });

  it("accepts the CSR's names in another order but refuses different names", async () => {
    const csrPem = await createCsr(ecKey, ["a.example.com", "b.example.com"]);
    await expect(
      ca.issue({ names: ["b.example.com", "a.example.com"], csrPem, keyType: "ec256" }, signal()),
    ).resolves.toBeDefined();
    for (const names of [
      ["a.example.com"],
      ["a.example.com", "b.example.com", "c.example.com"],
      ["a.example.com", "x.example.com"],
    ]) {
      await expect(ca.issue({ names, csrPem, keyType: "ec256" }, signal())).rejects.toMatchObject({
        code: "csr_names_mismatch",
        status: 400,
      });
    }
  });

  it("refuses a tampered CSR, a key of another type, and invalid request names", async () => {
    const csrPem = await createCsr(ecKey, ["t.example.com"]);
    await expect(
      ca.issue(
        { names: ["t.example.com"], csrPem: tamper(csrPem, "t.example.com"), keyType: "ec256" },
        signal(),
      ),
    ).rejects.toMatchObject({
      code: "csr_invalid",
    });
    await expect(
      ca.issue({ names: ["t.example.com"], csrPem, keyType: "ec384" as KeyType }, signal()),
    ).rejects.toMatchObject({
      code: "csr_key_type_mismatch",
    });
    const bad = await createCsr(ecKey, ["bad name.example.com"]);
    await expect(
      ca.issue({ names: ["bad name.example.com"], csrPem: bad, keyType: "ec256" }, signal()),
    ).rejects.toMatchObject({
      code: "domain_invalid",
    });
  });

  it("stops when the signal is already aborted", async () => {
    const csrPem = await createCsr(ecKey, ["t.example.com"]);
    const controller = new AbortController();
    controller.abort();
    await expect(
      ca.issue({ names: ["t.example.com"], csrPem, keyType: "ec256" }, controller.signal),
    ).rejects.toMatchObject({
      code: "aborted",
    });
  });

  it("leaves out a CN longer than 64 characters and makes the SAN critical", async () => {
    const long = `${"a".repeat(60)}.example.com`;
    const csrPem = await createCsr(ecKey, [long]);
    const { certPem, chainPem } = await ca.issue({ names: [long], csrPem, keyType: "ec256" }, signal());
    expect(new X509Certificate(certPem).subject).toBeFalsy();
    expect(extensionsOf(certPem).san).toEqual({ names: [`dns:${long}`], critical: true });
    expect((await opensslVerify(ca.rootPem, chainPem, certPem, ["-verify_hostname", long])).ok).toBe(true);
  });
});

describe("embedded CA: validity", () => {
  it("issues short-lived certificates with leafValiditySeconds", async () => {
    const start = wholeSecondNow();
    const { ca } = await newCa({ leafValiditySeconds: 5 }, undefined, start);
    const key = await generatePrivateKey("ec256");
    const csrPem = await createCsr(key, ["short.example.com"]);
    const { certPem } = await ca.issue({ names: ["short.example.com"], csrPem, keyType: "ec256" }, signal());
    expect(parseCertificate(certPem).notAfter.getTime()).toBe(start.getTime() + 5000);
  });

  it("honours leafValidityDays and never outlives the intermediate", async () => {
    const start = wholeSecondNow();
    const { ca, store } = await newCa({ leafValidityDays: 7 }, undefined, start);
    const key = await generatePrivateKey("ec256");
    const csrPem = await createCsr(key, ["v.example.com"]);
    const request = { names: ["v.example.com"], csrPem, keyType: "ec256" as const };
    expect(parseCertificate((await ca.issue(request, signal())).certPem).notAfter.getTime()).toBe(
      start.getTime() + 7 * DAY,
    );

    // Four days before the intermediate ends, a 7-day leaf is cut short at the intermediate's end.
    const intermediateEnd = parseCertificate(ca.intermediatePem).notAfter.getTime();
    const late = await newCa({ leafValidityDays: 7 }, store, new Date(intermediateEnd - 4 * DAY));
    const { certPem } = await late.ca.issue(request, signal());
    expect(parseCertificate(certPem).notAfter.getTime()).toBe(intermediateEnd);

    // Once the intermediate is gone, issuing fails loudly.
    late.clock.advance(5 * DAY);
    await expect(late.ca.issue(request, signal())).rejects.toMatchObject({ code: "internal_ca_expired" });
  });

  it("does not trust a leaf from another CA", async () => {
    const a = await newCa();
    const b = await newCa();
    const key = await generatePrivateKey("ec256");
    const csrPem = await createCsr(key, ["x.example.com"]);
    const { certPem, chainPem } = await a.ca.issue(
      { names: ["x.example.com"], csrPem, keyType: "ec256" },
      signal(),
    );
    expect((await opensslVerify(b.ca.rootPem, chainPem, certPem)).ok).toBe(false);
    expect(new X509Certificate(certPem).verify(createPublicKey(b.ca.intermediatePem))).toBe(false);
  });
});
