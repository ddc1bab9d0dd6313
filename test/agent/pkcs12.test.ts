import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPkcs12 } from "../../src/agent/install/pkcs12.js";
import { generatePrivateKey } from "../../src/core/keys.js";
import type { KeyType } from "../../src/core/key-types.js";

const run = promisify(execFile);

// The PKCS#12 writer (on @peculiar/asn1-pfx) read back by OpenSSL 3, the reader most importers share.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "certfleet-p12-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A CA and a leaf for `keyPem`, made by openssl. */
async function chainFor(keyPem: string, name: string): Promise<{ leaf: string; ca: string }> {
  await writeFile(join(dir, "leaf.key"), keyPem, { mode: 0o600 });
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "ca.key"),
    "-out",
    join(dir, "ca.pem"),
    "-subj",
    "/CN=p12 test CA",
    "-days",
    "1",
  ]);
  await run("openssl", [
    "req",
    "-new",
    "-key",
    join(dir, "leaf.key"),
    "-subj",
    `/CN=${name}`,
    "-out",
    join(dir, "leaf.csr"),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    join(dir, "leaf.csr"),
    "-CA",
    join(dir, "ca.pem"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    join(dir, "leaf.pem"),
  ]);
  const { readFile } = await import("node:fs/promises");
  return {
    leaf: await readFile(join(dir, "leaf.pem"), "utf8"),
    ca: await readFile(join(dir, "ca.pem"), "utf8"),
  };
}

async function opensslInfo(p12: Buffer, password: string): Promise<{ stdout: string; stderr: string }> {
  const file = join(dir, "out.p12");
  await writeFile(file, p12);
  return run("openssl", ["pkcs12", "-info", "-in", file, "-noenc", "-passin", `pass:${password}`]);
}

describe("buildPkcs12", () => {
  for (const keyType of ["ec256", "ec384", "rsa2048"] as KeyType[]) {
    it(`writes a ${keyType} key and its chain that openssl pkcs12 -info reads (PBES2/AES-256, SHA-256 MAC)`, async () => {
      const keyPem = await generatePrivateKey(keyType);
      const { leaf, ca } = await chainFor(keyPem, "p12.example.test");
      const p12 = buildPkcs12({ keyPem, certPems: [leaf, ca], password: "pä55 word", friendlyName: "web" });
      const { stdout, stderr } = await opensslInfo(p12, "pä55 word");

      expect(stderr).toMatch(/MAC: sha256, Iteration 2048/);
      expect(stderr).toMatch(
        /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/,
      );
      expect(stderr).toMatch(/PKCS7 Data/);
      const certs = stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      expect(certs.map((c) => new X509Certificate(c).fingerprint256)).toEqual([
        new X509Certificate(leaf).fingerprint256,
        new X509Certificate(ca).fingerprint256,
      ]);
      const keyOut = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(stdout)?.[0];
      expect(createPublicKey(createPrivateKey(keyOut!)).export({ type: "spki", format: "pem" })).toBe(
        createPublicKey(keyPem).export({ type: "spki", format: "pem" }),
      );
      // the leaf and the key carry the same localKeyId and the friendly name
      const ids = [...stdout.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]!.trim());
      expect(ids).toHaveLength(2);
      expect(ids[0]).toBe(ids[1]);
      expect(stdout.match(/friendlyName: web/g)).toHaveLength(2);
    });
  }

  it("is refused by openssl with a wrong password (the MAC does not verify)", async () => {
    const keyPem = await generatePrivateKey("ec256");
    const { leaf } = await chainFor(keyPem, "wrong.example.test");
    const p12 = buildPkcs12({ keyPem, certPems: [leaf], password: "right" });
    await expect(opensslInfo(p12, "wrong")).rejects.toThrow(/Mac verify error: invalid password/i);
  });

  it("honours the MAC iteration count and works without a friendly name", async () => {
    const keyPem = await generatePrivateKey("ec256");
    const { leaf } = await chainFor(keyPem, "iter.example.test");
    const p12 = buildPkcs12({ keyPem, certPems: [leaf], password: "x", iterations: 10_000 });
    const { stdout, stderr } = await opensslInfo(p12, "x");
    expect(stderr).toMatch(/MAC: sha256, Iteration 10000/);
    expect(stdout).not.toMatch(/friendlyName/);
  });

  it("writes a file with an empty password that openssl opens with an empty password", async () => {
    const keyPem = await generatePrivateKey("ec256");
    const { leaf } = await chainFor(keyPem, "empty.example.test");
    const { stdout } = await opensslInfo(buildPkcs12({ keyPem, certPems: [leaf], password: "" }), "");
    expect(stdout).toContain("BEGIN PRIVATE KEY");
  });

  it("refuses an empty chain", () => {
    expect(() => buildPkcs12({ keyPem: "", certPems: [], password: "x" })).toThrow(/leaf/);
  });
});
