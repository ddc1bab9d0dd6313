import { X509Certificate } from "node:crypto";
import { createServer, request as httpsRequest, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyRequest } from "fastify";
import type { AuthRequest } from "../../src/auth/authenticator.js";
import { failureReason } from "../../src/auth/auth-failure.js";
import { createClientCertificateAuthenticator } from "../../src/auth/client-certificate.js";
import { createLegacySwitch, writeLegacySettings } from "../../src/auth/legacy-switch.js";
import { createManualClock, systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { authRequestOf } from "../../src/server/auth-hook.js";
import {
  createEmbeddedCa,
  type ClientCertificate,
  type EmbeddedCa,
} from "../../src/internal-ca/embedded-ca.js";
import type { IdentityRecord, Storage } from "../../src/storage/storage.js";
import { authRequest, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
const derOf = (pem: string) => new X509Certificate(pem).raw;
const escaped = (pem: string) => encodeURIComponent(pem); // nginx $ssl_client_escaped_cert

/** Client certificates issued by the embedded CA, presented over real mTLS and through a trusted proxy header. */
describe("X.509 client certificate authenticator", () => {
  let storage: Storage;
  let ca: EmbeddedCa;
  let rogueCa: EmbeddedCa;
  let rogueStorage: Storage;
  let byFingerprint: ClientCertificate,
    byCn: ClientCertificate,
    byUri: ClientCertificate,
    unbound: ClientCertificate;
  let recordFp: IdentityRecord, recordCn: IdentityRecord, recordUri: IdentityRecord;
  const clock = createManualClock(new Date());
  let authenticator: ReturnType<typeof createClientCertificateAuthenticator>;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    storage = await openStorage();
    rogueStorage = await openStorage();
    const logger = silentLogger();
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock: systemClock,
      logger,
      options: { name: "fleet CA" },
    });
    rogueCa = await createEmbeddedCa({
      store: rogueStorage.kv,
      clock: systemClock,
      logger,
      options: { name: "fleet CA" },
    });
    [byFingerprint, byCn, byUri, unbound] = await Promise.all([
      ca.issueClientCertificate({ subjectCn: "agent-fp", validityDays: 1 }),
      ca.issueClientCertificate({ subjectCn: "agent-cn", validityDays: 1 }),
      ca.issueClientCertificate({
        subjectCn: "agent-uri",
        uris: ["spiffe://example.org/agent/uri"],
        validityDays: 1,
      }),
      ca.issueClientCertificate({ subjectCn: "nobody", validityDays: 1 }),
    ]);
    recordFp = await createIdentity(storage, {
      method: "certificate",
      binding: { fingerprint: fingerprintOf(byFingerprint.certPem) },
      grants: ["fp.example.com"],
    });
    recordCn = await createIdentity(storage, {
      method: "certificate",
      binding: { commonName: "agent-cn" },
      grants: ["cn.example.com"],
    });
    recordUri = await createIdentity(storage, {
      method: "certificate",
      binding: { uri: "spiffe://example.org/agent/uri" },
      grants: ["uri.example.com"],
    });

    const legacySwitch = createLegacySwitch({ store: storage.kv, clock: systemClock, logger, ttlMs: 0 });
    authenticator = createClientCertificateAuthenticator({
      caBundlePem: ca.rootPem + ca.intermediatePem,
      trustedProxies: ["10.0.0.0/24", "::1"],
      store: storage.identities,
      legacySwitch,
      clock,
      logger,
    });

    // A listener doing mTLS the way the server does: the verified peer certificate goes into AuthRequest.
    const tls = await ca.issueServerCertificate(["localhost"], ["127.0.0.1"]);
    server = createServer(
      {
        key: tls.privateKeyPem,
        cert: tls.certPem + tls.chainPem,
        ca: [ca.rootPem, ca.intermediatePem],
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        const peer = socket.authorized ? socket.getPeerCertificate(false) : undefined;
        const auth: AuthRequest = {
          headers: req.headers,
          remoteAddress: socket.remoteAddress ?? "",
          peerCertificate: peer?.raw,
        };
        authenticator.authenticate(auth, signal).then(
          (principal) => res.end(JSON.stringify({ principal: principal ?? null })),
          (e: unknown) =>
            res.end(JSON.stringify({ code: (e as { code?: string }).code, reason: failureReason(e) })),
        );
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await storage?.close();
    await rogueStorage?.close();
  });

  const overMtls = (client?: ClientCertificate) =>
    new Promise<{ principal?: { id: string; grants: string[] } | null; code?: string; reason?: string }>(
      (resolve, reject) => {
        const req = httpsRequest(
          {
            host: "127.0.0.1",
            port,
            path: "/",
            ca: ca.rootPem,
            ...(client ? { cert: client.certPem + client.chainPem, key: client.privateKeyPem } : {}),
          },
          (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve(JSON.parse(body)));
          },
        );
        req.on("error", reject);
        req.end();
      },
    );

  it("identifies a certificate presented over mTLS, bound by fingerprint, CN or URI SAN", async () => {
    expect((await overMtls(byFingerprint)).principal).toMatchObject({
      id: recordFp.id,
      method: "certificate",
      grants: ["fp.example.com"],
    });
    expect((await overMtls(byCn)).principal).toMatchObject({ id: recordCn.id });
    expect((await overMtls(byUri)).principal).toMatchObject({ id: recordUri.id });
  });

  it("has nothing to say without a client certificate, and refuses a valid one bound to no identity", async () => {
    expect((await overMtls()).principal).toBeNull();
    expect(await overMtls(unbound)).toMatchObject({ code: "unauthenticated", reason: "identity_unknown" });
  });

  it("accepts the forwarded header only from a trusted proxy", async () => {
    const headers = { "x-ssl-client-cert": escaped(byCn.certPem) };
    expect(
      (await authenticator.authenticate(authRequest(headers, { remoteAddress: "10.0.0.7" }), signal))?.id,
    ).toBe(recordCn.id);
    expect(
      (await authenticator.authenticate(authRequest(headers, { remoteAddress: "::ffff:10.0.0.8" }), signal))
        ?.id,
    ).toBe(recordCn.id);
    await expectAuthFailure(
      authenticator.authenticate(authRequest(headers, { remoteAddress: "203.0.113.9" }), signal),
      "forwarded_certificate_untrusted_source",
    );
    await expectAuthFailure(
      authenticator.authenticate(
        authRequest({ "x-ssl-client-cert": "garbage%" }, { remoteAddress: "10.0.0.7" }),
        signal,
      ),
      "certificate_malformed",
    );
    expect(
      await authenticator.authenticate(
        authRequest({ "x-ssl-client-cert": "" }, { remoteAddress: "10.0.0.7" }),
        signal,
      ),
    ).toBeUndefined();
  });

  it("refuses a certificate from another CA with the same name, a server certificate, and an expired one", async () => {
    const rogue = await rogueCa.issueClientCertificate({ subjectCn: "agent-cn", validityDays: 1 });
    await expectAuthFailure(
      authenticator.authenticate(authRequest({}, { peerCertificate: derOf(rogue.certPem) }), signal),
      "certificate_untrusted",
    );
    const serverCert = await ca.issueServerCertificate(["agent-cn.example.com"], []);
    await expectAuthFailure(
      authenticator.authenticate(authRequest({}, { peerCertificate: derOf(serverCert.certPem) }), signal),
      "certificate_not_client_auth",
    );
    await expectAuthFailure(
      authenticator.authenticate(authRequest({}, { peerCertificate: derOf(ca.intermediatePem) }), signal),
      "certificate_is_ca",
    );
    clock.advance(2 * 86_400_000);
    try {
      await expectAuthFailure(
        authenticator.authenticate(authRequest({}, { peerCertificate: derOf(byCn.certPem) }), signal),
        "certificate_expired",
      );
    } finally {
      clock.set(new Date());
    }
  });

  it("refuses certificates at once when the organisation disables the method", async () => {
    await writeLegacySettings(storage.kv, { certificate: false }, signal);
    try {
      expect(await overMtls(byFingerprint)).toMatchObject({
        code: "unauthenticated",
        reason: "legacy_method_disabled",
      });
    } finally {
      await writeLegacySettings(storage.kv, true, signal);
    }
    expect((await overMtls(byFingerprint)).principal).toMatchObject({ id: recordFp.id });
  });
});

