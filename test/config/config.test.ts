import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ENV_PREFIX, envNameForPath } from "../../src/config/env.js";
import { loadConfigFile, parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING } from "../../src/config/schema.js";
import { ConfigError } from "../../src/core/errors.js";

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config file", () => {
  it("an empty config is the embedded default", () => {
    const c = resolveConfig(parseConfig({}), "/srv");
    expect(c.server.port).toBe(8443);
    expect(c.server.insecureHttp).toBe(false);
    expect(c.storage.url).toBe("sqlite:/srv/data/certfleet.db");
    expect(c.issuers).toEqual([{ id: "embedded", type: "embedded", leafValidityMs: 30 * 86_400_000 }]);
    expect(c.routing.defaultIssuer).toBe("embedded");
    expect(c.auth.bootstrap).toBe(true);
    expect(c.certificates.keyType).toBe("ec256");
    expect(c.certificates.renewWhenRemaining).toBeCloseTo(1 / 3);
  });

  it("names the key path of unknown keys and wrong types, all at once", () => {
    const issues = issuesOf(() =>
      parseConfig({ server: { port: "x", tlss: {} }, acme: { caDirUrl: "not a url" }, bogus: 1 }),
    );
    const paths = issues.map((i) => i.path).sort();
    expect(paths).toEqual(["acme.caDirUrl", "bogus", "server.port", "server.tlss"]);
    expect(issues.find((i) => i.path === "bogus")?.message).toBe("unknown key");
  });

  it("interpolates ${VAR} and ${VAR:-default}, and reports missing variables by key path", () => {
    const c = parseConfig(
      { acme: { caDirUrl: "https://${CA_HOST}/dir", email: "${MAIL:-ops@example.com}" } },
      { CA_HOST: "ca.example" },
    );
    expect(c.acme?.caDirUrl).toBe("https://ca.example/dir");
    expect(c.acme?.email).toBe("ops@example.com");
    const issues = issuesOf(() => parseConfig({ auth: { psk: { key: "${NOPE}" } } }, {}));
    expect(issues[0]).toMatchObject({ path: "auth.psk.key" });
    expect(parseConfig({ dataDir: "$${LITERAL}" }, {}).dataDir).toBe("${LITERAL}");
  });

  it("overlays CERTFLEET_* variables, with JSON for non-strings and _FILE for secrets", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cf-config-"));
    const secret = join(dir, "psk");
    await writeFile(secret, "from-a-file-0123456789\n");
    const env = {
      CERTFLEET_SERVER__PORT: "9443",
      CERTFLEET_ACME__CA_DIR_URL: "https://acme.example/directory",
      CERTFLEET_AUTH__PSK__KEY_FILE: secret,
      CERTFLEET_CERTIFICATES__REUSE_KEY: "true",
      CERTFLEET_CONFIG: "/ignored.yaml",
    };
    const c = parseConfig({ server: { port: 1 } }, env);
    expect(c.server.port).toBe(9443);
    expect(c.acme?.caDirUrl).toBe("https://acme.example/directory");
    expect(c.auth.psk?.key).toBe("from-a-file-0123456789");
    expect(c.certificates.reuseKey).toBe(true);
    expect(issuesOf(() => parseConfig({}, { CERTFLEET_SERVR__PORT: "1" }))[0]?.path).toBe(
      "CERTFLEET_SERVR__PORT",
    );
    expect(issuesOf(() => parseConfig({}, { CERTFLEET_SERVER__PORT: "eighty" }))[0]?.path).toBe(
      "server.port",
    );
  });

  it("maps key paths to variable names predictably", () => {
    expect(envNameForPath(["acme", "caDirUrl"])).toBe(ENV_PREFIX + "ACME__CA_DIR_URL");
    expect(envNameForPath(["auth", "psk", "key"])).toBe("CERTFLEET_AUTH__PSK__KEY");
  });

  it("reports YAML syntax errors and unreadable files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cf-config-"));
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "server:\n  port: [1\n");
    await expect(loadConfigFile(bad, {})).rejects.toBeInstanceOf(ConfigError);
    await expect(loadConfigFile(join(dir, "missing.yaml"), {})).rejects.toMatchObject({
      issues: [{ path: "(file)" }],
    });
  });
});

