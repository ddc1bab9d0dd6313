import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertfleet, type Certfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { createDnsProviderRegistry } from "../../src/dns/providers/index.js";
import { describeDnsProviders, REDACTED } from "../../src/server/routes/admin.js";

/**
 * The admin API's read-only views (certificates, DNS providers) and the dashboard's static files,
 * through the real composition root (SQLite, embedded CA, API keys), answered with `inject`.
 */
const ADMIN_KEY = "admin-key-views-0123456789abcdef-0123";
const ISSUER_KEY = "issuer-key-views-0123456789abcdef-012";
const CF_TOKEN = "cf-token-that-must-never-be-shown-4242";
const root = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

describe("admin API: certificates and DNS providers", () => {
  let cf: Certfleet;
  let dir: string;

  const get = (url: string, key?: string) =>
    cf.app.inject({ method: "GET", url, headers: key ? { authorization: `APIKey ${key}` } : {} });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-admin-views-"));
    const config = resolveConfig(
      parseConfig({
        dataDir: dir,
        server: { bind: "127.0.0.1", port: 0, insecureHttp: true },
        auth: {
          apiKeys: [
            { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
            { name: "issuer", key: ISSUER_KEY, grants: ["*.views.example.com"] },
          ],
        },
        dns: {
          providers: [
            {
              id: "cf",
              type: "cloudflare",
              zones: ["views.example.com"],
              propagationTimeout: "30s",
              config: { apiToken: CF_TOKEN, zoneId: "zone-123" },
            },
          ],
        },
      }),
    );
    cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  });

  afterAll(async () => {
    await cf?.app.close();
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("need the admin permission: 401 without a credential, 403 for a non-admin key", async () => {
    for (const url of ["/api/admin/certificates", "/api/admin/dns-providers"]) {
      const anonymous = await get(url);
      expect(anonymous.statusCode).toBe(401);
      const limited = await get(url, ISSUER_KEY);
      expect(limited.statusCode).toBe(403);
      expect(limited.json().error.code).toBe("admin_required");
      expect((await get(url, ADMIN_KEY)).statusCode).toBe(200);
    }
  });

  it("lists certificates with metadata and the last failure, never PEM bodies or keys", async () => {
    const issued = await cf.app.inject({
      method: "POST",
      url: "/api/certificate",
      headers: { authorization: `APIKey ${ISSUER_KEY}` },
      payload: { domains: ["a.views.example.com", "b.views.example.com"] },
    });
    expect(issued.statusCode).toBe(200);
    const cert = issued.json();

    const res = await get("/api/admin/certificates", ADMIN_KEY);
    expect(res.body).not.toContain("BEGIN");
    const listed = res.json().certificates.find((c: any) => c.serial === cert.serial);
    expect(Object.keys(listed).sort()).toEqual(
      [
        "consecutiveFailures",
        "custody",
        "id",
        "issuer",
        "issuerId",
        "keyType",
        "lastError",
        "lastFailure",
        "names",
        "notAfter",
        "notBefore",
        "owner",
        "renewAt",
        "revocation",
        "serial",
        "status",
        "version",
      ].sort(),
    );
    expect(listed).toMatchObject({
      names: ["a.views.example.com", "b.views.example.com"],
      issuerId: "embedded",
      custody: "server",
      notAfter: cert.notAfter,
      renewAt: cert.renewAt,
      lastFailure: null,
    });

    const at = new Date("2030-01-02T03:04:05.000Z");
    await cf.storage.certificates.recordFailure(listed.id, {
      code: "dns_timeout",
      message: "TXT record not visible",
      at,
      failureCount: 3,
      nextAttemptAt: new Date(at.getTime() + 3_600_000),
    });
    const after = (await get("/api/admin/certificates", ADMIN_KEY))
      .json()
      .certificates.find((c: any) => c.id === listed.id);
    expect(after.lastFailure).toEqual({
      code: "dns_timeout",
      message: "TXT record not visible",
      at: "2030-01-02T03:04:05.000Z",
      failureCount: 3,
      nextAttemptAt: "2030-01-02T04:04:05.000Z",
    });
  });

  it("shows the configured DNS providers with their secret fields redacted", async () => {
    const res = await get("/api/admin/dns-providers", ADMIN_KEY);
    expect(res.body).not.toContain(CF_TOKEN);
    expect(res.json().providers).toEqual([
      {
        id: "cf",
        type: "cloudflare",
        zones: ["views.example.com"],
        propagationTimeoutMs: 30_000,
        propagationIntervalMs: null,
        source: "dns.providers.0",
        config: { apiToken: REDACTED, zoneId: "zone-123" },
      },
    ]);
  });
});

describe("describeDnsProviders", () => {
  const registry = createDnsProviderRegistry();
  const base = { zones: [], path: "dns.providers.0" };

  it("redacts every field each registered provider marks secret, and keeps the others", () => {
    for (const def of registry.list()) {
      const config: Record<string, unknown> = { notSecret: "visible" };
      for (const field of def.secretFields) config[field] = `s3cret-${def.id}-${field}`;
      const [view] = describeDnsProviders([{ ...base, id: def.id, type: def.id, config }], registry);
      expect(JSON.stringify(view), def.id).not.toContain("s3cret-");
      for (const field of def.secretFields) expect(view!.config[field], `${def.id}.${field}`).toBe(REDACTED);
      expect(view!.config.notSecret).toBe("visible");
    }
  });

  it("maps lego-style credentials first (aliases and unknown variables included), then redacts", () => {
    const [view] = describeDnsProviders(
      [
        {
          ...base,
          id: "letsencrypt-dns",
          type: "cf",
          config: {},
          legoEnv: { CF_DNS_API_TOKEN: "lego-token", CF_API_EMAIL: "ops@example.com", OTHER_SECRET: "x1" },
          path: "letsEncrypt.dnsProvider",
        },
      ],
      registry,
    );
    expect(view).toMatchObject({
      type: "cloudflare",
      config: { apiToken: REDACTED, apiEmail: "ops@example.com" },
    });
    expect(JSON.stringify(view)).not.toMatch(/lego-token|x1/);
  });

  it("shows no config for a provider it does not know", () => {
    const [view] = describeDnsProviders(
      [{ ...base, id: "x", type: "nope", config: { token: "t0ken" } }],
      registry,
    );
    expect(view!.config).toEqual({});
  });
});

describe("dashboard files", () => {
  let cf: Certfleet;
  let dir: string;
  const csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-dashboard-files-"));
    const config = resolveConfig(
      parseConfig({
        dataDir: dir,
        server: { bind: "127.0.0.1", port: 0, insecureHttp: true },
        auth: { apiKeys: [{ name: "admin", key: ADMIN_KEY, admin: true }] },
      }),
    );
    cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  });

  afterAll(async () => {
    await cf?.app.close();
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the three files with strict headers and their types; /dashboard redirects", async () => {
    const types = {
      "/dashboard/": "text/html",
      "/dashboard/app.js": "text/javascript",
      "/dashboard/app.css": "text/css",
    };
    for (const [url, type] of Object.entries(types)) {
      const res = await cf.app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-type"]).toContain(type);
      expect(res.headers).toMatchObject({
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
      });
    }
    const bare = await cf.app.inject({ method: "GET", url: "/dashboard" });
    expect(bare.statusCode).toBe(302);
    expect(bare.headers.location).toBe("/dashboard/");
    expect(bare.headers["content-security-policy"]).toBe(csp);
    expect((await cf.app.inject({ method: "GET", url: "/dashboard/secrets.txt" })).statusCode).toBe(404);
  });

  it("has no inline script or style, and never writes HTML from data", async () => {
    const dash = join(root, "src/server/dashboard");
    const html = await readFile(join(dash, "index.html"), "utf8");
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="app.js">']);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    const js = await readFile(join(dash, "app.js"), "utf8");
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });
});

