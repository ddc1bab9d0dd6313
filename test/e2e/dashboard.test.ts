import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertfleet, type Certfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";

/**
 * The admin dashboard in a real headless Chromium against a real certfleet (SQLite, embedded CA, HTTPS
 * on 127.0.0.1). The browser trusts the embedded CA the way an operator's would: the root is added to
 * the NSS database of a throwaway $HOME (Chromium on Linux reads ~/.pki/nssdb), so no TLS error is
 * ignored anywhere.
 */
const CHROMIUM = "/usr/bin/chromium";
const ADMIN_KEY = "admin-key-dashboard-0123456789abcdef-01";
const ISSUER_KEY = "issuer-key-dashboard-0123456789abcdef-0";
const CF_TOKEN = "cf-token-dashboard-never-shown-31337";
const HOSTILE = `<img src=x onerror="window.__xss=1">`;
const run = promisify(execFile);
/** The browser renders asynchronously: wait up to 15 s for a value to settle. */
const poll = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

interface Res {
  status: number;
  body: any;
}

describe("admin dashboard in headless Chromium", () => {
  let cf: Certfleet;
  let url: URL;
  let dir: string;
  let context: BrowserContext;
  let page: Page;
  let hostileId: string;
  let certificateName: string;

  function call(method: string, path: string, body?: unknown, key = ADMIN_KEY): Promise<Res> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: url.port,
          path,
          method,
          ca: cf.embeddedCa.rootPem,
          headers: {
            authorization: `APIKey ${key}`,
            ...(body !== undefined ? { "content-type": "application/json" } : {}),
          },
          timeout: 15_000,
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () =>
            resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  /** A $HOME whose NSS database trusts `caPem` for TLS servers; Chromium reads it from $HOME/.pki/nssdb. */
  async function homeTrusting(caPem: string): Promise<string> {
    const home = join(dir, "home");
    const nssdb = join(home, ".pki", "nssdb");
    await mkdir(nssdb, { recursive: true });
    await writeFile(join(dir, "ca.pem"), caPem);
    await run("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
    await run("certutil", [
      "-d",
      `sql:${nssdb}`,
      "-A",
      "-t",
      "C,,",
      "-n",
      "certfleet test CA",
      "-i",
      join(dir, "ca.pem"),
    ]);
    return home;
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps.sh (CI installs it)`);
    await run("certutil", ["-H"]).catch((e: { code?: unknown }) => {
      if (e.code === "ENOENT")
        throw new Error("certutil (libnss3-tools) is missing: run scripts/install-test-deps.sh");
    });

    dir = await mkdtemp(join(tmpdir(), "cf-dashboard-e2e-"));
    const config = resolveConfig(
      parseConfig({
        dataDir: dir,
        server: { bind: "127.0.0.1", port: 0 },
        auth: {
          apiKeys: [
            { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
            { name: "issuer", key: ISSUER_KEY, grants: ["*.dash.example.com"] },
          ],
        },
        // configured, never contacted: the embedded CA issues every certificate here
        dns: {
          providers: [
            {
              id: "cloudflare-main",
              type: "cloudflare",
              zones: ["dash.example.com"],
              config: { apiToken: CF_TOKEN, zoneId: "zone-dash" },
            },
          ],
        },
      }),
    );
    cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
    url = new URL((await cf.start()).url);

    certificateName = "web.dash.example.com";
    const issued = await call("POST", "/api/certificate", { domain: certificateName }, ISSUER_KEY);
    expect(issued.status).toBe(200);
    const created = await call("POST", "/api/admin/identities", {
      name: HOSTILE,
      method: "client_secret",
      grants: ["app.dash.example.com"],
    });
    expect(created.status).toBe(201);
    hostileId = created.body.id;

    const home = await homeTrusting(cf.embeddedCa.rootPem);
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      env: { ...process.env, HOME: home },
      viewport: { width: 1360, height: 820 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await cf?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const signIn = async (key: string) => {
    await page.locator("#login-scheme").selectOption("APIKey");
    await page.locator("#login-secret").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
  };

  it("is served over HTTPS the browser trusts, with the strict headers", async () => {
    const res = await page.goto(new URL("/dashboard/", url).href);
    expect(res?.status()).toBe(200);
    const headers = res!.headers();
    expect(headers["content-security-policy"]).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("no-referrer");
    expect(headers["cache-control"]).toBe("no-store");
    const security = await res!.securityDetails();
    expect(security?.subjectName).toBeTruthy();
    await poll(() => page.locator("#login").isVisible()).toBe(true);
  });

  it("a wrong key is refused with the API's code and message, and not kept", async () => {
    const wrong = "wrong-key-0123456789abcdef-0123456789";
    const api = await call("GET", "/api/admin/settings", undefined, wrong);
    expect(api.status).toBe(401);
    await signIn(wrong);
    const error = page.locator("#login-error");
    await poll(() => error.isVisible()).toBe(true);
    expect(await error.textContent()).toContain(`${api.body.error.code}: ${api.body.error.message}`);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);

    // a valid key without the admin permission: 403 admin_required, shown the same way
    await signIn(ISSUER_KEY);
    await poll(() => error.textContent()).toContain("admin_required");
    expect(await page.locator("#view").isVisible()).toBe(false);
  });

  it("the admin key lists the certificate issued through POST /api/certificate", async () => {
    await signIn(ADMIN_KEY);
    const row = page.locator("#view-body tr", { hasText: certificateName });
    await poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toMatch(/expires in \d+ days?/);
    expect(await row.textContent()).toContain("embedded");
    expect(await page.evaluate("sessionStorage.length")).toBe(1);

    // a failed renewal is highlighted with its code and message
    const id = (await call("GET", "/api/admin/certificates")).body.certificates[0].id;
    await cf.storage.certificates.recordFailure(id, {
      code: "dns_propagation_timeout",
      message: "TXT record not visible after 120 s",
      at: new Date(),
      failureCount: 2,
      nextAttemptAt: new Date(Date.now() + 3_600_000),
    });
    await page.getByRole("button", { name: "Refresh" }).click();
    await poll(() => row.getAttribute("class")).toBe("failed");
    expect(await row.locator(".failure").textContent()).toContain("dns_propagation_timeout");
  });

  it("shows a hostile identity name as text; its markup never runs", async () => {
    await page.getByRole("link", { name: "Identities" }).click();
    const name = page.locator("#view-body .identity-name", { hasText: HOSTILE });
    await poll(() => name.count()).toBe(1);
    expect(await name.textContent()).toBe(HOSTILE);
    expect(await page.locator("#view-body img").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
  });

  it("disabling an identity from the UI disables it in the admin API", async () => {
    expect((await call("GET", `/api/admin/identities/${hostileId}`)).body.enabled).toBe(true);
    await page.getByRole("button", { name: `Disable ${HOSTILE}` }).click();
    const row = page.locator(`#view-body tr[data-id="${hostileId}"]`);
    await poll(() => row.locator(".badge", { hasText: "disabled" }).count()).toBe(1);
    expect((await call("GET", `/api/admin/identities/${hostileId}`)).body.enabled).toBe(false);
  });

  it("shows DNS providers with their secret redacted, never the secret", async () => {
    await page.getByRole("link", { name: "DNS providers" }).click();
    const card = page.locator("#view-body article", { hasText: "cloudflare-main" });
    await poll(() => card.count()).toBe(1);
    expect(await card.locator(".redacted").textContent()).toBe("[redacted]");
    expect(await card.textContent()).toContain("zone-dash");
    expect(await page.content()).not.toContain(CF_TOKEN);
    await page.screenshot({ path: join(tmpdir(), "certfleet-dashboard-dns.png"), fullPage: true });
  });

  it("filters the audit log by type", async () => {
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.locator("#audit-type").fill("admin.identity.update");
    await page.getByRole("button", { name: "Filter" }).click();
    const rows = page.locator("#view-body tbody tr");
    await poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain(hostileId);
    await page.getByRole("link", { name: "Certificates" }).click();
    await poll(() => page.locator("#view-body tr", { hasText: certificateName }).count()).toBe(1);
    await page.screenshot({ path: join(tmpdir(), "certfleet-dashboard.png"), fullPage: true });
  });

  it("sign out forgets the credential", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await poll(() => page.locator("#login").isVisible()).toBe(true);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    await page.reload();
    await poll(() => page.locator("#login").isVisible()).toBe(true);
  });
});
