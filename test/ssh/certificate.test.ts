import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSshCaKeyPem, loadSshCaKey, SSH_CA_KEY_TYPES } from "../../src/ssh/ca-key.js";
import {
  certificateLine,
  decodeCertificate,
  encodeCertificateBody,
  parseCertificateLine,
  signCertificate,
} from "../../src/ssh/certificate.js";
import { parseSshPublicKey } from "../../src/ssh/public-key.js";
import { SshReader } from "../../src/ssh/wire.js";
import { listCertificate, run, sshKeygen, writeOpenSshPrivateKey } from "./openssh-tools.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "certfleet-sshcert-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const utc = (d: Date) => d.toISOString().slice(0, 19);

describe("certificate encoder against ssh-keygen", () => {
  it.each(SSH_CA_KEY_TYPES.filter((t) => t !== "rsa-4096"))(
    "a %s CA signs a certificate that ssh-keygen -L reads field by field",
    async (caType) => {
      const ca = loadSshCaKey(await generateSshCaKeyPem(caType), "test-ca");
      const key = parseSshPublicKey(await sshKeygen(join(dir, `user-${caType}`), "ecdsa"));
      const validAfter = new Date("2026-01-01T00:00:00Z");
      const validBefore = new Date("2026-01-01T16:00:00Z");
      const blob = signCertificate(
        {
          key,
          type: "user",
          serial: 0xfedcba9876543210n,
          keyId: "apikey:alice",
          principals: ["alice", "root"],
          validAfter,
          validBefore,
          criticalOptions: { "source-address": "127.0.0.1/32,10.0.0.0/8", "force-command": "/usr/bin/id" },
          extensions: ["permit-pty", "permit-agent-forwarding"],
        },
        ca,
      );
      const file = join(dir, `user-${caType}-cert.pub`);
      await writeFile(file, certificateLine(blob) + "\n");
      const listed = await listCertificate(file);
      expect(listed.type).toBe("ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate");
      expect(listed.keyId).toBe("apikey:alice");
      expect(listed.serial).toBe(0xfedcba9876543210n.toString());
      expect(listed.valid).toBe(`from ${utc(validAfter)} to ${utc(validBefore)}`);
      expect(listed.principals).toEqual(["alice", "root"]);
      expect(listed.criticalOptions).toEqual([
        "force-command /usr/bin/id",
        "source-address 127.0.0.1/32,10.0.0.0/8",
      ]);
      expect(listed.extensions).toEqual(["permit-agent-forwarding", "permit-pty"]);
      expect(listed.signingCa).toContain(ca.fingerprint);
      const algorithm = new SshReader(decodeCertificate(blob).signature, "sig").text();
      expect(listed.signingCa).toContain(`(using ${algorithm})`);
      expect(algorithm).not.toBe("ssh-rsa");
    },
  );

  it("matches ssh-keygen -s byte for byte (Ed25519 signatures are deterministic)", async () => {
    const caPem = await generateSshCaKeyPem("ed25519");
    const ca = loadSshCaKey(caPem, "ca");
    await writeOpenSshPrivateKey(join(dir, "vector-ca"), caPem);
    await sshKeygen(join(dir, "vector-host"), "ed25519");
    const signed = await run("ssh-keygen", [
      "-q",
      "-s",
      join(dir, "vector-ca"),
      "-h",
      "-I",
      "host:web1",
      "-n",
      "web1.example.com,web1",
      "-V",
      "20260101000000:20260131000000",
      "-z",
      "77",
      join(dir, "vector-host.pub"),
    ]);
    expect(signed.code, signed.stderr).toBe(0);
    const reference = parseCertificateLine(await readFile(join(dir, "vector-host-cert.pub"), "utf8"));
    expect(reference.type).toBe("host");
    expect(reference.serial).toBe(77n);
    expect(reference.principals).toEqual(["web1.example.com", "web1"]);
    expect(reference.extensions).toEqual([]);
    expect(reference.signatureKey.blob.equals(ca.publicBlob)).toBe(true);

    const body = encodeCertificateBody(
      {
        key: reference.key,
        type: "host",
        serial: 77n,
        keyId: "host:web1",
        principals: ["web1.example.com", "web1"],
        validAfter: reference.validAfter,
        validBefore: reference.validBefore,
        criticalOptions: {},
        extensions: [],
      },
      reference.nonce,
      ca.publicBlob,
    );
    expect(body.equals(reference.signedData)).toBe(true);
    expect(ca.sign(body).equals(reference.signature)).toBe(true);
  });

  it("decodes what ssh-keygen makes for a user with critical options and extensions", async () => {
    const caPem = await generateSshCaKeyPem("ecdsa-p256");
    await writeOpenSshPrivateKey(join(dir, "dec-ca"), caPem);
    await sshKeygen(join(dir, "dec-user"), "rsa", 3072);
    const r = await run("ssh-keygen", [
      "-q",
      "-s",
      join(dir, "dec-ca"),
      "-I",
      "bob",
      "-n",
      "bob",
      "-V",
      "+1h",
      "-O",
      "clear",
      "-O",
      "permit-pty",
      "-O",
      "source-address=192.0.2.0/24",
      join(dir, "dec-user.pub"),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cert = parseCertificateLine(await readFile(join(dir, "dec-user-cert.pub"), "utf8"));
    expect(cert.certType).toBe("ssh-rsa-cert-v01@openssh.com");
    expect(cert.key.type).toBe("ssh-rsa");
    expect(cert.keyId).toBe("bob");
    expect(cert.criticalOptions).toEqual({ "source-address": "192.0.2.0/24" });
    expect(cert.extensions).toEqual(["permit-pty"]);
  });
});

describe("public keys", () => {
  it("accepts what ssh-keygen makes and keeps the comment", async () => {
    for (const [type, bits] of [["ed25519"], ["ecdsa", 384], ["rsa", 2048]] as const) {
      const line = await sshKeygen(join(dir, `pk-${type}`), type, bits);
      const key = parseSshPublicKey(line);
      expect(key.comment).toBe("test");
      const fp = await run("ssh-keygen", ["-l", "-f", join(dir, `pk-${type}.pub`)]);
      expect(fp.stdout).toContain(key.fingerprint);
    }
  });

  it("refuses short RSA keys, certificates, mismatched types and garbage with stable codes", async () => {
    const short = await sshKeygen(join(dir, "pk-short"), "rsa", 1024);
    expect(() => parseSshPublicKey(short)).toThrow(expect.objectContaining({ code: "ssh_key_weak" }));
    const ed = await sshKeygen(join(dir, "pk-ed"), "ed25519");
    const [, b64] = ed.split(" ");
    expect(() => parseSshPublicKey(`ssh-rsa ${b64}`)).toThrow(
      expect.objectContaining({ code: "ssh_public_key_invalid" }),
    );
    expect(() => parseSshPublicKey("ssh-ed25519 AAAA")).toThrow(
      expect.objectContaining({ code: "ssh_public_key_invalid" }),
    );
    expect(() => parseSshPublicKey("not a key")).toThrow(
      expect.objectContaining({ code: "ssh_public_key_invalid" }),
    );
    const ca = loadSshCaKey(await generateSshCaKeyPem("ed25519"), "ca");
    const now = new Date();
    const cert = certificateLine(
      signCertificate(
        {
          key: parseSshPublicKey(ed),
          type: "user",
          serial: 1n,
          keyId: "x",
          principals: ["x"],
          validAfter: now,
          validBefore: new Date(now.getTime() + 60_000),
          criticalOptions: {},
          extensions: [],
        },
        ca,
      ),
    );
    expect(() => parseSshPublicKey(cert)).toThrow(
      expect.objectContaining({ code: "ssh_public_key_invalid" }),
    );
  });
});
