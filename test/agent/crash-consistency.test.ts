import { watch } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, startLoopbackHttp, type LoopbackHttp } from "../harness/metadata-servers/loopback-http.js";
import { spawnAgent, writeAgentConfig, type AgentRun } from "./support/agent-process.js";
import { FLEET_KEY, startTestServer, type TestServer } from "./support/certfleet-server.js";
import { readPair } from "./support/pair-check.js";

/**
 * Kill the agent with SIGKILL while it installs, again and again, and show that the files at the
 * configured paths are always a complete, matching pair. Two real certificates for the same name (EC
 * and RSA keys) come from the real server once; a loopback stand-in then hands them out alternately,
 * each with a chain padded to a few MB so that writing a generation takes a while. Half of the kills
 * fire after a random number of file-system events under the agent's directory (mid-write, proven by
 * the partial generation left behind), half at random times.
 */
const DOMAIN = "crash.example.com";
const PADDING = 3000;

interface Bundle {
  certificate: string;
  issuerCert: string;
  privateKey: string;
  serial: string;
  [key: string]: unknown;
}

describe("a SIGKILL in the middle of an install never leaves a mismatched pair", () => {
  let server: TestServer;
  let standIn: LoopbackHttp;
  const bundles: Bundle[] = [];
  let next = 0;

  beforeAll(async () => {
    server = await startTestServer();
    for (const keyType of ["ec256", "rsa2048"]) {
      const res = await fetchCertificate(server, keyType);
      bundles.push({ ...res, issuerCert: res.issuerCert.repeat(PADDING) });
    }
    standIn = await startLoopbackHttp((req, res) => {
      if (req.url.pathname !== "/api/certificate") return json(res, 404, {});
      const b = bundles[next++ % bundles.length]!;
      json(res, 200, { ...b, fullchain: b.certificate + b.issuerCert, cached: true });
    });
  });
  afterAll(async () => {
    await standIn?.close();
    await server?.stop();
  });

  it("survives kills at the moment of writing and at random times", async () => {
    const { dir, path } = await writeAgentConfig({});
    await writeAgentConfig(
      {
        api: { url: standIn.origin },
        auth: { method: "api_key", api_key: "any-key-the-stand-in-accepts" },
        state_dir: "state",
        certificates: [
          {
            name: "crash",
            domains: [DOMAIN],
            outputs: {
              pem: { cert: "out/cert.pem", fullchain: "out/fullchain.pem", key: "out/key.pem" },
              combined: "out/combined.pem",
            },
          },
        ],
      },
      dir,
    );
    const store = join(dir, "state/certs/crash");
    const args = ["agent", "--config", path, "--once"];

    const first = await spawnAgent(args).exited;
    expect(first.code, first.stderr).toBe(0);
    await expectConsistent(dir);

    let midWrite = 0;
    const seenSerials = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const agent = spawnAgent(args);
      let watcher: ReturnType<typeof watch> | undefined;
      let timer: NodeJS.Timeout | undefined;
      if (i % 2 === 0) {
        // Kill after the k-th file-system event anywhere under the agent's directory: whatever the
        // installer's strategy, this lands after it started writing and (mostly) before it finished.
        const k = 1 + Math.floor(Math.random() * 8);
        let events = 0;
        watcher = watch(dir, { recursive: true }, () => {
          if (++events === k) agent.child.kill("SIGKILL");
        });
      } else {
        timer = setTimeout(() => agent.child.kill("SIGKILL"), 200 + Math.random() * 1500);
      }
      const run: AgentRun = await agent.exited;
      watcher?.close();
      clearTimeout(timer);
      const leftovers = (await readdir(store)).filter((e) => e.endsWith(".partial"));
      if (run.signal === "SIGKILL" && leftovers.length > 0) midWrite++;
      seenSerials.add(await expectConsistent(dir));
    }
    expect(midWrite, "at least one kill landed while a generation was being written").toBeGreaterThan(0);

    // A clean run afterwards installs normally and clears what the killed runs left behind.
    const last = await spawnAgent(args).exited;
    expect(last.code, last.stderr).toBe(0);
    seenSerials.add(await expectConsistent(dir));
    expect((await readdir(store)).filter((e) => e.endsWith(".partial"))).toEqual([]);
    expect([...seenSerials].every((s) => bundles.some((b) => b.serial === s))).toBe(true);
  }, 90_000);
});

/** The configured files are whole and belong together; returns the serial they hold. */
async function expectConsistent(dir: string): Promise<string> {
  const pair = await readPair(join(dir, "out/cert.pem"), join(dir, "out/key.pem"));
  expect(pair.matches).toBe(true);
  expect(pair.names).toEqual([DOMAIN]);
  const fullchain = await readFile(join(dir, "out/fullchain.pem"), "utf8");
  expect(fullchain.startsWith(pair.certPem)).toBe(true);
  const combined = await readFile(join(dir, "out/combined.pem"), "utf8");
  expect(combined).toBe(fullchain + pair.keyPem);
  const manifest = JSON.parse(await readFile(join(dir, "state/certs/crash/current/manifest.json"), "utf8"));
  expect(manifest.serial).toBe(pair.leaf.serialNumber.toLowerCase());
  return manifest.serial;
}

async function fetchCertificate(server: TestServer, keyType: string): Promise<Bundle> {
  const { request } = await import("node:https");
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: url.port,
        path: "/api/certificate",
        method: "POST",
        servername: "localhost",
        ca: server.caPem,
        headers: { authorization: `APIKey ${FLEET_KEY}`, "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(text))));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ domain: DOMAIN, keyType }));
  });
}
