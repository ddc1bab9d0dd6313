import { mkdtemp, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertfleet, type Certfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { startOidcProvider, type OidcProviderHarness } from "../harness/oidc-provider.js";
import { createHash, X509Certificate } from "node:crypto";

/**
 * Authentication and authorization over HTTPS, through the whole server: a real OIDC provider
 * (oidc-provider, client-credentials grant), the admin API creating identity records, client secrets,
 * client certificates from the embedded CA over mTLS, the legacy switch, rate limiting and the audit log.
 */
const ADMIN_KEY = "admin-key-0123456789abcdef-0123456789";
const LIMITED_KEY = "limited-key-0123456789abcdef-012345678";

interface Res {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

describe("authentication over HTTPS", () => {
  let op: OidcProviderHarness;
  let cf: Certfleet;
  let url: URL;
  let dir: string;

  function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    tls: { cert?: string; key?: string } = {},
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: url.port,
          path,
          method,
          servername: "localhost",
          ca: cf.embeddedCa.rootPem,
          ...tls,
          headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () =>
            resolve({
              status: res.statusCode!,
              body: text ? JSON.parse(text) : undefined,
              headers: res.headers,
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
  const admin = (method: string, path: string, body?: unknown) =>
    call(method, path, body, { authorization: `APIKey ${ADMIN_KEY}` });
  const bearer = (token: string, domain: string) =>
    call("POST", "/api/certificate", { domain }, { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-auth-e2e-"));
    op = await startOidcProvider();
    const config = resolveConfig(
      parseConfig({
        dataDir: dir,
        server: { bind: "127.0.0.1", port: 0 },
        auth: {
          apiKeys: [
            { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
            { name: "limited", key: LIMITED_KEY, grants: ["*.limited.example.com"] },
          ],
          issuers: [
            {
              issuerUrl: op.issuer,
              audience: op.resource,
              requiredScopes: ["certificates:request"],
              jwksCooldownSeconds: 1,
            },
          ],
        },
      }),
    );
    cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
    url = new URL((await cf.start()).url);
  }, 60_000);

  afterAll(async () => {
    await cf?.stop();
    await op?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("admin is its own permission: no admin API without it, no certificates from it", async () => {
    const denied = await call("GET", "/api/admin/identities", undefined, {
      authorization: `APIKey ${LIMITED_KEY}`,
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("admin_required");
    const noGrant = await admin("POST", "/api/certificate", { domain: "a.example.com" });
    expect(noGrant.status).toBe(403);
    expect(noGrant.body.error.code).toBe("domain_not_granted");
  });

  it("an API key gets only its granted names", async () => {
    const ok = await call(
      "POST",
      "/api/certificate",
      { domain: "x.limited.example.com" },
      { authorization: `APIKey ${LIMITED_KEY}` },
    );
    expect(ok.status).toBe(200);
    const refused = await call(
      "POST",
      "/api/certificate",
      { domain: "x.other.example.com" },
      { authorization: `APIKey ${LIMITED_KEY}` },
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({
      code: "domain_not_granted",
      details: { names: ["x.other.example.com"] },
    });
  });

  it("a real OIDC provider's token gets the names of its identity record, and nothing else", async () => {
    const created = await admin("POST", "/api/admin/identities", {
      name: "fleet-agent",
      method: "jwt",
      binding: { issuer: op.issuer, subject: op.clientId },
      grants: ["*.fleet.example.com"],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const token = await op.getToken({ scope: "certificates:request" });
    const ok = await bearer(token, "web.fleet.example.com");
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.certificate).toContain("BEGIN CERTIFICATE");
    expect((await bearer(token, "web.other.example.com")).body.error.code).toBe("domain_not_granted");
  });

  it("refuses a token without the required scope, or for another audience", async () => {
    const noScope = await op.getToken({});
    expect((await bearer(noScope, "web.fleet.example.com")).status).toBe(401);
    const otherAudience = await op.getToken({ resource: op.otherResource, scope: "certificates:request" });
    const res = await bearer(otherAudience, "web.fleet.example.com");
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthenticated");
  });

  it("client id/secret: shown once, works, rotates, and the legacy switch turns it off without a restart", async () => {
    const created = await admin("POST", "/api/admin/identities", {
      name: "legacy-box",
      method: "client_secret",
      grants: ["legacy.example.com"],
    });
    expect(created.status).toBe(201);
    const { clientSecret, binding } = created.body;
    expect(binding.clientId).toMatch(/^cour_/);
    expect(
      (await admin("GET", `/api/admin/identities/${created.body.id}`)).body.clientSecret,
    ).toBeUndefined();
    const basic = (secret: string) => ({
      authorization: "Basic " + Buffer.from(`${binding.clientId}:${secret}`).toString("base64"),
    });
    expect(
      (await call("POST", "/api/certificate", { domain: "legacy.example.com" }, basic(clientSecret))).status,
    ).toBe(200);

    const rotated = await admin("POST", `/api/admin/identities/${created.body.id}/rotate-secret`);
    expect(rotated.body.clientSecret).not.toBe(clientSecret);
    expect(
      (await call("POST", "/api/certificate", { domain: "legacy.example.com" }, basic(clientSecret))).status,
    ).toBe(401);
    expect(
      (
        await call(
          "POST",
          "/api/certificate",
          { domain: "legacy.example.com" },
          basic(rotated.body.clientSecret),
        )
      ).status,
    ).toBe(200);

    expect((await admin("PUT", "/api/admin/settings", { legacyMethodsEnabled: false })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // the switch is read with at most 1 s of caching
    const off = await call(
      "POST",
      "/api/certificate",
      { domain: "legacy.example.com" },
      basic(rotated.body.clientSecret),
    );
    expect(off.status).toBe(401);
    const audit = await admin("GET", "/api/admin/audit?type=auth.deny&limit=20");
    expect(audit.body.events.some((e: any) => e.reason?.includes("legacy_method_disabled"))).toBe(true);
    await admin("PUT", "/api/admin/settings", { legacyMethodsEnabled: true });
    await new Promise((r) => setTimeout(r, 1100));
    expect(
      (
        await call(
          "POST",
          "/api/certificate",
          { domain: "legacy.example.com" },
          basic(rotated.body.clientSecret),
        )
      ).status,
    ).toBe(200);
  });

  it("mTLS with a client certificate from the embedded CA, bound by fingerprint", async () => {
    const keyPem = await generatePrivateKey("ec256");
    const { createPublicKey } = await import("node:crypto");
    const client = await cf.embeddedCa.issueClientCertificate({
      subjectCn: "node-17",
      publicKeyPem: createPublicKey(keyPem).export({ type: "spki", format: "pem" }).toString(),
      validityDays: 1,
    });
    const fingerprint = createHash("sha256").update(new X509Certificate(client.certPem).raw).digest("hex");
    const created = await admin("POST", "/api/admin/identities", {
      name: "node-17",
      method: "certificate",
      binding: { fingerprint },
      grants: ["node-17.example.com"],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const tls = { cert: client.certPem + client.chainPem, key: keyPem };
    const ok = await call("POST", "/api/certificate", { domain: "node-17.example.com" }, {}, tls);
    const why =
      ok.status === 200
        ? ""
        : JSON.stringify((await admin("GET", "/api/admin/audit?type=auth.deny&limit=3")).body.events);
    expect(ok.status, why).toBe(200);
    expect((await call("POST", "/api/certificate", { domain: "node-18.example.com" }, {}, tls)).status).toBe(
      403,
    );
    // disabling the record takes effect at once
    await admin("PATCH", `/api/admin/identities/${created.body.id}`, { enabled: false });
    expect((await call("POST", "/api/certificate", { domain: "node-17.example.com" }, {}, tls)).status).toBe(
      401,
    );
  });

  it("a session token stands in for the original proof", async () => {
    const session = await call("POST", "/api/session", undefined, { authorization: `APIKey ${LIMITED_KEY}` });
    expect(session.status).toBe(200);
    const res = await call(
      "POST",
      "/api/certificate",
      { domain: "s.limited.example.com" },
      { authorization: `Bearer ${session.body.token}` },
    );
    expect(res.status).toBe(200);
  });

  it("audits issuance and admin changes, with the detailed reasons kept out of responses", async () => {
    const audit = await admin("GET", "/api/admin/audit?limit=500");
    const types = new Set(audit.body.events.map((e: any) => e.type));
    for (const t of [
      "auth.allow",
      "auth.deny",
      "certificate.issued",
      "certificate.download",
      "admin.identity.create",
      "admin.identity.rotate_secret",
      "admin.settings.update",
    ]) {
      expect(types, t).toContain(t);
    }
  });
  it("rate limits failed authentications per source address (429 + Retry-After) and stays healthy", async () => {
    const statuses: number[] = [];
    let last: Res | undefined;
    for (let i = 0; i < 15; i++) {
      last = await call(
        "POST",
        "/api/certificate",
        { domain: "a.example.com" },
        { authorization: `APIKey wrong-key-${i}-0123456789abcdef` },
      );
      statuses.push(last.status);
    }
    expect(statuses).toContain(401);
    expect(statuses.at(-1)).toBe(429);
    expect(last!.body.error.code).toBe("auth_rate_limited");
    expect(Number(last!.headers["retry-after"])).toBeGreaterThan(0);
    expect((await call("GET", "/healthz")).status).toBe(200);
  });
});
