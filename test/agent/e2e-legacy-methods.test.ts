import { execFile } from "node:child_process";
import { createPublicKey, createHash, X509Certificate } from "node:crypto";
import { lstat, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey } from "../../src/core/keys.js";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { FLEET_KEY, startTestServer, type TestServer } from "./support/certfleet-server.js";
import { chainVerifies, readPair } from "./support/pair-check.js";

const run = promisify(execFile);

/**
 * The agent as a process against the real server: API key (with every output format, the reload hook
 * and the Traefik file), client id/secret and mTLS client certificates — the legacy methods.
 */
describe("agent end to end: api_key, client_secret, certificate", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const baseConfig = (dir: string, auth: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    api: { url: server.url, ca_bundle: server.caFile, ...(extra.api as object) },
    auth,
    state_dir: join(dir, "state"),
    certificates: [
      {
        name: "web",
        domains: (extra.domains as string[]) ?? ["web.example.com"],
        outputs: {
          pem: {
            cert: "out/cert.pem",
            chain: "out/chain.pem",
            fullchain: "out/fullchain.pem",
            key: "out/key.pem",
          },
        },
        ...(extra.certificate as object),
      },
    ],
    ...(extra.top as object),
  });

  it("api_key: every output format, reload only when content changed, Traefik file, JSON report", async () => {
    const { dir, path } = await writeAgentConfig({});
    const config = baseConfig(
      dir,
      { method: "api_key", api_key: "${FLEET_KEY}" },
      {
        domains: ["web.example.com", "www.example.com"],
        certificate: {
          outputs: {
            pem: {
              cert: "out/cert.pem",
              chain: "out/chain.pem",
              fullchain: "out/fullchain.pem",
              key: "out/key.pem",
            },
            combined: "out/combined.pem",
            pkcs12: { path: "out/web.p12", password: "${P12_PASSWORD}" },
          },
          mode: "0640",
          reload: `echo "$CERTFLEET_CERTIFICATE" >> ${join(dir, "reloads.log")}`,
        },
        top: { traefik: { path: "traefik/certs.yml" } },
      },
    );
    await writeAgentConfig(config, dir);
    const env = { FLEET_KEY, P12_PASSWORD: "p12-secret" };

    const first = await runAgent(["agent", "--config", path, "--once", "--json"], { env });
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.certificates[0]).toMatchObject({ name: "web", ok: true, changed: true, reloaded: true });

    const pair = await readPair(join(dir, "out/cert.pem"), join(dir, "out/key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["web.example.com", "www.example.com"]);
    const fullchain = await readFile(join(dir, "out/fullchain.pem"), "utf8");
    expect(fullchain.startsWith(pair.certPem)).toBe(true);
    expect(chainVerifies(fullchain, server.caPem)).toBe(true);
    expect(fullchain).toBe(pair.certPem + (await readFile(join(dir, "out/chain.pem"), "utf8")));
    const combined = await readFile(join(dir, "out/combined.pem"), "utf8");
    expect(combined).toBe(fullchain + pair.keyPem);

    expect((await stat(join(dir, "out/key.pem"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "out/combined.pem"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "out/cert.pem"))).mode & 0o777).toBe(0o640);
    expect((await lstat(join(dir, "out/cert.pem"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, "out/cert.pem"))).toBe(join(dir, "state/certs/web/current/cert.pem"));

    const { stdout: p12 } = await run("openssl", [
      "pkcs12",
      "-in",
      join(dir, "out/web.p12"),
      "-passin",
      "pass:p12-secret",
      "-nodes",
    ]);
    expect(p12).toContain("BEGIN PRIVATE KEY");
    const p12Leaf = new X509Certificate(
      p12.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
    );
    expect(p12Leaf.serialNumber).toBe(pair.leaf.serialNumber);

    const traefik = parse(await readFile(join(dir, "traefik/certs.yml"), "utf8"));
    expect(traefik.tls.certificates).toEqual([
      { certFile: join(dir, "out/fullchain.pem"), keyFile: join(dir, "out/key.pem") },
    ]);

    // Same certificate from the server's cache: nothing rewritten, no reload.
    const second = await runAgent(["agent", "--config", path, "--once", "--json"], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).certificates[0]).toMatchObject({
      changed: false,
      reloaded: false,
      serial: report.certificates[0].serial,
    });
    expect((await readFile(join(dir, "reloads.log"), "utf8")).trim().split("\n")).toEqual(["web"]);
    await rm(dir, { recursive: true, force: true });
  });

  it("api_key: a wrong key exits 3, a name outside the grants exits 4", async () => {
    const { dir, path } = await writeAgentConfig({});
    await writeAgentConfig(
      baseConfig(dir, { method: "api_key", api_key: "wrong-key-0123456789abcdefghij" }),
      dir,
    );
    const bad = await runAgent(["agent", "--config", path, "--once", "--json"]);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout).certificates[0].error.code).toBe("unauthenticated");

    await writeAgentConfig(
      baseConfig(dir, { method: "api_key", api_key: FLEET_KEY }, { domains: ["web.other.test"] }),
      dir,
    );
    const forbidden = await runAgent(["agent", "--config", path, "--once", "--json"]);
    expect(forbidden.code).toBe(4);
    expect(JSON.parse(forbidden.stdout).certificates[0].error.code).toBe("domain_not_granted");
    await rm(dir, { recursive: true, force: true });
  });

  it("client_secret: the UUID in auth.uuid, Basic credentials, local key custody (the key never leaves)", async () => {
    const identity = await server.createIdentity({
      name: "box-1",
      method: "client_secret",
      grants: ["box-1.example.com"],
    });
    const { dir, path } = await writeAgentConfig({});
    await writeAgentConfig(
      baseConfig(
        dir,
        {
          method: "client_secret",
          uuid: identity.id,
          client_id: identity.binding.clientId,
          client_secret: "${SECRET}",
        },
        { domains: ["box-1.example.com"], certificate: { key_custody: "local", key_type: "ec384" } },
      ),
      dir,
    );
    const result = await runAgent(["agent", "--config", path, "--once"], {
      env: { SECRET: identity.clientSecret! },
    });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toMatch(/^web: installed, serial [0-9a-f]+/);
    const pair = await readPair(join(dir, "out/cert.pem"), join(dir, "out/key.pem"));
    expect(pair.matches).toBe(true);
    expect(createPublicKey(pair.keyPem).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");

    // The local key is reused on the next run: the server answers with the same certificate.
    const again = await runAgent(["agent", "--config", path, "--once"], {
      env: { SECRET: identity.clientSecret! },
    });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("unchanged");
    expect((await readPair(join(dir, "out/cert.pem"), join(dir, "out/key.pem"))).keyPem).toBe(pair.keyPem);

    // The server sees the UUID: another identity's UUID with these credentials is refused.
    const other = await server.createIdentity({
      name: "box-2",
      method: "client_secret",
      grants: ["box-1.example.com"],
    });
    await writeAgentConfig(
      baseConfig(
        dir,
        {
          method: "client_secret",
          uuid: other.id,
          client_id: identity.binding.clientId,
          client_secret: identity.clientSecret,
        },
        { domains: ["box-1.example.com"] },
      ),
      dir,
    );
    const mismatch = await runAgent(["agent", "--config", path, "--once", "--json"]);
    expect(mismatch.code).toBe(3);
    await rm(dir, { recursive: true, force: true });
  });

  it("certificate: mTLS with cert_path/key_path from the embedded CA", async () => {
    const { dir, path } = await writeAgentConfig({});
    const keyPem = await generatePrivateKey("ec256");
    const client = await server.cf.embeddedCa.issueClientCertificate({
      subjectCn: "edge-7",
      publicKeyPem: createPublicKey(keyPem).export({ type: "spki", format: "pem" }).toString(),
      validityDays: 1,
    });
    const fingerprint = createHash("sha256").update(new X509Certificate(client.certPem).raw).digest("hex");
    const identity = await server.createIdentity({
      name: "edge-7",
      method: "certificate",
      binding: { fingerprint },
      grants: ["edge-7.example.com"],
    });
    await writeFile(join(dir, "client.crt"), client.certPem + client.chainPem);
    await writeFile(join(dir, "client.key"), keyPem, { mode: 0o600 });
    await writeAgentConfig(
      baseConfig(
        dir,
        { method: "certificate", uuid: identity.id, cert_path: "client.crt", key_path: "client.key" },
        { domains: ["edge-7.example.com"] },
      ),
      dir,
    );
    const result = await runAgent(["agent", "--config", path, "--once", "--json"]);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const pair = await readPair(join(dir, "out/cert.pem"), join(dir, "out/key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["edge-7.example.com"]);
    await rm(dir, { recursive: true, force: true });
  });

  it("get: one certificate into --out, JSON for scripts, the same pair switched atomically on a second run", async () => {
    const { dir, path } = await writeAgentConfig({});
    await writeAgentConfig(
      { api: { url: server.url, ca_bundle: server.caFile }, auth: { method: "api_key", api_key: FLEET_KEY } },
      dir,
    );
    const out = join(dir, "certs");
    const first = await runAgent([
      "get",
      "adhoc.example.com",
      "api.example.com",
      "--out",
      out,
      "--json",
      "--config",
      path,
    ]);
    expect(first.code, first.stderr).toBe(0);
    const body = JSON.parse(first.stdout);
    expect(body).toMatchObject({
      ok: true,
      domains: ["adhoc.example.com", "api.example.com"],
      files: { key: join(out, "key.pem") },
    });
    const pair = await readPair(join(out, "cert.pem"), join(out, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["adhoc.example.com", "api.example.com"]);
    expect(pair.leaf.serialNumber.toLowerCase()).toBe(body.serial);

    const local = await runAgent([
      "get",
      "adhoc.example.com",
      "api.example.com",
      "--out",
      out,
      "--local-key",
      "--key-type",
      "ec384",
      "--config",
      path,
    ]);
    expect(local.code, local.stderr).toBe(0);
    const after = await readPair(join(out, "cert.pem"), join(out, "key.pem"));
    expect(after.matches).toBe(true);
    expect(after.keyPem).not.toBe(pair.keyPem);

    const bad = await runAgent(["get", "not a name", "--out", out, "--json", "--config", path]);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe("config_invalid");
    await rm(dir, { recursive: true, force: true });
  });
});
