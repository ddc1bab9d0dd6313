import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { startOidcLoginProvider, type OidcLoginProvider } from "./support/oidc-login-provider.js";
import { readPair } from "./support/pair-check.js";

/**
 * Interactive OIDC login (`auth.method: oidc`) against a real provider: authorization code with PKCE on
 * a loopback port chosen at run time, the "browser" launched by the agent (a script that fills in the
 * provider's login and consent pages), the ID token accepted by the real server — and on the next run
 * the cached refresh token used instead of a browser.
 */
const BROWSER = fileURLToPath(new URL("./support/fake-browser.mjs", import.meta.url));

describe("interactive OIDC login", () => {
  let op: OidcLoginProvider;
  let server: TestServer;
  beforeAll(async () => {
    op = await startOidcLoginProvider();
    server = await startTestServer({
      issuers: [{ issuerUrl: op.issuer, audience: op.clientId, kind: "oidc" }],
    });
  });
  afterAll(async () => {
    await server?.stop();
    await op?.close();
  });

  it("logs in through the browser once, then refreshes without it", async () => {
    const identity = await server.createIdentity({
      name: "alice",
      method: "jwt",
      binding: { issuer: op.issuer, subject: "alice" },
      grants: ["alice.example.com"],
    });
    const { dir, path } = await writeAgentConfig({});
    const config = (browser: string[]) => ({
      api: { url: server.url, ca_bundle: server.caFile, uuid: identity.id },
      auth: {
        method: "oidc",
        issuer: op.issuer,
        client_id: op.clientId,
        browser,
        token_cache: "tokens.json",
        login_timeout: "20s",
      },
      state_dir: "state",
      certificates: [
        {
          name: "me",
          domains: ["alice.example.com"],
          outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
        },
      ],
    });
    await writeAgentConfig(config([process.execPath, BROWSER]), dir);
    const env = { FAKE_BROWSER_LOG: join(dir, "browser.log"), FAKE_BROWSER_LOGIN: "alice" };

    const first = await runAgent(["agent", "--config", path, "--once"], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`Log in to continue. If no browser opens, visit:\n  ${op.issuer}/auth?`);
    const browserLog = await readFile(join(dir, "browser.log"), "utf8");
    expect(browserLog).toMatch(/code_challenge_method=S256/);
    expect(browserLog).toMatch(/callback 200 http:\/\/127\.0\.0\.1:\d+/);
    expect(op.grants).toEqual(["authorization_code"]);
    expect((await readPair(join(dir, "cert.pem"), join(dir, "key.pem"))).matches).toBe(true);
    expect((await stat(join(dir, "tokens.json"))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(dir, "tokens.json"), "utf8")).refresh_token).toEqual(
      expect.any(String),
    );

    // A browser that cannot start: the run succeeds only because the refresh token is reused.
    await writeAgentConfig(config(["/nonexistent/browser"]), dir);
    const second = await runAgent(["agent", "--config", path, "--once"], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain("Log in to continue");
    expect(op.grants).toEqual(["authorization_code", "refresh_token"]);
    expect(await readFile(join(dir, "browser.log"), "utf8")).toBe(browserLog);
  });
});
