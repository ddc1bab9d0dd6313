import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { keyMatches, opensslVerify } from "../harness/pki.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/** The agent as users run it: the built `certfleet` bin, against `certfleet serve` (both real processes). */
describe("certfleet agent --once and certfleet get (built bin)", () => {
  let dir: string;
  let cf: CertfleetProcess;
  let agentConfig: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-agent-bin-"));
    cf = await startCertfleet({ dataDir: dir });
    await writeFile(join(dir, "ca.pem"), cf.caPem);
    agentConfig = join(dir, "agent.yaml");
    await writeFile(
      agentConfig,
      stringify({
        api: { url: cf.url.replace("127.0.0.1", "localhost"), ca_bundle: join(dir, "ca.pem") },
        auth: { method: "api_key", api_key: "${AGENT_KEY}" },
        state_dir: join(dir, "state"),
        certificates: [
          {
            name: "web",
            domains: ["web.example.com"],
            outputs: { pem: { fullchain: join(dir, "out/fullchain.pem"), key: join(dir, "out/key.pem") } },
            reload: `echo reloaded >> ${join(dir, "reloads.log")}`,
          },
        ],
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("installs a matching pair, reloads once, and does nothing the second time", async () => {
    const env = { ...process.env, AGENT_KEY: cf.apiKey! };
    const first = await run(process.execPath, [BIN, "agent", "--once", "--config", agentConfig, "--json"], {
      env,
    });
    expect(JSON.parse(first.stdout).ok).not.toBe(false);
    const fullchain = await readFile(join(dir, "out/fullchain.pem"), "utf8");
    const key = await readFile(join(dir, "out/key.pem"), "utf8");
    expect(keyMatches(key, fullchain)).toBe(true);
    const [leaf, ...chain] = fullchain.split(/(?=-----BEGIN CERTIFICATE-----)/);
    expect(await opensslVerify(cf.caPem, chain.join(""), leaf!)).toContain("OK");
    await run(process.execPath, [BIN, "agent", "--once", "--config", agentConfig], { env });
    expect((await readFile(join(dir, "reloads.log"), "utf8")).trim().split("\n")).toEqual(["reloaded"]);
  });

  it("get writes one certificate into --out, and a wrong key exits 3", async () => {
    const out = join(dir, "get-out");
    await run(process.execPath, [BIN, "get", "api.example.com", "--out", out, "--config", agentConfig], {
      env: { ...process.env, AGENT_KEY: cf.apiKey! },
    });
    expect(
      keyMatches(await readFile(join(out, "key.pem"), "utf8"), await readFile(join(out, "cert.pem"), "utf8")),
    ).toBe(true);
    const failed = await run(
      process.execPath,
      [BIN, "get", "api.example.com", "--out", out, "--config", agentConfig],
      {
        env: { ...process.env, AGENT_KEY: "cf_wrong_wrong_wrong_wrong_wrong_wrong" },
      },
    ).catch((e) => e);
    expect(failed.code).toBe(3);
  });
});
