import { X509Certificate, createPublicKey, generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { connect, createServer, type TLSSocket } from "node:tls";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { keyMatchesCertificate, parseCertificate } from "../../src/core/certificate-info.js";
import type { EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { extensionsOf, newCa, opensslVerify, wholeSecondNow } from "./helpers.js";

const DAY = 86_400_000;

/**
 * Serve `server` on 127.0.0.1:0, connect with `client` options, and report what the client (and the
 * server, for mTLS) concluded. Both ends are closed before returning.
 */
async function handshake(
  server: { cert: string; key: string; ca?: string; requestCert?: boolean },
  client: { ca: string; servername?: string; cert?: string; key?: string },
): Promise<{ clientAuthorized: boolean; clientError: string | null; serverSawClient: boolean | null }> {
  let serverSawClient: boolean | null = null;
  const srv = createServer({ ...server, rejectUnauthorized: false }, (socket: TLSSocket) => {
    serverSawClient = socket.authorized;
    socket.end("hi");
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  try {
    const { port } = srv.address() as AddressInfo;
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...client });
    await once(socket, "secureConnect");
    const result = {
      clientAuthorized: socket.authorized,
      clientError: socket.authorizationError?.toString() ?? null,
    };
    socket.resume();
    await once(socket, "end");
    socket.destroy();
    return { ...result, serverSawClient };
  } finally {
    srv.close();
  }
}

describe("embedded CA: the server's own certificate", () => {
  let ca: EmbeddedCa;
  let start: Date;
  beforeAll(async () => {
    start = wholeSecondNow();
    ({ ca } = await newCa({ leafValiditySeconds: 60 }, undefined, start));
  });

  it("covers DNS names and IPv4/IPv6 literals, and a TLS client trusting the root accepts it", async () => {
    const issued = await ca.issueServerCertificate(
      ["localhost", "Certfleet.Example.com"],
      ["127.0.0.1", "::1"],
    );
    expect(keyMatchesCertificate(issued.privateKeyPem, issued.certPem)).toBe(true);
    expect(issued.chainPem).toBe(ca.intermediatePem);

    const ext = extensionsOf(issued.certPem);
    expect(ext.san?.names).toEqual(["dns:localhost", "dns:certfleet.example.com", "ip:127.0.0.1", "ip:::1"]);
    expect(ext.extendedKeyUsage).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const leaf = new X509Certificate(issued.certPem);
    expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(leaf.checkIP("::1")).toBe("::1");
    expect(leaf.checkIP("10.0.0.1")).toBeUndefined();
    // Its own default lifetime (90 days), not the (here tiny) leaf validity.
    expect(parseCertificate(issued.certPem).notAfter.getTime()).toBe(start.getTime() + 90 * DAY);

    const cert = issued.certPem + issued.chainPem;
    const ok = await handshake(
      { cert, key: issued.privateKeyPem },
      { ca: ca.rootPem, servername: "localhost" },
    );
    expect(ok).toMatchObject({ clientAuthorized: true, clientError: null });
    const wrongName = await handshake(
      { cert, key: issued.privateKeyPem },
      { ca: ca.rootPem, servername: "other.example.org" },
    );
    expect(wrongName.clientAuthorized).toBe(false);
    const otherRoot = (await newCa()).ca.rootPem;
    const untrusted = await handshake(
      { cert, key: issued.privateKeyPem },
      { ca: otherRoot, servername: "localhost" },
    );
    expect(untrusted).toMatchObject({ clientAuthorized: false });
    expect(untrusted.clientError).toBeTruthy();

    const byIp = await opensslVerify(ca.rootPem, issued.chainPem, issued.certPem, [
      "-purpose",
      "sslserver",
      "-verify_ip",
      "::1",
    ]);
    expect(byIp.ok).toBe(true);
  });

  it("takes a per-call validity and rejects bad names, addresses and empty requests", async () => {
    const issued = await ca.issueServerCertificate(["localhost"], [], { validityDays: 2 });
    expect(parseCertificate(issued.certPem).notAfter.getTime()).toBe(start.getTime() + 2 * DAY);
    await expect(ca.issueServerCertificate(["bad name"], [])).rejects.toMatchObject({
      code: "domain_invalid",
    });
    await expect(ca.issueServerCertificate(["localhost"], ["300.1.1.1"])).rejects.toMatchObject({
      code: "ip_invalid",
    });
    await expect(ca.issueServerCertificate([], [])).rejects.toMatchObject({ code: "domains_empty" });
    await expect(ca.issueServerCertificate(["localhost"], [], { validityDays: -1 })).rejects.toMatchObject({
      code: "validity_invalid",
    });
  });
});

describe("embedded CA: client certificates", () => {
  let ca: EmbeddedCa;
  let start: Date;
  beforeAll(async () => {
    start = wholeSecondNow();
    ({ ca } = await newCa({}, undefined, start));
  });

  it("issues a clientAuth certificate with a SPIFFE URI and a generated key, usable for mTLS", async () => {
    const spiffeId = "spiffe://fleet.example/agent/42";
    const client = await ca.issueClientCertificate({
      subjectCn: "agent-42",
      uris: [spiffeId],
      validityDays: 1,
    });
    expect(client.privateKeyPem).toBeDefined();
    expect(keyMatchesCertificate(client.privateKeyPem!, client.certPem)).toBe(true);

    const ext = extensionsOf(client.certPem);
    expect(ext.extendedKeyUsage).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(ext.san?.names).toEqual([`url:${spiffeId}`]);
    expect(ext.basicConstraints?.ca).toBe(false);
    expect(ext.aki).toBe(extensionsOf(ca.intermediatePem).ski);
    expect(new X509Certificate(client.certPem).subject).toBe("CN=agent-42");
    expect(parseCertificate(client.certPem).notAfter.getTime()).toBe(start.getTime() + DAY);

    expect(
      (await opensslVerify(ca.rootPem, client.chainPem, client.certPem, ["-purpose", "sslclient"])).ok,
    ).toBe(true);
    expect(
      (await opensslVerify(ca.rootPem, client.chainPem, client.certPem, ["-purpose", "sslserver"])).ok,
    ).toBe(false);

    // A TLS server that trusts the root sees an authorised client.
    const server = await ca.issueServerCertificate(["localhost"], ["127.0.0.1"]);
    const result = await handshake(
      {
        cert: server.certPem + server.chainPem,
        key: server.privateKeyPem,
        ca: ca.rootPem,
        requestCert: true,
      },
      {
        ca: ca.rootPem,
        servername: "localhost",
        cert: client.certPem + client.chainPem,
        key: client.privateKeyPem!,
      },
    );
    expect(result).toMatchObject({ clientAuthorized: true, serverSawClient: true });
  });

  it("certifies a caller's own public key without returning a private key", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const client = await ca.issueClientCertificate({
      subjectCn: "workload",
      dnsNames: ["workload.internal"],
      publicKeyPem,
      validityDays: 0.5,
    });
    expect(client.privateKeyPem).toBeUndefined();
    expect(createPublicKey(client.certPem).export({ type: "spki", format: "pem" })).toBe(publicKeyPem);
    expect(
      keyMatchesCertificate(privateKey.export({ type: "pkcs8", format: "pem" }).toString(), client.certPem),
    ).toBe(true);
    expect(extensionsOf(client.certPem).san?.names).toEqual(["dns:workload.internal"]);
  });

  it("rejects weak keys, private keys, bad URIs, bad subjects and bad validity", async () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const base = { subjectCn: "x", validityDays: 1 };
    await expect(ca.issueClientCertificate({ ...base, publicKeyPem: weak })).rejects.toMatchObject({
      code: "key_weak",
    });
    const priv = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    await expect(ca.issueClientCertificate({ ...base, publicKeyPem: priv })).rejects.toMatchObject({
      code: "key_invalid",
    });
    await expect(ca.issueClientCertificate({ ...base, uris: ["not a uri"] })).rejects.toMatchObject({
      code: "uri_invalid",
    });
    await expect(ca.issueClientCertificate({ ...base, subjectCn: "" })).rejects.toMatchObject({
      code: "subject_invalid",
    });
    await expect(ca.issueClientCertificate({ ...base, subjectCn: "c".repeat(65) })).rejects.toMatchObject({
      code: "subject_invalid",
    });
    await expect(ca.issueClientCertificate({ ...base, validityDays: 0 })).rejects.toMatchObject({
      code: "validity_invalid",
    });
  });
});
