import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { startAuth0Tenant, type Auth0Tenant } from "../harness/metadata-servers/auth0-tenant.js";
import { startAzureImds } from "../harness/metadata-servers/azure-imds.js";
import { startGcpMetadata } from "../harness/metadata-servers/gcp-metadata.js";
import { json, startLoopbackHttp } from "../harness/metadata-servers/loopback-http.js";
import { fixtureText, fixtureYaml, outputJson, runScript, waitFor } from "./seed-support.js";

/**
 * le-cert-server's authentication document (seeds/000), run as written against `certfleet serve`:
 * its config blocks (test/fixtures/seeds/le-cert-server/*.yaml) and its client commands (*.sh, run
 * with bash, curl and jq), with only host names, ports and secrets replaced by loopback fakes of the
 * token services (an Auth0 tenant, Entra's IMDS, the GCE metadata server, tsiam). le-cert-server gives
 * a token that passes issuer, audience and scopes every name; so must its config shape here.
 */

const SERVER = "https://le-cert-server:8443";

async function serve(config: Record<string, unknown>): Promise<CertfleetProcess> {
  return startCertfleet({ config });
}

async function client(cf: CertfleetProcess, script: string, hosts: Record<string, string>) {
  const text = await fixtureText(`le-cert-server/${script}`, { [SERVER]: cf.url, ...hosts });
  const run = await runScript(text, { CURL_CA_BUNDLE: join(cf.dataDir, "ca.pem") });
  expect(run.code, run.stderr).toBe(0);
  return outputJson(run.stdout);
}

function expectCertificateFor(body: any, name: string) {
  expect(body.error).toBeUndefined();
  expect(body.domain).toBe(name);
  const leaf = new X509Certificate(body.certificate);
  expect(leaf.subjectAltName).toContain(`DNS:${name}`);
  expect(body.privateKey).toMatch(/BEGIN PRIVATE KEY/);
}

describe("le-cert-server: PSK", () => {
  let cf: CertfleetProcess;
  afterAll(() => cf?.stop());

  it("the PSK block and the curl call work as written, with the all-names warning", async () => {
    cf = await serve(await fixtureYaml("le-cert-server/psk.yaml"));
    expectCertificateFor(await client(cf, "psk-client.sh", {}), "example.com");
    expect(cf.stderr()).toMatch(/API key has no grants list/);
  });
});

describe("le-cert-server: auth.method selects one method", () => {
  let issuer: JwksIssuer;
  let cf: CertfleetProcess;
  beforeAll(async () => {
    issuer = await startJwksIssuer();
  });
  afterAll(async () => {
    await cf?.stop();
    await issuer?.close();
  });

  it("under method: jwt a psk block is not honoured, and the start-up log says so", async () => {
    const psk = (await fixtureYaml("le-cert-server/psk.yaml")).auth as Record<string, unknown>;
    const tsiam = (await fixtureYaml("le-cert-server/tsiam.yaml", {
      "https://tsiam.your-tailnet.ts.net": issuer.issuerUrl,
    })) as { auth: Record<string, unknown> };
    cf = await serve({ auth: { ...tsiam.auth, ...psk } });
    await waitFor("the ignored-block warning", () =>
      /auth\.psk: ignored: auth\.method is \\"jwt\\"/.test(cf.stderr()),
    );
    const refused = await client(cf, "psk-client.sh", {});
    expect(refused.error.code).toBe("unauthenticated");
    const token = await issuer.sign({ sub: "node-1", aud: "https://le-cert-server" });
    const ok = await cf.post(
      "/api/certificate",
      { domain: "example.com" },
      {
        headers: { authorization: `Bearer ${token}` },
        apiKey: "",
      },
    );
    expect(ok.status).toBe(200);
  });
});

