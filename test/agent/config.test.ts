import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { agentCommand } from "../../src/cli/agent.js";
import { AUTH_METHODS } from "../../src/agent/config/auth-config.js";
import { parseAgentConfig } from "../../src/agent/config/load-agent-config.js";
import { UUID_PLACEMENT } from "../../src/agent/config/uuid-placement.js";
import { ConfigError } from "../../src/core/errors.js";

const UUID = "3f6c2a1e-8b7d-4c5e-9a0b-1c2d3e4f5a6b";

/** The smallest valid auth block of each method (without any uuid). */
const AUTH: Record<string, Record<string, unknown>> = {
  api_key: { method: "api_key", api_key: "k" },
  client_secret: { method: "client_secret", client_id: "cour_0123456789", client_secret: "s" },
  certificate: { method: "certificate", cert_path: "/c.pem", key_path: "/k.pem" },
  oidc_jwt: { method: "oidc_jwt", token_endpoint: "https://idp.example.com/token" },
  azure_jwt: { method: "azure_jwt", tenant_id: "t", client_id: "c" },
  azure_arc: { method: "azure_arc" },
  aws_oidc: { method: "aws_oidc", role_arn: "arn:aws:iam::123456789012:role/R", region: "ap-southeast-2" },
  gcp: { method: "gcp", audience: "https://certfleet.example.com" },
  kubernetes: { method: "kubernetes" },
  spiffe: { method: "spiffe", workload_api_socket: "unix:///tmp/spire-agent/public/api.sock" },
  exec: { method: "exec", command: "my-plugin" },
  oidc: { method: "oidc", issuer: "https://accounts.example.com", client_id: "c" },
};

function config(
  auth: Record<string, unknown>,
  api: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) {
  return {
    api: { url: "https://certfleet.example.com:8443", ...api },
    auth,
    certificates: [{ name: "web", domains: ["web.example.com"] }],
    ...extra,
  };
}

function issues(raw: unknown, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parseAgentConfig(raw, env, "/etc/certfleet");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe("config_invalid");
    return [...(e as ConfigError).issues];
  }
  return [];
}

describe("agent config: where the UUID lives (the reference table)", () => {
  it("covers every method", () => {
    expect(Object.keys(UUID_PLACEMENT).sort()).toEqual([...AUTH_METHODS].sort());
    expect(Object.keys(AUTH).sort()).toEqual([...AUTH_METHODS].sort());
  });

  it.each(["client_secret", "certificate", "azure_arc", "oidc_jwt"])(
    "%s: auth.uuid, required; api.uuid is refused",
    (method) => {
      const ok = parseAgentConfig(config({ ...AUTH[method], uuid: UUID }), {}, "/etc/certfleet");
      expect(ok.identityUuid).toBe(UUID);
      expect(issues(config(AUTH[method]!))).toEqual([
        { path: "auth.uuid", message: expect.stringContaining("required") },
      ]);
      const misplaced = issues(config(AUTH[method]!, { uuid: UUID }));
      expect(misplaced).toEqual([
        {
          path: "api.uuid",
          message: `for method ${method} the UUID belongs in auth.uuid, not in the api section`,
        },
      ]);
    },
  );

  it.each(["azure_jwt", "aws_oidc", "spiffe"])("%s: api.uuid, required; auth.uuid is refused", (method) => {
    const ok = parseAgentConfig(config(AUTH[method]!, { uuid: UUID }), {}, "/etc/certfleet");
    expect(ok.identityUuid).toBe(UUID);
    expect(issues(config(AUTH[method]!))).toEqual([
      { path: "api.uuid", message: expect.stringContaining("required") },
    ]);
    const misplaced = issues(config({ ...AUTH[method], uuid: UUID }, { uuid: UUID }));
    expect(misplaced).toEqual([
      {
        path: "auth.uuid",
        message: `for method ${method} the UUID belongs in api.uuid, not in the auth block`,
      },
    ]);
  });

  it.each(["api_key", "gcp", "kubernetes", "exec", "oidc"])(
    "%s: api.uuid, optional; auth.uuid is refused",
    (method) => {
      expect(parseAgentConfig(config(AUTH[method]!), {}, "/").identityUuid).toBeUndefined();
      expect(parseAgentConfig(config(AUTH[method]!, { uuid: UUID }), {}, "/").identityUuid).toBe(UUID);
      expect(issues(config({ ...AUTH[method], uuid: UUID }))[0]).toMatchObject({ path: "auth.uuid" });
    },
  );

  it("a malformed UUID is refused where it is", () => {
    expect(issues(config({ ...AUTH.client_secret, uuid: "not-a-uuid" }))).toEqual([
      { path: "auth.uuid", message: expect.any(String) },
    ]);
  });
});

