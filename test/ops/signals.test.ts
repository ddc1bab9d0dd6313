import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";

/**
 * SIGHUP re-reads the config file and swaps in the parts that can change (here: API keys) while
 * requests keep flowing; what cannot change is named in a warning. SIGTERM drains and exits.
 */
const FIRST = "first-key-0123456789abcdef-0123456789";
const SECOND = "second-key-0123456789abcdef-012345678";
let dir: string;
let cf: CertfleetProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "certfleet-signals-"));
  cf = await startCertfleet({
    dataDir: dir,
    config: {
      dataDir: join(dir, "data"),
      auth: { apiKeys: [{ name: "first", key: FIRST, grants: ["*.example.internal"] }] },
    },
  });
}, 60_000);
afterAll(async () => {
  await cf.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("SIGHUP", () => {
  it("a key added to the file works after SIGHUP, and no request fails meanwhile", async () => {
    const denied = await cf.post("/api/certificate", { domain: "b.example.internal" }, { apiKey: SECOND });
    expect(denied.status).toBe(401);

    // a client hammering the API with the first key through the whole reload
    let stop = false;
    const statuses: number[] = [];
    const hammer = (async () => {
      while (!stop) {
        const res = await cf.post("/api/certificate", { domain: "a.example.internal" }, { apiKey: FIRST });
        statuses.push(res.status);
      }
    })();

    const configPath = join(dir, "certfleet.yaml");
    const config = parse(await readFile(configPath, "utf8")) as Record<string, any>;
    config.auth.apiKeys.push({ name: "second", key: SECOND, grants: ["b.example.internal"] });
    config.server.bodyLimit = 32768; // cannot change without a restart: named in a warning
    await writeFile(configPath, stringify(config));
    cf.child.kill("SIGHUP");

    const deadline = Date.now() + 20_000;
    let accepted = false;
    while (!accepted && Date.now() < deadline) {
      const res = await cf.post("/api/certificate", { domain: "b.example.internal" }, { apiKey: SECOND });
      accepted = res.status === 200;
      if (!accepted) await new Promise((r) => setTimeout(r, 100));
    }
    // keep hammering a little after the swap
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await hammer;

    expect(accepted).toBe(true);
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // the new key's grants hold: it gets only what it was granted
    const outside = await cf.post("/api/certificate", { domain: "a.example.internal" }, { apiKey: SECOND });
    expect(outside.status).toBe(403);
    expect(cf.stderr()).toMatch(/configuration reloaded/);
    expect(cf.stderr()).toMatch(/changed settings need a restart to apply: server\.bodyLimit/);
  });

  it("a config that does not load changes nothing", async () => {
    const configPath = join(dir, "certfleet.yaml");
    const good = await readFile(configPath, "utf8");
    await writeFile(configPath, good + "\nnoSuchKey: 1\n");
    cf.child.kill("SIGHUP");
    const deadline = Date.now() + 20_000;
    while (!/reload failed/.test(cf.stderr()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(cf.stderr()).toMatch(/reload failed; the previous configuration stays in force/);
    expect(cf.stderr()).toMatch(/noSuchKey: unknown key/);
    const res = await cf.post("/api/certificate", { domain: "b.example.internal" }, { apiKey: SECOND });
    expect(res.status).toBe(200);
    await writeFile(configPath, good);
  });
});

describe("SIGTERM", () => {
  it("stops, says how many issuances were running, and exits 0", async () => {
    const exited = new Promise<number | null>((r) => cf.child.once("exit", (code) => r(code)));
    cf.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(cf.stderr()).toMatch(/"issuancesRunning":0,"msg":"shutting down: no new requests"/);
    expect(cf.stderr()).toMatch(/"msg":"stopped"/);
  });
});