describe("dashboard packaging (scripts/copy-assets.mjs)", () => {
  it("copies the dashboard files into the build output unchanged", async () => {
    const out = await mkdtemp(join(tmpdir(), "cf-dashboard-assets-"));
    try {
      await run(process.execPath, [join(root, "scripts/copy-assets.mjs"), out]);
      for (const file of ["index.html", "app.js", "app.css"]) {
        const rel = join("server/dashboard", file);
        expect(await readFile(join(out, rel), "utf8"), rel).toBe(
          await readFile(join(root, "src", rel), "utf8"),
        );
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("refuses a .js asset that would overwrite a compiled module", async () => {
    const tree = await mkdtemp(join(tmpdir(), "cf-assets-clash-"));
    try {
      await mkdir(join(tree, "scripts"));
      await mkdir(join(tree, "src/web"), { recursive: true });
      await copyFile(join(root, "scripts/copy-assets.mjs"), join(tree, "scripts/copy-assets.mjs"));
      await writeFile(join(tree, "src/web/page.js"), "export {};\n");
      await writeFile(join(tree, "src/web/other.css"), "p {}\n");
      const ok = await run(process.execPath, [join(tree, "scripts/copy-assets.mjs"), join(tree, "out")]);
      expect(ok.stdout).toContain("2 file(s)");

      await writeFile(join(tree, "src/web/page.ts"), "export {};\n");
      const clash = run(process.execPath, [join(tree, "scripts/copy-assets.mjs"), join(tree, "out2")]);
      await expect(clash).rejects.toMatchObject({ code: 1 });
      await expect(clash).rejects.toHaveProperty(
        "stderr",
        expect.stringContaining("src/web/page.js would overwrite the output of src/web/page.ts"),
      );
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });
});
