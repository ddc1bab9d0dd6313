import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { runLego } from "../acme-server/real-clients.js";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { opensslVerify, sanDnsNames } from "../harness/pki.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/**
 * The compatibility surface as outside tests drive it: `certfleet serve` with no ACME settings serves
 * ACME at /acme/directory (default profile, eab mode, embedded CA) on its HTTPS listener, and
 * `certfleet acme eab create --config FILE --grant … --json` makes the key lego binds with.
 */
describe("ACME on `certfleet serve` by default, with lego", () => {
  let dir: string;
  let configPath: string;
  let cf: CertfleetProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-acme-serve-"));
    const config = {
      server: { bind: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      logging: { level: "warn" },
    };
    configPath = join(dir, "certfleet.yaml");
    await writeFile(configPath, stringify(config));
    cf = await startCertfleet({ dataDir: dir, config });
  }, 60_000);
  afterAll(async () => {
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the directory with externalAccountRequired", async () => {
    const res = await cf.get("/acme/directory");
    expect(res.status).toBe(200);
    expect(res.body.newAccount).toMatch(/\/acme\//);
    expect(res.body.meta.externalAccountRequired).toBe(true);
  });

  it("lego obtains exactly the names its EAB key grants", async () => {
    const { stdout } = await run(process.execPath, [
      BIN,
      "acme",
      "eab",
      "create",
      "--config",
      configPath,
      "--grant",
      "*.proxy.example.com",
      "--grant",
      "proxy.example.com",
      "--json",
    ]);
    const eab = JSON.parse(stdout) as { kid: string; hmacKey: string };
    expect(eab.hmacKey).toMatch(/^[A-Za-z0-9_-]+$/);
    const caFile = join(dir, "ca.pem");
    await writeFile(caFile, cf.caPem);
    const directoryUrl = cf.url.replace("127.0.0.1", "localhost") + "/acme/directory";

    const ok = await runLego({
      directoryUrl,
      caFile,
      domains: ["proxy.example.com", "www.proxy.example.com"],
      eab,
      solver: ["--http", "--http.port", "127.0.0.1:1"],
    });
    expect(ok.code, ok.output).toBe(0);
    const cert = await ok.certPem();
    expect(sanDnsNames(cert)).toEqual(["proxy.example.com", "www.proxy.example.com"]);
    expect(await opensslVerify(cf.caPem, await ok.issuerPem(), cert)).toContain("OK");

    const refused = await runLego({
      directoryUrl,
      caFile,
      domains: ["other.example.com"],
      eab,
      solver: ["--http", "--http.port", "127.0.0.1:1"],
    });
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/rejectedIdentifier|unauthorized/);
  }, 90_000);
});
