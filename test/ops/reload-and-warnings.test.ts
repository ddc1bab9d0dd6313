import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { restartOnlyChanges } from "../../src/server/reloadable.js";
import { startCertfleet } from "../harness/certfleet-process.js";

/**
 * What SIGHUP can and cannot apply is told truthfully, start-up warnings fire only when they matter,
 * and the docs say the same as the code.
 */
const resolve = (raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  resolveConfig(parseConfig(raw, env), "/srv/certfleet");
const root = new URL("../../", import.meta.url).pathname;

describe("acmeServer.externalUrl warning", () => {
  it("is silent on a default start, where each client's Host header is the right base", () => {
    expect(resolve({}).warnings.map((w) => w.path)).not.toContain("acmeServer.externalUrl");
  });

  it("fires behind a proxy (server.trustProxy) and names the key", () => {
    const warnings = resolve({ server: { trustProxy: ["10.0.0.0/8"] } }).warnings;
    expect(warnings.find((w) => w.path === "acmeServer.externalUrl")?.message).toMatch(/trustProxy/);
    const set = resolve({
      server: { trustProxy: ["10.0.0.0/8"] },
      acmeServer: { externalUrl: "https://ca.example.net" },
    });
    expect(set.warnings.map((w) => w.path)).not.toContain("acmeServer.externalUrl");
  });

  it("is not printed by a real `certfleet serve` on its defaults", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certfleet-defaults-"));
    const cf = await startCertfleet({ dataDir: dir });
    try {
      expect(cf.stdout()).toMatch(/listening on/);
      expect(cf.stderr()).not.toMatch(/externalUrl/);
    } finally {
      await cf.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("SIGHUP: restart-only settings are named, never silently ignored", () => {
  const base = resolve({});
  it("notifications and ssh changes need a restart", () => {
    const next = resolve({
      notifications: {
        channels: [{ type: "slack", url: "https://hooks.example.net/x" }],
      },
      ssh: { user: { defaultValidity: "1h" } },
    });
    expect(restartOnlyChanges(base, next)).toEqual(
      expect.arrayContaining(["notifications.channels", "ssh.user"]),
    );
  });

  it("DNS providers (with some at start) and API keys are applied in place", () => {
    const dns = (command: string) => ({
      providers: [{ id: "d", type: "exec", config: { command } }],
    });
    const before = resolve({ dns: dns("/usr/local/bin/dns-a") });
    const next = resolve({
      auth: { apiKeys: [{ name: "k", key: "k-0123456789abcdef-0123456789abcdef", grants: ["*"] }] },
      dns: dns("/usr/local/bin/dns-b"),
    });
    expect(next.dns.providers[0]!.config).toMatchObject({ command: "/usr/local/bin/dns-b" });
    expect(restartOnlyChanges(before, next)).toEqual([]);
  });
});

describe("environment names in the docs", () => {
  it("CERTFLEET_DATABASE__ENCRYPTION_KEY_FILE sets the key file path, as docs/storage.md says", async () => {
    const config = resolve({}, { CERTFLEET_DATABASE__ENCRYPTION_KEY_FILE: "/run/secrets/master.key" });
    expect(config.storage.encryptionKeyFile).toBe("/run/secrets/master.key");
    expect(config.storage.encryptionKey).toBeUndefined();
    const storage = await readFile(join(root, "docs/storage.md"), "utf8");
    expect(storage).toMatch(/`CERTFLEET_DATABASE__ENCRYPTION_KEY_FILE`\), which holds the 32 raw bytes/);
  });

  it("README and docs/operations.md link to docs/notifications.md", async () => {
    expect(await readFile(join(root, "README.md"), "utf8")).toContain("(docs/notifications.md)");
    const ops = await readFile(join(root, "docs/operations.md"), "utf8");
    expect(ops).toContain("(notifications.md)");
    expect(ops).toContain("dns.providers (none at start)");
  });
});
