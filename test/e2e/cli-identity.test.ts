import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/** The identity CLI against the storage of a running `certfleet serve`: changes apply without a restart. */
describe("certfleet identity / settings CLI", () => {
  let dir: string;
  let configPath: string;
  let cf: CertfleetProcess;
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [BIN, ...args, "--config", configPath, "--json"]);
    return JSON.parse(stdout);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-cli-"));
    const config = {
      server: { bind: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      logging: { level: "warn" },
    };
    configPath = join(dir, "cli.yaml");
    await writeFile(configPath, stringify(config));
    cf = await startCertfleet({ dataDir: dir, config });
  }, 60_000);
  afterAll(async () => {
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("creates a client-secret identity whose secret works at once, then disables it", async () => {
    const created = await cli(
      "identity",
      "create",
      "--name",
      "build-box",
      "--method",
      "client_secret",
      "--grant",
      "*.ci.example.com",
    );
    expect(created.binding.clientId).toMatch(/^cour_/);
    expect(created.clientSecret).toBeTruthy();
    const basic = {
      authorization:
        "Basic " + Buffer.from(`${created.binding.clientId}:${created.clientSecret}`).toString("base64"),
    };
    const ok = await cf.post(
      "/api/certificate",
      { domain: "a.ci.example.com" },
      { apiKey: "", headers: basic },
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);

    const list = await cli("identity", "list");
    expect(list.map((i: any) => i.id)).toContain(created.id);
    expect(JSON.stringify(list)).not.toContain(created.clientSecret);

    await cli("identity", "disable", created.id);
    expect(
      (await cf.post("/api/certificate", { domain: "a.ci.example.com" }, { apiKey: "", headers: basic }))
        .status,
    ).toBe(401);
  });

  it("the legacy switch from the CLI applies to the running server within a second", async () => {
    const created = await cli(
      "identity",
      "create",
      "--name",
      "old-box",
      "--method",
      "client_secret",
      "--grant",
      "old.example.com",
    );
    const basic = {
      authorization:
        "Basic " + Buffer.from(`${created.binding.clientId}:${created.clientSecret}`).toString("base64"),
    };
    await cli("settings", "legacy", "--disable");
    await new Promise((r) => setTimeout(r, 1100));
    expect(
      (await cf.post("/api/certificate", { domain: "old.example.com" }, { apiKey: "", headers: basic }))
        .status,
    ).toBe(401);
    await cli("settings", "legacy", "--enable");
    await new Promise((r) => setTimeout(r, 1100));
    expect(
      (await cf.post("/api/certificate", { domain: "old.example.com" }, { apiKey: "", headers: basic }))
        .status,
    ).toBe(200);
  });

  it("rejects a bad grant with exit code 2", async () => {
    const err = await run(process.execPath, [
      BIN,
      "identity",
      "create",
      "--name",
      "x",
      "--method",
      "jwt",
      "--binding",
      "issuer=https://idp.example",
      "--binding",
      "subject=s",
      "--grant",
      "192.0.2.1",
      "--config",
      configPath,
    ]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("grant");
  });
});
