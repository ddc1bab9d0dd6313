import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startBind, type BindServer } from "../harness/bind.js";
import { freePort } from "../harness/pebble.js";
import { opensslVerify, sanDnsNames } from "../harness/pki.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey } from "./jws-client.js";
import { runLego } from "./real-clients.js";

/**
 * `challenge` mode: certfleet validates HTTP-01, DNS-01 and TLS-ALPN-01 itself, resolving through a
 * real BIND. lego is the client; for DNS-01 it writes the TXT record into BIND with RFC 2136.
 */
let bind: BindServer;
let server: AcmeTestServer;
let ports: { http01: number; tlsAlpn01: number; ssrf: number };
let victim: Server;
const hits: string[] = [];
let respond: (path: string) => { status: number; body?: string; location?: string } = () => ({ status: 404 });

beforeAll(async () => {
  bind = await startBind({
    zone: "example.test",
    records: {
      "example.test": [
        "web.example.test. IN A 127.0.0.1",
        "alpn.example.test. IN A 127.0.0.1",
        "ssrf.example.test. IN A 127.0.0.1",
        "hop.example.test. IN A 127.0.0.1",
      ],
    },
  });
  ports = { http01: await freePort(), tlsAlpn01: await freePort(), ssrf: await freePort() };
  victim = createServer((req, res) => {
    hits.push(`${req.headers.host ?? ""}${req.url ?? ""}`);
    const r = respond(req.url ?? "");
    res.writeHead(r.status, r.location ? { location: r.location } : {});
    res.end(r.body ?? "");
  });
  await new Promise<void>((resolve) => victim.listen(ports.ssrf, "127.0.0.1", resolve));
  server = await startAcmeTestServer({
    profiles: [
      {
        name: "open",
        mode: "challenge",
        allowPrivateAddresses: true,
        ports: { http01: ports.http01, tlsAlpn01: ports.tlsAlpn01 },
      },
      { name: "strict", mode: "challenge", ports: { http01: ports.ssrf, tlsAlpn01: ports.tlsAlpn01 } },
      {
        name: "ssrf",
        mode: "challenge",
        allowPrivateAddresses: true,
        ports: { http01: ports.ssrf, tlsAlpn01: ports.tlsAlpn01 },
      },
    ],
    dnsResolvers: [bind.address],
    validationTimeout: 5_000,
  });
});
afterAll(async () => {
  await server?.stop();
  await new Promise((resolve) => victim?.close(resolve));
  await bind?.stop();
});

describe("lego in challenge mode", () => {
  test("HTTP-01", async () => {
    const res = await runLego({
      directoryUrl: server.directoryUrl("open"),
      caFile: server.caFile,
      domains: ["web.example.test"],
      solver: ["--http", "--http.port", `127.0.0.1:${ports.http01}`],
    });
    expect(res.code, res.output).toBe(0);
    const pem = await res.certPem();
    expect(sanDnsNames(pem)).toEqual(["web.example.test"]);
    await opensslVerify(server.caPem, await res.issuerPem(), pem);
  });

  test("DNS-01 with a wildcard, TXT records written to BIND over RFC 2136", async () => {
    const res = await runLego({
      directoryUrl: server.directoryUrl("open"),
      caFile: server.caFile,
      domains: ["dns.example.test", "*.dns.example.test"],
      solver: ["--dns", "rfc2136", "--dns.resolvers", bind.address, "--dns.disable-cp"],
      env: {
        RFC2136_NAMESERVER: bind.address,
        RFC2136_TSIG_KEY: bind.tsig.name,
        RFC2136_TSIG_SECRET: bind.tsig.secret,
        RFC2136_TSIG_ALGORITHM: bind.tsig.algorithm,
        RFC2136_PROPAGATION_TIMEOUT: "20",
        RFC2136_POLLING_INTERVAL: "1",
        RFC2136_TTL: "10",
        RFC2136_SEQUENCE_INTERVAL: "1",
      },
    });
    expect(res.code, res.output).toBe(0);
    expect(sanDnsNames(await res.certPem())).toEqual(["*.dns.example.test", "dns.example.test"]);
  });

  test("TLS-ALPN-01", async () => {
    const res = await runLego({
      directoryUrl: server.directoryUrl("open"),
      caFile: server.caFile,
      domains: ["alpn.example.test"],
      solver: ["--tls", "--tls.port", `127.0.0.1:${ports.tlsAlpn01}`],
    });
    expect(res.code, res.output).toBe(0);
    expect(sanDnsNames(await res.certPem())).toEqual(["alpn.example.test"]);
  });

  test("a wrong HTTP-01 answer fails the order: lego reports the problem", async () => {
    respond = () => ({ status: 200, body: "not the key authorization" });
    const res = await runLego({
      directoryUrl: server.directoryUrl("ssrf"),
      caFile: server.caFile,
      domains: ["ssrf.example.test"],
      // lego's own listener is on another port; certfleet asks the test's server, which answers wrongly
      solver: ["--http", "--http.port", `127.0.0.1:${await freePort()}`],
    });
    expect(res.code).not.toBe(0);
    expect(res.output).toContain("urn:ietf:params:acme:error:incorrectResponse");
  });
});

