import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.js";
import type { KeyType } from "../../src/core/key-types.js";
import {
  createCsr,
  generatePrivateKey,
  isAcceptablePublicKey,
  keyTypeOfPublicKey,
  parseCsr,
} from "../../src/core/keys.js";

const run = promisify(execFile);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).code;
  }
  return undefined;
}

/** Flip one bit inside the signed part of a PEM request, keeping the DER structure intact. */
function tamper(csrPem: string, needle: string): string {
  const b64 = csrPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(b64, "base64");
  const at = der.indexOf(Buffer.from(needle));
  expect(at).toBeGreaterThan(0);
  der[at] = der[at]! ^ 0x01;
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe("generatePrivateKey", () => {
  it.each<[KeyType, string, number | string]>([
    ["ec256", "ec", "prime256v1"],
    ["ec384", "ec", "secp384r1"],
    ["rsa2048", "rsa", 2048],
  ])("%s gives a PKCS#8 PEM of the right algorithm", async (type, alg, detail) => {
    const pem = await generatePrivateKey(type);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe(alg);
    const details = key.asymmetricKeyDetails!;
    expect(alg === "ec" ? details.namedCurve : details.modulusLength).toBe(detail);
    expect(keyTypeOfPublicKey(pem)).toBe(type);
  });

  it("rejects an unknown key type", async () => {
    await expect(generatePrivateKey("dsa1024" as KeyType)).rejects.toMatchObject({
      code: "key_type_invalid",
    });
  });
});

describe("createCsr / parseCsr", () => {
  it.each<[KeyType, string]>([
    ["ec256", "SHA-256"],
    ["ec384", "SHA-384"],
    ["rsa2048", "SHA-256"],
  ])("%s round-trips names and key, signed with %s", async (type, expectedHash) => {
    const keyPem = await generatePrivateKey(type);
    const csrPem = await createCsr(keyPem, ["www.example.com", "*.example.com", "example.com"]);
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);

    const parsed = parseCsr(csrPem);
    expect(parsed.names).toEqual(["www.example.com", "*.example.com", "example.com"]);
    expect(parsed.keyType).toBe(type);
    const fromKey = createPublicKey(keyPem).export({ type: "spki", format: "pem" });
    expect(parsed.publicKeyPem).toBe(fromKey);

    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(csr.subject).toBe("CN=www.example.com");
    const hash = (csr.signatureAlgorithm as { hash: { name: string } }).hash.name;
    expect(hash).toBe(expectedHash);
  });

  it("leaves out a CN longer than 64 characters but keeps the SAN", async () => {
    const long = `${"a".repeat(60)}.example.com`;
    const csrPem = await createCsr(await generatePrivateKey("ec256"), [long]);
    expect(new x509.Pkcs10CertificateRequest(csrPem).subject).toBe("");
    expect(parseCsr(csrPem).names).toEqual([long]);
  });

  it("rejects a CSR whose signed part was altered", async () => {
    const csrPem = await createCsr(await generatePrivateKey("ec256"), ["tamper.example.com"]);
    expect(codeOf(() => parseCsr(csrPem))).toBeUndefined();
    expect(codeOf(() => parseCsr(tamper(csrPem, "tamper.example.com")))).toBe("csr_invalid");
  });

  it("parses one request once: the same text gets the same frozen result, a failure is never remembered", async () => {
    const csrPem = await createCsr(await generatePrivateKey("ec256"), ["once.example.com"]);
    const first = parseCsr(csrPem);
    expect(parseCsr(csrPem)).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.names)).toBe(true);
    const bad = tamper(csrPem, "once.example.com");
    expect(codeOf(() => parseCsr(bad))).toBe("csr_invalid");
    expect(codeOf(() => parseCsr(bad))).toBe("csr_invalid");
  });

  it("rejects a CSR whose signature was altered", async () => {
    const csrPem = await createCsr(await generatePrivateKey("rsa2048"), ["sig.example.com"]);
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    der[der.length - 5] = der[der.length - 5]! ^ 0x80;
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(codeOf(() => parseCsr(bad))).toBe("csr_invalid");
  });

  it("rejects garbage, two blocks, and trailing bytes", async () => {
    const csrPem = await createCsr(await generatePrivateKey("ec256"), ["a.example.com"]);
    expect(codeOf(() => parseCsr("hello"))).toBe("csr_invalid");
    expect(codeOf(() => parseCsr(csrPem + csrPem))).toBe("csr_invalid");
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    const trailing = Buffer.concat([der, Buffer.from([0, 0])]).toString("base64");
    expect(
      codeOf(() =>
        parseCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${trailing}\n-----END CERTIFICATE REQUEST-----`),
      ),
    ).toBe("csr_invalid");
  });

  it("rejects a BER (non-DER) encoding of a valid request", async () => {
    const csrPem = await createCsr(await generatePrivateKey("ec256"), ["ber.example.com"]);
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    // the outer SEQUENCE length in long form with a needless leading zero byte: valid BER, not DER
    const header = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
    const length = der.length - header;
    const ber = Buffer.concat([
      Buffer.from([0x30, 0x83, 0, length >> 8, length & 0xff]),
      der.subarray(header),
    ]);
    expect(
      codeOf(() =>
        parseCsr(
          `-----BEGIN CERTIFICATE REQUEST-----\n${ber.toString("base64")}\n-----END CERTIFICATE REQUEST-----`,
        ),
      ),
    ).toBe("csr_invalid");
  });

  it("lowercases and deduplicates CN and SANs", async () => {
    const csrPem = await createCsr(await generatePrivateKey("ec256"), [
      "Mixed.Example.com",
      "mixed.example.COM",
      "b.example.com",
    ]);
    expect(parseCsr(csrPem).names).toEqual(["mixed.example.com", "b.example.com"]);
  });
});

describe("parseCsr against OpenSSL-made requests", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "certfleet-keys-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function opensslCsr(
    keyArgs: string[],
    subj: string,
    san: string,
    digest = "-sha256",
  ): Promise<string> {
    const key = join(dir, "key.pem");
    const csr = join(dir, "req.pem");
    await run("openssl", ["genpkey", ...keyArgs, "-out", key]);
    const args = ["req", "-new", "-key", key, digest, "-subj", subj, "-out", csr];
    if (san) args.push("-addext", `subjectAltName=${san}`);
    await run("openssl", args);
    return readFile(csr, "utf8");
  }

  it("accepts an ECDSA P-256 request with SHA-384 and reads CN + SANs", async () => {
    const pem = await opensslCsr(
      ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
      "/CN=One.example.com",
      "DNS:one.example.com,DNS:two.example.com",
      "-sha384",
    );
    expect(parseCsr(pem)).toMatchObject({ names: ["one.example.com", "two.example.com"], keyType: "ec256" });
  });

  it("accepts RSA 3072 and reports unknown for RSA 2560", async () => {
    const rsa3072 = await opensslCsr(
      ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
      "/CN=r.example.com",
      "",
    );
    expect(parseCsr(rsa3072)).toMatchObject({ names: ["r.example.com"], keyType: "rsa3072" });
    const rsa2560 = await opensslCsr(
      ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2560"],
      "/CN=r.example.com",
      "",
    );
    expect(parseCsr(rsa2560).keyType).toBe("unknown");
  });

  it.each([
    ["IP", "DNS:a.example.com,IP:127.0.0.1"],
    ["email", "DNS:a.example.com,email:a@example.com"],
    ["URI", "URI:spiffe://example.org/x"],
  ])("rejects a request with an %s SAN", async (_kind, san) => {
    const pem = await opensslCsr(
      ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
      "/CN=a.example.com",
      san,
    );
    expect(codeOf(() => parseCsr(pem))).toBe("csr_unsupported_san");
  });

  it.each([
    ["RSA 1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]],
    ["P-521", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]],
    ["secp256k1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"]],
  ])("rejects a %s key as weak", async (_kind, keyArgs) => {
    const pem = await opensslCsr(keyArgs, "/CN=a.example.com", "DNS:a.example.com");
    expect(codeOf(() => parseCsr(pem))).toBe("csr_weak_key");
  });

  it("rejects an Ed25519 request as weak/unsupported", async () => {
    const key = join(dir, "ed.pem");
    await writeFile(key, generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
    const csr = join(dir, "ed-req.pem");
    await run("openssl", ["req", "-new", "-key", key, "-subj", "/CN=a.example.com", "-out", csr]);
    const pem = await readFile(csr, "utf8");
    expect(codeOf(() => parseCsr(pem))).toBe("csr_weak_key");
  });
});

describe("key classification", () => {
  it("classifies keys", () => {
    const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    expect(isAcceptablePublicKey(rsa1024)).toBe(false);
    expect(keyTypeOfPublicKey(rsa1024)).toBe("unknown");
    const p521 = generateKeyPairSync("ec", { namedCurve: "P-521" }).publicKey;
    expect(isAcceptablePublicKey(p521)).toBe(false);
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    expect(isAcceptablePublicKey(p384)).toBe(true);
    expect(keyTypeOfPublicKey(p384)).toBe("ec384");
    expect(codeOf(() => keyTypeOfPublicKey("not a key"))).toBe("key_invalid");
  });
});