describe("le-cert-server: Auth0 client credentials", () => {
  let tenant: Auth0Tenant;
  const servers: CertfleetProcess[] = [];
  beforeAll(async () => {
    tenant = await startAuth0Tenant({
      clients: {
        YOUR_CLIENT_ID: {
          secret: "YOUR_CLIENT_SECRET",
          apis: { "https://le-cert-server-api": ["request:certificates"] },
        },
        NO_SCOPE_CLIENT: { secret: "NO_SCOPE_SECRET", apis: { "https://le-cert-server-api": [] } },
      },
    });
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await tenant?.close();
  });

  it("as written (issuer without Auth0's trailing slash): one start-up line names both values and the fix", async () => {
    const origin = tenant.issuer.replace(/\/$/, "");
    const cf = await serve(
      await fixtureYaml("le-cert-server/auth0.yaml", { "https://your-tenant.auth0.com": origin }),
    );
    servers.push(cf);
    await waitFor("the issuer advice", () => cf.stderr().includes(`set issuerUrl to \\"${tenant.issuer}\\"`));
    const line = cf
      .stderr()
      .split("\n")
      .find((l) => l.includes("set issuerUrl to"))!;
    expect(line).toContain(`issuerUrl is \\"${origin}\\"`);
    expect(line).toContain("jwt_discovery_issuer_mismatch");
    const refused = await client(cf, "auth0-client.sh", { "https://your-tenant.auth0.com": origin });
    expect(refused.error.code).toBe("unauthenticated");
  });

  it("with the issuer written as Auth0 publishes it, the client-credentials recipe obtains any name", async () => {
    const origin = tenant.issuer.replace(/\/$/, "");
    const config = await fixtureYaml("le-cert-server/auth0.yaml", {
      "https://your-tenant.auth0.com": tenant.issuer,
    });
    const cf = await serve(config);
    servers.push(cf);
    const hosts = { "https://your-tenant.auth0.com": origin };
    expectCertificateFor(await client(cf, "auth0-client.sh", hosts), "example.com");
    expect(cf.stderr()).toMatch(/every valid token may obtain certificates for every name/);
    const tokenRequests = tenant.requests.filter((r) => r.url.pathname === "/oauth/token");
    expect(JSON.parse(tokenRequests.at(-1)!.body)).toMatchObject({
      audience: "https://le-cert-server-api",
      grant_type: "client_credentials",
    });
    // requiredScopes still bind: a client not granted request:certificates is refused
    const noScope = await client(cf, "auth0-client.sh", {
      ...hosts,
      YOUR_CLIENT_ID: "NO_SCOPE_CLIENT",
      YOUR_CLIENT_SECRET: "NO_SCOPE_SECRET",
    });
    expect(noScope.error.code).toBe("unauthenticated");
  });
});

