import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createStorage } from "../../src/storage/create-storage.js";
import { randomBytes } from "node:crypto";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { identityCreateCommand } from "../../src/cli/identity.js";
import type { Storage } from "../../src/storage/storage.js";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { readPair } from "./support/pair-check.js";

/**
 * The `certificate` method end to end, over real TLS with the agent as a process:
 *
 * - `certfleet identity create --method certificate --issue-client-cert` issues a clientAuth certificate
 *   from the server's embedded CA, binds the new record to it, writes the files once (key 0600), and
 *   the agent authenticates with them;
 * - a server whose client CA bundle holds only a root accepts a leaf from an intermediate below it when
 *   the agent sends the intermediate along (cert_path = leaf + chain), and refuses the bare leaf.
 */
describe("agent end to end: client certificates", () => {
  let server: TestServer;
  let rootOnly: TestServer;
  let externalStore: Storage;
  let external: EmbeddedCa;

  beforeAll(async () => {
    server = await startTestServer();
    // An organisation's own PKI (root → intermediate → leaves); the server is given only its root.
    externalStore = createStorage({ url: "sqlite::memory:", encryptionKey: randomBytes(32) });
    await externalStore.migrate();
    external = await createEmbeddedCa({
      store: externalStore.kv,
      clock: systemClock,
      logger: silentLogger(),
      options: { name: "org client PKI" },
    });
    const rootFile = join(server.dir, "org-root.pem");
    await writeFile(rootFile, external.rootPem);
    rootOnly = await startTestServer({ clientCertificates: { caBundleFile: rootFile } });
  });
  afterAll(async () => {
    await rootOnly?.stop();
    await server?.stop();
    await externalStore?.close();
  });

  async function agentFor(target: TestServer, dir: string, uuid: string, domain: string) {
    const { path } = await writeAgentConfig(
      {
        api: { url: target.url, ca_bundle: target.caFile },
        auth: { method: "certificate", uuid, cert_path: "client.crt", key_path: "client.key" },
        state_dir: "state",
        certificates: [
          { name: "web", domains: [domain], outputs: { pem: { cert: "cert.pem", key: "key.pem" } } },
        ],
      },
      dir,
    );
    return path;
  }

  it("identity create --issue-client-cert: a bound client certificate the agent signs in with", async () => {
    const dir = join(server.dir, "issued");
    await mkdir(dir);
    const config = join(dir, "certfleet.yaml");
    await writeFile(config, stringify({ dataDir: server.dir, server: { bind: "127.0.0.1" } }));
    let printed = "";
    const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      printed += String(chunk);
      return true;
    });
    let code: number;
    try {
      code = await identityCreateCommand({
        config,
        name: "edge-cli",
        method: "certificate",
        grant: ["edge-cli.example.com"],
        issueClientCert: true,
        validity: "30",
        certOut: join(dir, "client.crt"),
        keyOut: join(dir, "client.key"),
        json: true,
      });
    } finally {
      write.mockRestore();
    }
    expect(code).toBe(0);
    const view = JSON.parse(printed) as {
      id: string;
      binding: { fingerprint: string };
      clientCertificate: object;
    };
    expect(view.clientCertificate).toEqual({}); // everything went to the files, nothing printed
    expect((await stat(join(dir, "client.key"))).mode & 0o777).toBe(0o600);
    const certFile = await readFile(join(dir, "client.crt"), "utf8");
    const leaf = new X509Certificate(certFile);
    expect(leaf.fingerprint256.replace(/:/g, "").toLowerCase()).toBe(view.binding.fingerprint);
    expect(leaf.checkIssued(new X509Certificate(server.cf.embeddedCa.intermediatePem))).toBe(true);
    expect(leaf.keyUsage).toContain("1.3.6.1.5.5.7.3.2"); // clientAuth
    expect(certFile).toContain(server.cf.embeddedCa.intermediatePem.trim());

    const path = await agentFor(server, dir, view.id, "edge-cli.example.com");
    const result = await runAgent(["agent", "--config", path, "--once", "--json"], { cwd: dir });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["edge-cli.example.com"]);

    // a second run of the command never overwrites an existing key file, and creates nothing
    const before = (await server.cf.storage.identities.listIdentities()).length;
    await expect(
      identityCreateCommand({
        config,
        name: "edge-cli-2",
        method: "certificate",
        issueClientCert: true,
        certOut: join(dir, "other.crt"),
        keyOut: join(dir, "client.key"),
      }),
    ).rejects.toMatchObject({ code: "output_exists" });
    expect((await server.cf.storage.identities.listIdentities()).length).toBe(before);
    await expect(stat(join(dir, "other.crt"))).rejects.toMatchObject({ code: "ENOENT" });
  }, 60_000);

  it("a root-only bundle: leaf + intermediate from the agent is accepted, the bare leaf is not", async () => {
    const dir = join(rootOnly.dir, "chained");
    await mkdir(dir);
    const client = await external.issueClientCertificate({ subjectCn: "edge-chain", validityDays: 1 });
    const fingerprint = new X509Certificate(client.certPem).fingerprint256.replace(/:/g, "");
    const identity = await rootOnly.createIdentity({
      name: "edge-chain",
      method: "certificate",
      binding: { fingerprint },
      grants: ["edge-chain.example.com"],
    });
    await writeFile(join(dir, "client.key"), client.privateKeyPem!, { mode: 0o600 });
    const path = await agentFor(rootOnly, dir, identity.id, "edge-chain.example.com");

    await writeFile(join(dir, "client.crt"), client.certPem);
    const bare = await runAgent(["agent", "--config", path, "--once", "--json"], { cwd: dir });
    expect(bare.code).toBe(3);
    expect(JSON.parse(bare.stdout).certificates[0].error.code).toBe("unauthenticated");

    await writeFile(join(dir, "client.crt"), client.certPem + client.chainPem);
    const chained = await runAgent(["agent", "--config", path, "--once", "--json"], { cwd: dir });
    expect(chained.code, chained.stderr + chained.stdout).toBe(0);
    const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["edge-chain.example.com"]);
  }, 60_000);
});