describe("agent config: loading", () => {
  it("interpolates ${VAR} (and reports a missing one by its key path)", () => {
    const raw = config({
      method: "client_secret",
      uuid: UUID,
      client_id: "${ZAITA_CLIENT_ID}",
      client_secret: "${ZAITA_CLIENT_SECRET}",
    });
    const c = parseAgentConfig(
      raw,
      { ZAITA_CLIENT_ID: "cour_abcdefgh12", ZAITA_CLIENT_SECRET: "s3cret" },
      "/",
    );
    expect(c.auth).toMatchObject({ client_id: "cour_abcdefgh12", client_secret: "s3cret" });
    expect(issues(raw, { ZAITA_CLIENT_ID: "cour_abcdefgh12" })).toEqual([
      { path: "auth.client_secret", message: "environment variable ZAITA_CLIENT_SECRET is not set" },
    ]);
  });

  it("is strict: unknown keys are named by path", () => {
    expect(issues(config(AUTH.kubernetes!, {}, { extra: 1 }))).toEqual([
      { path: "extra", message: "unknown key" },
    ]);
    expect(issues(config({ ...AUTH.gcp, audiance: "x" }))).toContainEqual({
      path: "auth.audiance",
      message: "unknown key",
    });
    expect(issues(config({ method: "kerberos" }))[0]!.path).toBe("auth.method");
  });

  it("resolves relative paths against the config file's directory, modes, durations and defaults", () => {
    const c = parseAgentConfig(
      config(
        { method: "certificate", uuid: UUID, cert_path: "client.crt", key_path: "/abs/client.key" },
        { ca_bundle: "ca.pem", timeout: "90s" },
        {
          state_dir: "state",
          certificates: [
            {
              name: "web",
              domains: ["WEB.example.com.", "www.example.com"],
              outputs: { pem: { cert: "out/cert.pem" }, pkcs12: { path: "out/web.p12", password: "" } },
              mode: "0640",
            },
          ],
        },
      ),
      {},
      "/etc/certfleet",
    );
    expect(c.auth).toMatchObject({ cert_path: "/etc/certfleet/client.crt", key_path: "/abs/client.key" });
    expect(c.api).toMatchObject({ caBundle: "/etc/certfleet/ca.pem", timeoutMs: 90_000 });
    expect(c.stateDir).toBe("/etc/certfleet/state");
    expect(c.certificates[0]).toMatchObject({
      domains: ["web.example.com", "www.example.com"],
      keyType: "ec256",
      keyCustody: "server",
      mode: 0o640,
      keyMode: 0o600,
      outputs: {
        pem: { cert: "/etc/certfleet/out/cert.pem" },
        pkcs12: { path: "/etc/certfleet/out/web.p12", password: "" },
      },
    });
  });

  it("refuses unquoted modes, bad names, duplicate certificates and two outputs on one path", () => {
    const found = issues(
      config(
        AUTH.kubernetes!,
        {},
        {
          certificates: [
            { name: "a", domains: ["a.example.com"], mode: 640, outputs: { combined: "/x.pem" } },
            { name: "a", domains: ["bücher.example"], outputs: { pem: { cert: "/x.pem" } } },
          ],
        },
      ),
    );
    expect(found.map((i) => i.path)).toEqual(["certificates.0.mode"]);
    const later = issues(
      config(
        AUTH.kubernetes!,
        {},
        {
          certificates: [
            { name: "a", domains: ["a.example.com"], outputs: { combined: "/x.pem" } },
            { name: "a", domains: ["bücher.example"], outputs: { pem: { cert: "/x.pem" } } },
          ],
        },
      ),
    );
    expect(later.map((i) => i.path).sort()).toEqual([
      "certificates.1.domains",
      "certificates.1.name",
      "certificates.1.outputs.pem.cert",
    ]);
  });

  it("api_key needs exactly one of api_key and api_key_file", () => {
    expect(issues(config({ method: "api_key" }))).toEqual([
      { path: "auth.api_key", message: expect.any(String) },
    ]);
    expect(issues(config({ method: "api_key", api_key: "k", api_key_file: "/k" }))).toHaveLength(1);
  });

  it("the agent command exits 2 with the issues (JSON) for a bad file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cf-agent-config-"));
    const path = join(dir, "agent.yaml");
    await writeFile(path, stringify(config({ ...AUTH.azure_jwt, uuid: UUID })));
    let out = "";
    const code = await agentCommand(
      { config: path, once: true, json: true },
      { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true }, env: {} },
    );
    expect(code).toBe(2);
    const body = JSON.parse(out);
    expect(body.error.code).toBe("config_invalid");
    expect(body.error.issues).toContainEqual({
      path: "auth.uuid",
      message: expect.stringContaining("api.uuid"),
    });
  });
});