describe("le-cert-server compatibility", () => {
  const leConfig = `
server:
  bind: 127.0.0.1
  port: 8443
  tls:
    path: /etc/le-cert-server/tls
database:
  path: /var/lib/le-cert-server/certs.db
auth:
  method: psk
  psk:
    key: "a-very-long-pre-shared-key"
letsEncrypt:
  email: ops@example.com
  staging: true
  dnsProvider: cloudflare
  dnsCredentials:
    CF_DNS_API_TOKEN: token
  renewalDays: 30
`;

  it("loads a le-cert-server file unchanged", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cf-config-"));
    const file = join(dir, "config.yaml");
    await writeFile(file, leConfig);
    const c = resolveConfig(await loadConfigFile(file, {}), dir);
    expect(c.server.bind).toBe("127.0.0.1");
    expect(c.server.tls.certFile).toBe("/etc/le-cert-server/tls/tls-cert.pem");
    expect(c.storage.url).toBe("sqlite:/var/lib/le-cert-server/certs.db");
    expect(c.auth.apiKeys).toEqual([
      expect.objectContaining({ name: "psk", key: "a-very-long-pre-shared-key" }),
    ]);
    expect(c.auth.bootstrap).toBe(false);
    expect(c.issuers[0]).toMatchObject({
      id: "letsencrypt",
      type: "acme",
      directoryUrl: LETS_ENCRYPT_STAGING,
      email: "ops@example.com",
    });
    expect(c.routing.defaultIssuer).toBe("letsencrypt");
    expect(c.dns.providers[0]).toMatchObject({ type: "cloudflare", legoEnv: { CF_DNS_API_TOKEN: "token" } });
    expect(c.certificates.renewBeforeDays).toBe(30);
  });

  it("reads lego's propagation timing variables from dnsCredentials", () => {
    const le = (env: Record<string, string>) =>
      parseConfig({
        letsEncrypt: { dnsProvider: "cloudflare", dnsCredentials: { CF_DNS_API_TOKEN: "t", ...env } },
      });
    const timed = resolveConfig(
      le({ CLOUDFLARE_PROPAGATION_TIMEOUT: "300", CLOUDFLARE_POLLING_INTERVAL: "5s" }),
    );
    expect(timed.dns.providers[0]).toMatchObject({
      propagationTimeoutMs: 300_000,
      propagationIntervalMs: 5_000,
    });
    const untimed = resolveConfig(le({}));
    expect(untimed.dns.providers[0]?.propagationTimeoutMs).toBeUndefined();
    expect(issuesOf(() => resolveConfig(le({ CF_PROPAGATION_TIMEOUT: "soon" })))).toEqual([
      {
        path: "letsEncrypt.dnsCredentials.CF_PROPAGATION_TIMEOUT",
        message: expect.stringContaining('got "soon"'),
      },
    ]);
  });

  it("production by default, and acme.caDirUrl wins", () => {
    const prod = resolveConfig(parseConfig({ letsEncrypt: { email: "a@example.com" } }));
    expect(prod.issuers[0]).toMatchObject({ directoryUrl: LETS_ENCRYPT_PRODUCTION });
    const custom = resolveConfig(parseConfig({ acme: { caDirUrl: "https://ca.example/dir" } }));
    expect(custom.issuers[0]).toMatchObject({ id: "acme", directoryUrl: "https://ca.example/dir" });
    expect(custom.routing.defaultIssuer).toBe("acme");
  });

  it("accepts both JWT config shapes", () => {
    const short = resolveConfig(
      parseConfig({ auth: { issuerUrl: "https://idp.example", audience: "certfleet" } }),
    );
    const long = resolveConfig(
      parseConfig({
        auth: {
          method: "jwt",
          jwt: { issuerUrl: "https://idp.example", audience: "certfleet", requiredScopes: ["cert"] },
        },
      }),
    );
    expect(short.auth.jwtIssuers[0]).toMatchObject({
      issuerUrl: "https://idp.example",
      audience: "certfleet",
    });
    expect(long.auth.jwtIssuers[0]).toMatchObject({
      issuerUrl: "https://idp.example",
      requiredScopes: ["cert"],
    });
  });

  it("cross-field errors name the key", () => {
    expect(issuesOf(() => resolveConfig(parseConfig({ auth: { method: "psk" } })))[0]?.path).toBe(
      "auth.psk.key",
    );
    expect(issuesOf(() => resolveConfig(parseConfig({ auth: { method: "jwt" } })))[0]?.path).toBe(
      "auth.jwt.issuerUrl",
    );
    expect(
      issuesOf(() =>
        resolveConfig(parseConfig({ routing: { rules: [{ match: "*.internal", issuer: "nope" }] } })),
      )[0]?.path,
    ).toBe("routing.rules.0.issuer");
  });

  it("routes names to issuers by rule", () => {
    const c = resolveConfig(
      parseConfig({
        acme: { caDirUrl: "https://ca.example/dir" },
        routing: { rules: [{ match: ".internal", issuer: "embedded" }] },
      }),
    );
    expect(c.routing).toEqual({ rules: [{ match: ".internal", issuer: "embedded" }], defaultIssuer: "acme" });
  });
});