/**
 * Only the root is configured; the leaf comes from the intermediate below it. The client sends the
 * intermediate along (in the TLS handshake, or after the leaf in the forwarded header) and the path is
 * verified up to the root. Without the intermediate, or with an intermediate from another hierarchy, the
 * leaf is refused.
 */
describe("X.509 client certificates: the presented chain up to a root-only bundle", () => {
  let storage: Storage;
  let rogueStorage: Storage;
  let ca: EmbeddedCa;
  let rogueCa: EmbeddedCa;
  let client: ClientCertificate;
  let record: IdentityRecord;
  let authenticator: ReturnType<typeof createClientCertificateAuthenticator>;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    storage = await openStorage();
    rogueStorage = await openStorage();
    const logger = silentLogger();
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock: systemClock,
      logger,
      options: { name: "root only" },
    });
    rogueCa = await createEmbeddedCa({
      store: rogueStorage.kv,
      clock: systemClock,
      logger,
      options: { name: "root only" },
    });
    client = await ca.issueClientCertificate({ subjectCn: "chained-agent", validityDays: 1 });
    record = await createIdentity(storage, {
      method: "certificate",
      binding: { fingerprint: fingerprintOf(client.certPem) },
      grants: ["chain.example.com"],
    });
    authenticator = createClientCertificateAuthenticator({
      caBundlePem: ca.rootPem,
      trustedProxies: ["10.0.0.0/24"],
      store: storage.identities,
      legacySwitch: createLegacySwitch({ store: storage.kv, clock: systemClock, logger, ttlMs: 0 }),
      clock: systemClock,
      logger,
    });
    const tls = await ca.issueServerCertificate(["localhost"], ["127.0.0.1"]);
    server = createServer(
      {
        key: tls.privateKeyPem,
        cert: tls.certPem + tls.chainPem,
        ca: ca.rootPem, // the server's own listener configuration: the root only
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        // the server's real extraction of the verified peer certificate and its chain
        const fake = { raw: req, headers: req.headers, ip: req.socket.remoteAddress ?? "" };
        authenticator.authenticate(authRequestOf(fake as unknown as FastifyRequest), signal).then(
          (principal) => res.end(JSON.stringify({ principal: principal ?? null })),
          (e: unknown) =>
            res.end(JSON.stringify({ code: (e as { code?: string }).code, reason: failureReason(e) })),
        );
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await storage?.close();
    await rogueStorage?.close();
  });

  const over = (certPem: string, keyPem: string) =>
    new Promise<{ principal?: { id: string } | null; code?: string; reason?: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/",
          ca: ca.rootPem,
          servername: "localhost",
          cert: certPem,
          key: keyPem,
        },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(JSON.parse(body)));
        },
      );
      req.on("error", reject);
      req.end();
    });

  it("over mTLS: leaf + intermediate in the handshake is verified up to the root", async () => {
    const answer = await over(client.certPem + client.chainPem, client.privateKeyPem!);
    expect(answer.principal).toMatchObject({ id: record.id });
  });

  it("over mTLS: the leaf alone has no path to the root and is not identified", async () => {
    const answer = await over(client.certPem, client.privateKeyPem!);
    expect(answer.principal ?? null).toBeNull(); // TLS did not verify it: no certificate reaches the authenticator
  });

  it("forwarded: the chain after the leaf in the header, from a trusted proxy", async () => {
    const forwarded = (pem: string) =>
      authRequest({ "x-ssl-client-cert": escaped(pem) }, { remoteAddress: "10.0.0.9" });
    expect(
      await authenticator.authenticate(forwarded(client.certPem + client.chainPem), signal),
    ).toMatchObject({
      id: record.id,
    });
    await expectAuthFailure(
      authenticator.authenticate(forwarded(client.certPem), signal),
      "certificate_untrusted",
    );
    // another hierarchy's intermediate with the same names does not make a path
    await expectAuthFailure(
      authenticator.authenticate(forwarded(client.certPem + rogueCa.intermediatePem), signal),
      "certificate_untrusted",
    );
    const rogue = await rogueCa.issueClientCertificate({ subjectCn: "chained-agent", validityDays: 1 });
    await expectAuthFailure(
      authenticator.authenticate(forwarded(rogue.certPem + rogue.chainPem + ca.intermediatePem), signal),
      "certificate_untrusted",
    );
  });
});
