import { execFile } from "node:child_process";
import { webcrypto } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ariCertId } from "../../src/acme-client/ari.js";
import { createHttp01Solver } from "../../src/acme-client/http01-solver.js";
import type { AcmeIssuer } from "../../src/acme-client/acme-issuer.js";
import type { CertfleetError, UpstreamError } from "../../src/core/errors.js";
import { startAriProxy, type AriProxy } from "../harness/ari-proxy.js";
import { startChallTestSrv, startPebble, type ChallTestSrv, type PebbleServer } from "../harness/pebble.js";
import {
  createTestStore,
  keyAndCsr,
  makeIssuer,
  signal,
  startChallengeResponder,
  uniqueName,
  type ChallengeResponder,
} from "./support.js";

const execFileAsync = promisify(execFile);

interface CertIdVector {
  source: string;
  authorityKeyIdentifier: string;
  serialDer: string;
  certId: string;
}

const vectors = JSON.parse(
  await readFile(new URL("./vectors/ari-cert-id.json", import.meta.url), "utf8"),
) as CertIdVector[];

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function certificate(serialHex: string, extensions: x509.Extension[]): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(EC, false, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: serialHex, name: "CN=ari vector", keys, signingAlgorithm: EC, extensions },
    webcrypto,
  );
  return cert.toString("pem");
}

