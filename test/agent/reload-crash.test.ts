import { watch } from "node:fs";
import { readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, startLoopbackHttp, type LoopbackHttp } from "../harness/metadata-servers/loopback-http.js";
import { spawnAgent, writeAgentConfig } from "./support/agent-process.js";
import { FLEET_KEY, startTestServer, type TestServer } from "./support/certfleet-server.js";

/**
 * A reload owed at a crash is not lost. The agent is killed (SIGKILL) at a random moment after it
 * switched a certificate to a new generation — before the reload command started, while it runs, or
 * after it ended — again and again. Each time the next start, with nothing new from the server, must run
 * the reload for exactly the generation that is live (unless the killed run had already finished it),
 * and a start after that must owe nothing.
 *
 * Two real certificates (EC and RSA keys) for one name come from the real server; a loopback stand-in
 * hands out whichever the test chooses. The reload command logs `start|done <run> <generation>`.
 */
const DOMAIN = "reload.example.com";

interface Bundle {
  certificate: string;
  issuerCert: string;
  privateKey: string;
  serial: string;
  [key: string]: unknown;
}

describe("a SIGKILL between the generation switch and the end of the reload", () => {
  let server: TestServer;
  let standIn: LoopbackHttp;
  const bundles: Bundle[] = [];
  let serving = 0;

  beforeAll(async () => {
    server = await startTestServer();
    for (const keyType of ["ec256", "rsa2048"]) bundles.push(await fetchCertificate(server, keyType));
    standIn = await startLoopbackHttp((req, res) => {
      if (req.url.pathname !== "/api/certificate") return json(res, 404, {});
      const b = bundles[serving]!;
      json(res, 200, { ...b, fullchain: b.certificate + b.issuerCert, cached: true });
    });
  });
  afterAll(async () => {
    await standIn?.close();
    await server?.stop();
  });

  it("always reloads the live generation on the next start, and then owes nothing", async () => {
    const { dir, path } = await writeAgentConfig({});
    const log = join(dir, "reloads.log");
    await writeFile(log, "");
    await writeFile(
      join(dir, "reload.sh"),
      [
        'g=$(readlink "$CERTFLEET_CERT_DIR")',
        `echo "start $RUN $g" >> "${log}"`,
        "sleep 0.3",
        `echo "done $RUN $g" >> "${log}"`,
      ].join("\n"),
    );
    await writeAgentConfig(
      {
        api: { url: standIn.origin },
        auth: { method: "api_key", api_key: "any-key-the-stand-in-accepts" },
        state_dir: "state",
        certificates: [
          {
            name: "web",
            domains: [DOMAIN],
            outputs: { pem: { cert: "out/cert.pem", key: "out/key.pem" } },
            reload: `sh ${join(dir, "reload.sh")}`,
          },
        ],
      },
      dir,
    );
    const store = join(dir, "state/certs/web");
    const args = ["agent", "--config", path, "--once"];
    const lines = async () => (await readFile(log, "utf8")).trim().split("\n").filter(Boolean);
    const runLines = async (run: string) => (await lines()).filter((l) => l.split(" ")[1] === run);

    const first = await spawnAgent(args, { env: { RUN: "initial" } }).exited;
    expect(first.code, first.stderr).toBe(0);
    expect(await runLines("initial")).toHaveLength(2);

    let owedAtRestart = 0;
    for (let i = 0; i < 5; i++) {
      serving = (serving + 1) % bundles.length; // something new to install
      const killed = `k${i}`;
      const agent = spawnAgent(args, { env: { RUN: killed } });
      // Kill at a random moment after `current` switched: 0–600 ms covers before, during and after
      // the 0.3 s reload.
      const delay = Math.random() * 600;
      let timer: NodeJS.Timeout | undefined;
      const watcher = watch(store, (_event, file) => {
        if (file === "current" && timer === undefined)
          timer = setTimeout(() => agent.child.kill("SIGKILL"), delay);
      });
      const run = await agent.exited;
      watcher.close();
      clearTimeout(timer);
      await new Promise((r) => setTimeout(r, 500)); // a reload orphaned by the kill finishes its lines
      const live = await readlink(join(store, "current"));
      if (run.signal !== "SIGKILL") {
        // the run beat the kill: it must have reloaded for what it installed
        expect(await runLines(killed)).toEqual([`start ${killed} ${live}`, `done ${killed} ${live}`]);
      }

      const recovery = `r${i}`;
      const restarted = await spawnAgent(args, { env: { RUN: recovery } }).exited;
      expect(restarted.code, restarted.stderr).toBe(0);
      expect(await readlink(join(store, "current"))).toBe(live); // nothing new was installed
      const recovered = await runLines(recovery);
      // at most one reload, and only ever for the live generation
      expect(recovered.every((l) => l.endsWith(` ${live}`))).toBe(true);
      expect(recovered.length === 0 || recovered.length === 2).toBe(true);
      if (recovered.length > 0) owedAtRestart++;
      // eventually reloaded for exactly the live generation: by the killed run (it finished before the
      // kill) or by the restart
      const killedDone = (await runLines(killed)).includes(`done ${killed} ${live}`);
      expect(killedDone || recovered.includes(`done ${recovery} ${live}`), `iteration ${i}`).toBe(true);
      // a run whose reload finished and was recorded owes nothing
      if (recovered.length === 0) expect(killedDone).toBe(true);

      const settled = `s${i}`;
      const again = await spawnAgent(args, { env: { RUN: settled } }).exited;
      expect(again.code, again.stderr).toBe(0);
      expect(await runLines(settled)).toEqual([]);
    }
    // the case this test is about happened: a reload was still owed when the agent came back
    expect(owedAtRestart).toBeGreaterThan(0);
  }, 300_000);
});

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
