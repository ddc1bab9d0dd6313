import { writeFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBind, type BindServer } from "../harness/bind.js";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { createTestTlsMaterial, freePort, startPebble, type PebbleServer } from "../harness/pebble.js";
import { keyMatches, opensslVerify, sanDnsNames } from "../harness/pki.js";

/**
 * The whole path with real peers: `certfleet serve` as a process, Pebble as the CA, BIND as the
 * authoritative DNS server (RFC 2136 updates with TSIG; Pebble resolves through it), HTTP-01 answered by
 * certfleet's own listener. Every certificate is verified up to Pebble's root.
 */
describe("certfleet serve against Pebble + BIND", () => {
  const zone = "example.test";
  let bind: BindServer;
  let pebble: PebbleServer;
  let cf: CertfleetProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-pebble-e2e-"));
    // names resolve to loopback so Pebble's HTTP-01 validation reaches certfleet's listener
    bind = await startBind({
      zone,
      records: { [zone]: [`*.${zone}. IN A 127.0.0.1`, `${zone}. IN A 127.0.0.1`] },
    });
    const httpPort = await freePort();
    pebble = await startPebble({ dnsServer: bind.address, httpPort });
    const caBundle = join(dir, "pebble-ca.pem");
    await writeFile(caBundle, pebble.caBundlePem);
    const acme = {
      type: "acme",
      caDirUrl: pebble.directoryUrl,
      caBundleFile: caBundle,
      email: "ops@example.com",
      pollInterval: "100ms",
    };
    cf = await startCertfleet({
      dataDir: dir,
      config: {
        issuers: [
          { id: "pebble-http", challenges: ["http-01"], ...acme },
          { id: "pebble-dns", challenges: ["dns-01"], ...acme },
        ],
        routing: {
          rules: [
            { match: `dns.${zone}`, issuer: "pebble-dns" },
            { match: `.dns.${zone}`, issuer: "pebble-dns" },
          ],
          defaultIssuer: "pebble-http",
        },
        server: { bind: "127.0.0.1", port: 0, http01: { enabled: true, bind: "127.0.0.1", port: httpPort } },
        dns: {
          providers: [
            {
              id: "bind",
              type: "rfc2136",
              zones: [zone],
              config: {
                nameserver: bind.address,
                tsigKeyName: bind.tsig.name,
                tsigAlgorithm: bind.tsig.algorithm,
                tsigSecret: bind.tsig.secret,
              },
            },
          ],
          resolvers: [bind.address],
          authoritativeServers: [bind.address],
          propagationInterval: "200ms",
          propagationTimeout: "30s",
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await cf?.stop();
    await pebble?.stop();
    await bind?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function expectValid(body: any, names: string[]) {
    expect(sanDnsNames(body.certificate)).toEqual([...names].sort());
    expect(keyMatches(body.privateKey, body.certificate)).toBe(true);
    const root = await pebble.rootPem();
    expect(await opensslVerify(root, body.issuerCert, body.certificate, { purpose: "sslserver" })).toContain(
      "OK",
    );
  }

  it("HTTP-01: certfleet's own listener answers Pebble", async () => {
    const res = await cf.post("/api/certificate", { domain: `www.${zone}` });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.issuer).toBe("pebble-http");
    await expectValid(res.body, [`www.${zone}`]);
  });

  it("DNS-01 via RFC 2136 into BIND, and the record is cleaned up afterwards", async () => {
    const res = await cf.post("/api/certificate", { domains: [`api.dns.${zone}`, `app.dns.${zone}`] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.issuer).toBe("pebble-dns");
    await expectValid(res.body, [`api.dns.${zone}`, `app.dns.${zone}`]);
    expect(await bind.dig(`_acme-challenge.api.dns.${zone}`, "TXT")).toEqual([]);
  });

  it("a wildcard certificate (DNS-01, apex and wildcard share one TXT name)", async () => {
    const res = await cf.post("/api/certificate", { domains: [`*.dns.${zone}`, `dns.${zone}`] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await expectValid(res.body, [`*.dns.${zone}`, `dns.${zone}`]);
  });

  it("50 concurrent requests for a new name cause exactly one ACME order", async () => {
    // Pebble logs its order count after every new order: count at the CA, not in certfleet
    const pebbleOrders = () =>
      Number([...pebble.log().matchAll(/There are now (\d+) orders in the db/g)].at(-1)?.[1] ?? 0);
    const ordersBefore = pebbleOrders();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => cf.post("/api/certificate", { domain: `burst.${zone}` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(new Set(results.map((r) => r.body.serial)).size).toBe(1);
    expect(results.filter((r) => r.body.cached === false).length).toBeGreaterThanOrEqual(1);
    const ordersAfter = pebbleOrders();
    expect(ordersAfter - ordersBefore).toBe(1);
  });

  it("a le-cert-server config file works as it is (PSK, inline TLS, lego rfc2136 credentials)", async () => {
    const tls = await createTestTlsMaterial();
    const caBundle = join(dir, "pebble-ca-le.pem");
    await writeFile(caBundle, pebble.caBundlePem);
    const psk = "le-cert-server-pre-shared-key-0123456789";
    const le = await startCertfleet({
      caPem: tls.caPem,
      config: {
        server: { bind: "127.0.0.1", port: 0, tls: { certPEM: tls.certPem, keyPEM: tls.keyPem } },
        database: { path: join(dir, "le-cert-server.db") },
        auth: { method: "psk", psk: { key: psk } },
        letsEncrypt: {
          email: "ops@example.com",
          staging: true,
          dnsProvider: "rfc2136",
          dnsCredentials: {
            RFC2136_NAMESERVER: bind.address,
            RFC2136_TSIG_KEY: bind.tsig.name,
            RFC2136_TSIG_SECRET: bind.tsig.secret,
            RFC2136_TSIG_ALGORITHM: bind.tsig.algorithm,
          },
          renewalDays: 30,
        },
        // certfleet's own keys beside le-cert-server's: the CA (Pebble instead of LE staging) and DNS servers
        acme: { caDirUrl: pebble.directoryUrl, caBundleFile: caBundle, pollInterval: "100ms" },
        dns: {
          resolvers: [bind.address],
          authoritativeServers: [bind.address],
          propagationInterval: "200ms",
        },
      },
    });
    try {
      expect(le.apiKey).toBeUndefined(); // no bootstrap key when a PSK is configured
      const refused = await le.post(
        "/api/certificate",
        { domain: `le.${zone}` },
        { apiKey: "not-the-psk-not-the-psk" },
      );
      expect(refused.status).toBe(401);
      const res = await le.post("/api/certificate", { domain: `le.${zone}` }, { apiKey: psk });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      await expectValid(res.body, [`le.${zone}`]);
      // renewalDays: renew when 30 days remain (Pebble's certificates live 5 years), jitter at most half of that
      const renewAtDays = (Date.parse(res.body.notAfter) - Date.parse(res.body.renewAt)) / 86_400_000;
      expect(renewAtDays).toBeGreaterThanOrEqual(30);
      expect(renewAtDays).toBeLessThanOrEqual(45);
    } finally {
      await le.stop();
    }
  });
});