describe("le-cert-server: platform identities (Entra managed identity, GCP, tsiam)", () => {
  let entra: JwksIssuer;
  let google: JwksIssuer;
  let tsiam: JwksIssuer;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    entra = await startJwksIssuer({ path: "/YOUR_TENANT_ID/v2.0", algs: ["RS256"] });
    google = await startJwksIssuer({ algs: ["RS256"] });
    tsiam = await startJwksIssuer();
    closers.push(
      () => entra.close(),
      () => google.close(),
      () => tsiam.close(),
    );
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  it("Entra: the managed-identity token from IMDS obtains the certificate", async () => {
    const imds = await startAzureImds(({ resource }) =>
      entra.sign({ sub: "5f0c3d6e-mi", oid: "5f0c3d6e-mi", tid: "YOUR_TENANT_ID", aud: resource }),
    );
    closers.push(() => imds.close());
    const hosts = {
      "https://login.microsoftonline.com": entra.issuerUrl.replace("/YOUR_TENANT_ID/v2.0", ""),
    };
    const cf = await serve(await fixtureYaml("le-cert-server/entra.yaml", hosts));
    closers.push(() => cf.stop());
    const body = await client(cf, "entra-client.sh", { ...hosts, "http://169.254.169.254": imds.origin });
    expectCertificateFor(body, "example.com");
    expect(imds.requests[0]!.headers.metadata).toBe("true");
  });

  it("Entra app-only tokens carry roles: requiredScopes reads them with scopeClaims [scp, roles]", async () => {
    const hosts = {
      "https://login.microsoftonline.com": entra.issuerUrl.replace("/YOUR_TENANT_ID/v2.0", ""),
    };
    const config = (await fixtureYaml("le-cert-server/entra.yaml", hosts)) as {
      auth: Record<string, unknown>;
    };
    const cf = await serve({
      auth: { ...config.auth, requiredScopes: ["Certificates.Request"], scopeClaims: ["scp", "roles"] },
    });
    closers.push(() => cf.stop());
    const call = async (claims: Record<string, unknown>) => {
      const token = await entra.sign({ sub: "app-1", aud: "YOUR_APP_CLIENT_ID", ...claims });
      return cf.post(
        "/api/certificate",
        { domain: "example.com" },
        { apiKey: "", headers: { authorization: `Bearer ${token}` } },
      );
    };
    expect((await call({ roles: ["Certificates.Request"] })).status).toBe(200);
    expect((await call({ scp: "Certificates.Request" })).status).toBe(200);
    expect((await call({ roles: ["Other.Role"] })).status).toBe(401);
  });

  it("GCP: the identity token from the metadata server obtains the certificate", async () => {
    const metadata = await startGcpMetadata(({ audience }) =>
      google.sign({ sub: "110248495921238986420", aud: audience, azp: "110248495921238986420" }),
    );
    closers.push(() => metadata.close());
    const cf = await serve(
      await fixtureYaml("le-cert-server/gcp.yaml", { "https://accounts.google.com": google.issuerUrl }),
    );
    closers.push(() => cf.stop());
    const body = await client(cf, "gcp-client.sh", { "http://metadata.google.internal": metadata.origin });
    expectCertificateFor(body, "example.com");
    expect(metadata.requests[0]!.url.pathname).toBe(
      "/computeMetadata/v1/instance/service-accounts/default/identity",
    );
  });

  it("tsiam: auth.method jwt with an auth.jwt block, token from tsiam's /token", async () => {
    const endpoint = await startLoopbackHttp(async (req, res) => {
      if (req.method !== "POST" || req.url.pathname !== "/token" || req.headers["x-tsiam"] !== "1")
        return json(res, 400, { error: "invalid_request" });
      const resource = req.url.searchParams.get("resource")!;
      json(res, 200, { access_token: await tsiam.sign({ sub: "traefik-1.tailnet", aud: resource }) });
    });
    closers.push(() => endpoint.close());
    const cf = await serve(
      await fixtureYaml("le-cert-server/tsiam.yaml", {
        "https://tsiam.your-tailnet.ts.net": tsiam.issuerUrl,
      }),
    );
    closers.push(() => cf.stop());
    const body = await client(cf, "tsiam-client.sh", { "https://tsiam/": `${endpoint.origin}/` });
    expectCertificateFor(body, "example.com");
    expect(endpoint.requests[0]!.url.searchParams.get("resource")).toBe("https://le-cert-server");
  });

  it("scopes come from scope, then scopes (a list or a space-separated string)", async () => {
    const cf = await serve(
      await fixtureYaml("le-cert-server/jwt-basic.yaml", {
        "https://your-auth-provider.com": tsiam.issuerUrl,
      }),
    );
    closers.push(() => cf.stop());
    const call = async (claims: Record<string, unknown>) => {
      const token = await tsiam.sign({ sub: "svc", aud: "your-api-audience", ...claims });
      return cf.post(
        "/api/certificate",
        { domain: "any.example.net" },
        { apiKey: "", headers: { authorization: `Bearer ${token}` } },
      );
    };
    expect((await call({ scope: "read:certificates write:certificates" })).status).toBe(200);
    expect((await call({ scopes: ["read:certificates", "write:certificates"] })).status).toBe(200);
    expect((await call({ scopes: "read:certificates write:certificates" })).status).toBe(200);
    const missing = await call({ scopes: ["read:certificates"] });
    expect(missing.status).toBe(401);
  });
});
