import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { startOidcTokenEndpoint } from "../harness/metadata-servers/oidc-token-endpoint.js";
import { startSpiffeWorkloadApi, type SpiffeWorkloadApi } from "../harness/spiffe-workload-api.js";
import { fixtureText } from "./seed-support.js";

/**
 * Zaita Courier's agent configs (seeds/001) run as written by `certfleet agent` (the built bin): each
 * has only `api` / `auth` — no server URL, no certificate list. The server URL comes from
 * $CERTFLEET_URL, the identity records come from `certfleet identity import` (keeping the Courier UUIDs
 * and the existing client id / secret), and the agent installs what its record is assigned under the
 * default layout <certs dir>/<name>/{cert,chain,fullchain,key}.pem. Only ids, secrets, host names and
 * ports are replaced in the fixtures.
 */

const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;
const ADMIN_KEY = "courier-admin-key-0123456789abcdef";
const SECRET_UUID = "0b6c7a52-3f4e-4d0a-9a51-6c1f2d3e4a01";
const OIDC_UUID = "0b6c7a52-3f4e-4d0a-9a51-6c1f2d3e4a02";
const SPIFFE_UUID = "0b6c7a52-3f4e-4d0a-9a51-6c1f2d3e4a03";
const CLIENT_ID = "cour_7f3a9c2e1b4d";
const CLIENT_SECRET = "zaita-existing-secret-5f1e2d3c4b5a";
const SPIFFE_ID = "spiffe://example.org/courier/edge-1";