/** The certificate id computed from `openssl x509 -serial -ext authorityKeyIdentifier` output. */
async function opensslCertId(certPem: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-ari-"));
  try {
    await writeFile(join(dir, "cert.pem"), certPem);
    const { stdout } = await execFileAsync("openssl", [
      "x509",
      "-in",
      join(dir, "cert.pem"),
      "-noout",
      "-serial",
      "-ext",
      "authorityKeyIdentifier",
    ]);
    let serial = /serial=([0-9A-F]+)/i.exec(stdout)![1]!;
    if (serial.length % 2) serial = `0${serial}`;
    if (parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`; // DER keeps it positive
    const aki = /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/i
      .exec(stdout)![1]!
      .replace(/:/g, "");
    return `${Buffer.from(aki, "hex").toString("base64url")}.${Buffer.from(serial, "hex").toString("base64url")}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeDefined();
  return e as CertfleetError;
}

describe("ariCertId", () => {
  for (const v of vectors) {
    it(`matches the vector: ${v.source}`, async () => {
      const pem = await certificate(v.serialDer, [
        new x509.AuthorityKeyIdentifierExtension(v.authorityKeyIdentifier),
      ]);
      expect(ariCertId(pem)).toBe(v.certId);
      expect(await opensslCertId(pem)).toBe(v.certId);
    });
  }

  it("refuses a certificate without an authority key identifier", async () => {
    const pem = await certificate("05", []);
    expect(() => ariCertId(pem)).toThrow(expect.objectContaining({ code: "ari_cert_id_unavailable" }));
  });

  it("refuses input that is not a certificate", () => {
    expect(() => ariCertId("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).toThrow(
      expect.objectContaining({ code: "certificate_invalid" }),
    );
  });
});

describe("ARI and order extensions through an RFC 9773 proxy in front of Pebble", () => {
  let dns: ChallTestSrv;
  let pebble: PebbleServer;
  let responder: ChallengeResponder;
  let proxy: AriProxy;
  let issuer: AcmeIssuer;
  const tokens = createTestStore();

  beforeAll(async () => {
    dns = await startChallTestSrv();
    responder = await startChallengeResponder(tokens);
    pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort: responder.port });
    proxy = await startAriProxy(pebble);
    issuer = makeIssuer(createTestStore(), [createHttp01Solver({ store: tokens, ttlMs: 60_000 })], {
      directoryUrl: proxy.directoryUrl,
      caBundlePem: proxy.caBundlePem,
      profile: "shortlived",
    });
  });

  afterAll(async () => {
    await issuer?.close();
    await proxy?.stop();
    await pebble?.stop();
    await responder?.stop();
    await dns?.stop();
  });

  async function issue(replaces?: string) {
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    return issuer.issue({ names, csrPem, keyType: "ec256", replaces }, signal());
  }

  it("issues through the proxy, and certIds of leaf and intermediate match openssl", async () => {
    const issued = await issue();
    expect(ariCertId(issued.certPem)).toBe(await opensslCertId(issued.certPem));
    expect(ariCertId(issued.chainPem)).toBe(await opensslCertId(issued.chainPem));
  });

  it("sends `profile` and `replaces` in newOrder, and Pebble accepts them", async () => {
    const previous = await issue();
    const replaces = ariCertId(previous.certPem);
    const before = proxy.newOrderPayloads.length;
    await issue(replaces);
    const payload = proxy.newOrderPayloads[before];
    expect(payload).toMatchObject({ replaces, profile: "shortlived" });
    expect(proxy.newOrderPayloads[before - 1]).not.toHaveProperty("replaces");
  });

  it("does not send `replaces` to a CA whose directory has no renewalInfo", async () => {
    const previous = await issue();
    proxy.advertiseRenewalInfo(false);
    try {
      const before = proxy.newOrderPayloads.length;
      await issue(ariCertId(previous.certPem));
      expect(proxy.newOrderPayloads[before]).not.toHaveProperty("replaces");
      const fresh = makeIssuer(createTestStore(), [], {
        directoryUrl: proxy.directoryUrl,
        caBundlePem: proxy.caBundlePem,
      });
      await expect(fresh.renewalInfo(previous.certPem, signal())).resolves.toBeUndefined();
      await fresh.close();
    } finally {
      proxy.advertiseRenewalInfo(true);
    }
  });

  it("orders again without `replaces` when the CA says alreadyReplaced", async () => {
    const previous = await issue();
    const replaces = ariCertId(previous.certPem);
    proxy.failNextNewOrder({
      status: 409,
      type: "urn:ietf:params:acme:error:alreadyReplaced",
      detail: "already replaced",
    });
    const before = proxy.newOrderPayloads.length;
    await issue(replaces);
    expect(proxy.newOrderPayloads[before]).toMatchObject({ replaces });
    expect(proxy.newOrderPayloads[before + 1]).not.toHaveProperty("replaces");
  });

  it("maps rateLimited to acme_rate_limited with the Retry-After", async () => {
    proxy.failNextNewOrder({
      status: 429,
      type: "urn:ietf:params:acme:error:rateLimited",
      detail: "too many certificates",
      headers: { "retry-after": "120" },
    });
    const e = await rejection(issue());
    expect(e.code).toBe("acme_rate_limited");
    expect(e.retryAfter).toBe(120);
    expect((e as UpstreamError).retryable).toBe(true);
  });

  it("maps serverInternal to retryable acme_server_error", async () => {
    proxy.failNextNewOrder({
      status: 500,
      type: "urn:ietf:params:acme:error:serverInternal",
      detail: "oops",
    });
    const e = await rejection(issue());
    expect(e.code).toBe("acme_server_error");
    expect((e as UpstreamError).retryable).toBe(true);
  });

  it("reads the suggested window, explanation URL and Retry-After", async () => {
    const issued = await issue();
    const certId = ariCertId(issued.certPem);
    proxy.onRenewalInfo((id) =>
      id === certId
        ? {
            status: 200,
            headers: { "retry-after": "21600" },
            body: {
              suggestedWindow: { start: "2031-01-02T04:00:00Z", end: "2031-01-03T04:00:00Z" },
              explanationURL: "https://ca.example.test/docs/ari",
            },
          }
        : { status: 404 },
    );
    const info = await issuer.renewalInfo(issued.certPem, signal());
    expect(info).toEqual({
      certId,
      windowStart: new Date("2031-01-02T04:00:00Z"),
      windowEnd: new Date("2031-01-03T04:00:00Z"),
      explanationUrl: "https://ca.example.test/docs/ari",
      retryAfterSeconds: 21600,
    });
    expect(proxy.renewalInfoRequests.at(-1)).toBe(certId);
  });

  it("returns undefined for a certificate the CA does not know (404)", async () => {
    const issued = await issue();
    proxy.onRenewalInfo(() => ({ status: 404 }));
    await expect(issuer.renewalInfo(issued.certPem, signal())).resolves.toBeUndefined();
  });

  it("rejects an inverted window as acme_renewal_info_invalid and a 503 as acme_server_error", async () => {
    const issued = await issue();
    proxy.onRenewalInfo(() => ({
      status: 200,
      body: { suggestedWindow: { start: "2031-01-03T04:00:00Z", end: "2031-01-02T04:00:00Z" } },
    }));
    expect((await rejection(issuer.renewalInfo(issued.certPem, signal()))).code).toBe(
      "acme_renewal_info_invalid",
    );
    proxy.onRenewalInfo(() => ({ status: 503, headers: { "retry-after": "30" } }));
    const e = await rejection(issuer.renewalInfo(issued.certPem, signal()));
    expect(e.code).toBe("acme_server_error");
    expect((e as UpstreamError).retryable).toBe(true);
  });
});