describe("HTTP-01 validation defences", () => {
  async function attempt(profile: string, domain: string) {
    const c = await new TestAcmeClient(
      server.directoryUrl(profile),
      server.agent,
      await newAccountKey(),
    ).init();
    expect((await c.register()).status).toBe(201);
    const order = await c.post(c.directory.newOrder!, { identifiers: [{ type: "dns", value: domain }] });
    const authzUrl = (order.body.authorizations as string[])[0]!;
    const authz = await c.post(authzUrl, "");
    const ch = (authz.body.challenges as { type: string; url: string; token: string }[]).find(
      (x) => x.type === "http-01",
    )!;
    const started = await c.post(ch.url, {});
    expect(started.body.status).toBe("processing");
    expect(String(started.headers.link)).toContain(`<${authzUrl}>;rel="up"`);
    for (let i = 0; i < 100; i++) {
      const now = await c.post(authzUrl, "");
      if (now.body.status !== "pending") {
        const chal = (now.body.challenges as { type: string; error?: { type: string } }[]).find(
          (x) => x.type === "http-01",
        );
        return { status: now.body.status as string, error: chal?.error?.type, token: ch.token };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("validation did not finish");
  }

  test("loopback is refused unless the profile allows private addresses", async () => {
    hits.length = 0;
    respond = () => ({ status: 200, body: "x" });
    const res = await attempt("strict", "ssrf.example.test");
    expect(res).toMatchObject({ status: "invalid", error: PROBLEM("connection") });
    expect(hits).toEqual([]);
  });

  test("redirects are bounded and never go to IP literals or other ports", async () => {
    respond = (path) => ({ status: 302, location: `http://hop.example.test:${ports.ssrf}${path}x` });
    hits.length = 0;
    expect(await attempt("ssrf", "ssrf.example.test")).toMatchObject({
      status: "invalid",
      error: PROBLEM("connection"),
    });
    expect(hits.length).toBe(6);

    for (const location of [
      `http://127.0.0.1:${ports.ssrf}/`,
      `http://hop.example.test:${ports.http01}/`,
      "ftp://hop.example.test/",
    ]) {
      respond = () => ({ status: 301, location });
      hits.length = 0;
      expect(await attempt("ssrf", "ssrf.example.test")).toMatchObject({
        status: "invalid",
        error: PROBLEM("connection"),
      });
      expect(hits.length).toBe(1);
    }
  });

  test("the body is capped; a matching body after a redirect is accepted", async () => {
    respond = () => ({ status: 200, body: "x".repeat(64 * 1024) });
    expect(await attempt("ssrf", "ssrf.example.test")).toMatchObject({
      status: "invalid",
      error: PROBLEM("unauthorized"),
    });

    let keyAuthorization = "";
    respond = (path) =>
      path.startsWith("/.well-known/")
        ? { status: 307, location: `http://hop.example.test:${ports.ssrf}/moved${path}` }
        : { status: 200, body: `${keyAuthorization}\n` };
    // the key authorization is token.thumbprint: answer with whatever token the validator asks for
    const c = await new TestAcmeClient(
      server.directoryUrl("ssrf"),
      server.agent,
      await newAccountKey(),
    ).init();
    await c.register();
    const { calculateJwkThumbprint } = await import("jose");
    const thumbprint = await calculateJwkThumbprint(c.key.publicJwk);
    const order = await c.post(c.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "ssrf.example.test" }],
    });
    const authzUrl = (order.body.authorizations as string[])[0]!;
    const authz = await c.post(authzUrl, "");
    const ch = (authz.body.challenges as { type: string; url: string; token: string }[]).find(
      (x) => x.type === "http-01",
    )!;
    keyAuthorization = `${ch.token}.${thumbprint}`;
    await c.post(ch.url, {});
    let status = "pending";
    for (let i = 0; i < 100 && status === "pending"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await c.post(authzUrl, "")).body.status as string;
    }
    expect(status).toBe("valid");
    expect((await c.post(order.location!, "")).body.status).toBe("ready");
  });
});