function run(args: string[], env: Record<string, string>, timeout = 60_000) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: tmpdir(), ...env }, timeout },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("Zaita Courier configs against certfleet serve + certfleet agent", () => {
  let dir: string;
  let cf: CertfleetProcess;
  let idp: JwksIssuer;
  let spiffeKeys: JwksIssuer;
  let workloadApi: SpiffeWorkloadApi;
  let tokenEndpoint: Awaited<ReturnType<typeof startOidcTokenEndpoint>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-courier-"));
    [idp, spiffeKeys] = await Promise.all([startJwksIssuer(), startJwksIssuer()]);
    tokenEndpoint = await startOidcTokenEndpoint(({ resource, clientId }) =>
      idp.sign({ sub: `courier-edge-2`, aud: resource ?? "", azp: clientId ?? undefined }),
    );
    workloadApi = await startSpiffeWorkloadApi(async ({ audience }) => [
      {
        spiffe_id: SPIFFE_ID,
        svid: await spiffeKeys.sign({ sub: SPIFFE_ID, aud: audience, iss: undefined }),
      },
    ]);
    const config = {
      server: { bind: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      logging: { level: "info" },
      auth: {
        apiKeys: [{ name: "admin", key: ADMIN_KEY, admin: true, grants: [] }],
        issuers: [
          { issuerUrl: idp.issuerUrl, audience: "api://zaita-courier" },
          {
            kind: "spiffe",
            trustDomain: "example.org",
            bundleEndpointUrl: spiffeKeys.bundleUrl,
            audience: "certfleet",
          },
        ],
      },
    };
    // the Courier records, imported before the server starts, keeping their UUIDs and client secret
    await writeFile(join(dir, "certfleet.yaml"), stringify(config));
    await writeFile(
      join(dir, "couriers.yaml"),
      stringify({
        identities: [
          {
            id: SECRET_UUID,
            name: "edge-1",
            method: "client_secret",
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            grants: ["web.example.com", "*.api.example.com"],
            certificates: [
              { name: "web", domains: ["web.example.com"] },
              { name: "api", domains: ["*.api.example.com"], keyType: "ec384" },
            ],
          },
          {
            id: OIDC_UUID,
            name: "edge-2",
            method: "jwt",
            binding: { issuer: idp.issuerUrl, subject: "courier-edge-2" },
            grants: ["edge2.example.com"],
            certificates: [{ name: "edge2", domains: ["edge2.example.com"] }],
          },
        ],
      }),
    );
    const imported = await run(
      ["identity", "import", join(dir, "couriers.yaml"), "--config", join(dir, "certfleet.yaml"), "--json"],
      {},
    );
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout).map((r: { id: string }) => r.id)).toEqual([SECRET_UUID, OIDC_UUID]);
    cf = await startCertfleet({ config, dataDir: dir });
  }, 120_000);

  afterAll(async () => {
    await cf?.stop();
    await workloadApi?.close();
    await tokenEndpoint?.close();
    await Promise.all([idp?.close(), spiffeKeys?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** Write a fixture as the agent's config (ids / secrets / hosts replaced) and run `agent --once --json`. */
  async function courier(
    name: string,
    fixture: string,
    replacements: Record<string, string>,
    env: Record<string, string> = {},
  ) {
    const home = join(dir, "agents", name);
    await mkdir(home, { recursive: true });
    const path = join(home, "courier.yaml");
    await writeFile(path, await fixtureText(`courier/${fixture}`, replacements));
    const result = await run(["agent", "--config", path, "--once", "--json"], {
      CERTFLEET_URL: cf.url,
      CERTFLEET_STATE_DIR: join(home, "state"),
      CERTFLEET_CERTS_DIR: join(home, "certs"),
      NODE_EXTRA_CA_CERTS: join(cf.dataDir, "ca.pem"),
      ...env,
    });
    return { ...result, certs: join(home, "certs") };
  }

  async function expectInstalled(certsDir: string, name: string, names: string[]) {
    const files = join(certsDir, name);
    const certPem = await readFile(join(files, "cert.pem"), "utf8");
    const leaf = new X509Certificate(certPem);
    expect(leaf.subjectAltName?.split(", ").sort()).toEqual(names.map((n) => `DNS:${n}`).sort());
    const key = createPrivateKey(await readFile(join(files, "key.pem"), "utf8"));
    expect(createPublicKey(key).export({ format: "der", type: "spki" })).toEqual(
      leaf.publicKey.export({ format: "der", type: "spki" }),
    );
    const chain = await readFile(join(files, "chain.pem"), "utf8");
    expect(await readFile(join(files, "fullchain.pem"), "utf8")).toBe(certPem + chain);
    expect((await stat(join(files, "key.pem"))).mode & 0o777).toBe(0o600);
    return { leaf, key };
  }

  it("client_secret as written: the imported id and secret work, and the record's assignment is installed", async () => {
    const r = await courier("edge-1", "client-secret.yaml", {
      "your-courier-uuid": SECRET_UUID,
      cour_your_client_id: CLIENT_ID,
      your_client_secret: CLIENT_SECRET,
    });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.certificates.map((c: { name: string; ok: boolean }) => [c.name, c.ok]).sort()).toEqual([
      ["api", true],
      ["web", true],
    ]);
    await expectInstalled(r.certs, "web", ["web.example.com"]);
    const api = await expectInstalled(r.certs, "api", ["*.api.example.com"]);
    expect(api.key.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
  });

  it("client_secret with ${ZAITA_CLIENT_ID} / ${ZAITA_CLIENT_SECRET} from the environment", async () => {
    const r = await courier(
      "edge-1-env",
      "client-secret-env.yaml",
      { "your-courier-uuid": SECRET_UUID },
      { ZAITA_CLIENT_ID: CLIENT_ID, ZAITA_CLIENT_SECRET: CLIENT_SECRET },
    );
    expect(r.code, r.stderr).toBe(0);
    await expectInstalled(r.certs, "web", ["web.example.com"]);
  });

  it("a wrong secret: auth exit code, and the on_failure hook runs", async () => {
    const marker = join(dir, "hook-ran");
    const hook = join(dir, "alert_auth_failure.sh");
    await writeFile(hook, `#!/bin/sh\necho "$CERTFLEET_AUTH_METHOD" > ${marker}\n`, { mode: 0o755 });
    const r = await courier("edge-1-bad", "on-failure.yaml", {
      "your-courier-uuid": SECRET_UUID,
      cour_your_client_id: CLIENT_ID,
      your_client_secret: "not-the-secret-0123456789",
      "/usr/local/bin/alert_auth_failure.sh": hook,
    });
    expect(r.code).toBe(3);
    expect((await readFile(marker, "utf8")).trim()).toBe("client_secret");
  });

  it("oidc_jwt as written: GET token_endpoint?resource&client_id, the imported jwt record's assignment", async () => {
    const r = await courier("edge-2", "oidc-jwt.yaml", {
      "your-courier-uuid": OIDC_UUID,
      "https://your-idp.example.com/token": tokenEndpoint.tokenUrl,
    });
    expect(r.code, r.stderr).toBe(0);
    await expectInstalled(r.certs, "edge2", ["edge2.example.com"]);
    const call = tokenEndpoint.requests.at(-1)!;
    expect(call.url.searchParams.get("resource")).toBe("api://zaita-courier");
    expect(call.url.searchParams.get("client_id")).toBe("courier-client");
  });

  it("spiffe as written (api.uuid): a record imported through the admin API, assignment set there", async () => {
    const imported = await cf.post(
      "/api/admin/identities/import",
      {
        identities: [
          {
            id: SPIFFE_UUID,
            name: "edge-3",
            method: "spiffe",
            binding: { spiffeId: SPIFFE_ID },
            grants: [".svc.example.com"],
          },
        ],
      },
      { apiKey: ADMIN_KEY },
    );
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    const refused = await call("PUT", `/api/admin/identities/${SPIFFE_UUID}/certificates`, {
      certificates: [{ name: "other", domains: ["other.example.net"] }],
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("assignment_not_granted");
    const assigned = await call("PUT", `/api/admin/identities/${SPIFFE_UUID}/certificates`, {
      certificates: [{ name: "mesh", domains: ["a.svc.example.com", "b.svc.example.com"] }],
    });
    expect(assigned.status).toBe(200);

    const r = await courier("edge-3", "spiffe.yaml", {
      "your-courier-uuid": SPIFFE_UUID,
      "unix:///tmp/spire-agent/public/api.sock": workloadApi.address,
    });
    expect(r.code, r.stderr).toBe(0);
    await expectInstalled(r.certs, "mesh", ["a.svc.example.com", "b.svc.example.com"]);
    expect(workloadApi.calls.at(-1)!.hadSecurityHeader).toBe(true);
  });

  it("an identity without an assignment gets an empty list, an unauthenticated caller a 401", async () => {
    const list = await cf.get("/api/assigned-certificates");
    expect(list.status).toBe(401);
    const apiKeyList = await call("GET", "/api/assigned-certificates");
    expect(apiKeyList.status).toBe(200);
    expect(apiKeyList.body).toEqual({ certificates: [] });
  });

  it("an import that reuses an existing UUID is refused with identity_conflict", async () => {
    const again = await cf.post(
      "/api/admin/identities/import",
      {
        identities: [
          { id: SECRET_UUID, name: "dup", method: "jwt", binding: { issuer: idp.issuerUrl, subject: "x" } },
        ],
      },
      { apiKey: ADMIN_KEY },
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("identity_conflict");
  });

  async function call(method: string, path: string, body?: unknown) {
    const { Agent, fetch } = await import("undici");
    const dispatcher = new Agent({ connect: { ca: cf.caPem } });
    try {
      const res = await fetch(cf.url + path, {
        method,
        dispatcher,
        headers: {
          authorization: `APIKey ${ADMIN_KEY}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    } finally {
      await dispatcher.close();
    }
  }
});
