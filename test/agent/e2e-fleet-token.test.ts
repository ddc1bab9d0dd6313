import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { spawnAgent, writeAgentConfig, type SpawnedAgent } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { waitFor } from "./support/in-process-agent.js";
import { readPair } from "./support/pair-check.js";

/**
 * A fleet must not rate-limit itself. One agent process (the daemon, one loop per certificate, all
 * concurrent) syncs 14 certificates under one exec auth plugin, against the real server with its default
 * failure limit (10 per address). Before: each certificate loop presented the stale token on its own,
 * so one expiry turned into 14 × 401 → every address behind the NAT blocked (429) for minutes.
 *
 * - A JWT that expires while the daemon runs is replaced shortly before its `exp`: one more plugin run
 *   for all 14 certificates, no 401 at all, every certificate renewed.
 * - A token the agent cannot see is stale (it arrives already expired): every loop gets 401
 *   `token_expired`, the plugin runs once more for all of them together, each request is retried once,
 *   and the server does not count an authentic-but-expired token as a guess: no 429, everything installed.
 */
const COUNT = 14;

describe("a fleet of certificates under one exec plugin", () => {
  let server: TestServer | undefined;
  let tokens: JwksIssuer | undefined;
  let agent: SpawnedAgent | undefined;

  afterEach(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill("SIGTERM");
      await agent.exited;
    }
    await server?.stop();
    await tokens?.close();
    agent = server = tokens = undefined;
  });

  async function setUp(leafValidity: string) {
    tokens = await startJwksIssuer();
    server = await startTestServer({
      leafValidity,
      checkInterval: "1h",
      issuers: [
        { issuerUrl: tokens.issuerUrl, audience: "certfleet", kind: "oidc", clockToleranceSeconds: 0 },
      ],
    });
    const identity = await server.createIdentity({
      name: "fleet-bot",
      method: "jwt",
      binding: { issuer: tokens.issuerUrl, subject: "fleet-bot" },
      grants: [".fleet.example.com"],
    });
    const dir = join(server.dir, "agent");
    await mkdir(dir);
    // First run (empty state): first.token; every later run: next.token. Each run is logged.
    await writeFile(
      join(dir, "plugin.sh"),
      [
        "state=$(cat)",
        `echo "run [$state]" >> "${join(dir, "plugin.log")}"`,
        `if [ -z "$state" ]; then cat "${join(dir, "first.token")}"; else cat "${join(dir, "next.token")}"; fi`,
        'printf "n=1" >&3',
      ].join("\n"),
    );
    const names = Array.from({ length: COUNT }, (_, i) => `svc-${i}.fleet.example.com`);
    const { path } = await writeAgentConfig(
      {
        api: { url: server.url, ca_bundle: server.caFile, uuid: identity.id },
        auth: { method: "exec", command: `sh ${join(dir, "plugin.sh")}` },
        state_dir: "state",
        renew: { jitter: "300ms" },
        certificates: names.map((name, i) => ({
          name: `svc-${i}`,
          domains: [name],
          outputs: { pem: { cert: `out/${i}/cert.pem`, key: `out/${i}/key.pem` } },
        })),
      },
      dir,
    );
    const sign = (expInSeconds: number) =>
      tokens!.sign({
        sub: "fleet-bot",
        aud: "certfleet",
        exp: Math.floor(Date.now() / 1000) + expInSeconds,
      });
    return { dir, path, names, sign };
  }

  const serials = async (dir: string) =>
    Promise.all(
      Array.from({ length: COUNT }, (_, i) =>
        readFile(join(dir, `state/certs/svc-${i}/current/manifest.json`), "utf8").then(
          (t) => (JSON.parse(t) as { serial: string }).serial,
          () => undefined,
        ),
      ),
    );
  const pluginRuns = async (dir: string) =>
    (await readFile(join(dir, "plugin.log"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
  const denials = async () => {
    await new Promise((r) => setTimeout(r, 300)); // the audit sink writes in batches
    return (await server!.cf.storage.audit.listAudit({ limit: 1000, type: "auth.deny" })).map(
      (e) => e.reason ?? "",
    );
  };

  it("a JWT that expires while the daemon runs: one refresh before exp, no 401, every certificate renewed", async () => {
    const { dir, path, names, sign } = await setUp("9s");
    // Long enough to be fresh when the agent (a cold process) first asks, short enough to expire while
    // the certificates (9 s lifetime) renew again and again.
    const firstExp = Date.now() + 25_000;
    await writeFile(join(dir, "first.token"), await sign(25));
    await writeFile(join(dir, "next.token"), await sign(3600));

    agent = spawnAgent(["agent", "--config", path], { cwd: dir });
    await waitFor(async () => (await serials(dir)).every(Boolean), 60_000, "every first install");
    await waitFor(() => Date.now() > firstExp, 30_000, "the first token's expiry");
    const afterExpiry = await serials(dir);
    await waitFor(
      async () => (await serials(dir)).every((s, i) => s !== afterExpiry[i]),
      30_000,
      "every certificate renewed after the first token expired",
    );
    agent.child.kill("SIGTERM");
    const run = await agent.exited;
    expect(run.code, run.stderr).toBe(0);

    expect(await pluginRuns(dir)).toEqual(["run []", "run [n=1]"]);
    expect(await denials()).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain("auth_rate_limited");
    for (const [i, name] of names.entries()) {
      const pair = await readPair(join(dir, `out/${i}/cert.pem`), join(dir, `out/${i}/key.pem`));
      expect(pair.matches).toBe(true);
      expect(pair.names).toEqual([name]);
    }
  }, 150_000);

  it("a token that is already stale: 401 token_expired for each loop, one plugin run for all, no 429", async () => {
    const { dir, path, names, sign } = await setUp("1h");
    await writeFile(join(dir, "first.token"), await sign(-3600));
    await writeFile(join(dir, "next.token"), await sign(3600));

    agent = spawnAgent(["agent", "--config", path], { cwd: dir });
    await waitFor(async () => (await serials(dir)).every(Boolean), 60_000, "every certificate installed");
    agent.child.kill("SIGTERM");
    const run = await agent.exited;
    expect(run.code, run.stderr).toBe(0);

    expect(await pluginRuns(dir)).toEqual(["run []", "run [n=1]"]);
    const denied = await denials();
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.length).toBeLessThanOrEqual(COUNT);
    expect(denied.every((r) => r.startsWith("jwt_expired"))).toBe(true);
    expect(run.stdout + run.stderr).not.toContain("auth_rate_limited");
    for (const [i, name] of names.entries()) {
      const pair = await readPair(join(dir, `out/${i}/cert.pem`), join(dir, `out/${i}/key.pem`));
      expect(pair.matches).toBe(true);
      expect(pair.names).toEqual([name]);
    }
  }, 120_000);

  it("401 identity_mismatch: a fresh token cannot help, so the plugin is not run again", async () => {
    const { dir, path, sign } = await setUp("1h");
    await writeFile(join(dir, "first.token"), await sign(3600));
    await writeFile(join(dir, "next.token"), await sign(3600));
    // the same agent, but claiming to be another identity than its token proves
    const other = await server!.createIdentity({
      name: "someone-else",
      method: "jwt",
      binding: { issuer: tokens!.issuerUrl, subject: "someone-else" },
      grants: [".fleet.example.com"],
    });
    const config = (await readFile(path, "utf8")).replace(/uuid: .*/, `uuid: ${other.id}`);
    await writeFile(path, config);
    const { runAgent } = await import("./support/agent-process.js");
    const run = await runAgent(["agent", "--config", path, "--once", "--json"], { cwd: dir });
    expect(run.code).toBe(3);
    const report = JSON.parse(run.stdout) as { certificates: { error?: { code: string } }[] };
    expect(report.certificates[0]?.error?.code).toBe("identity_mismatch");
    expect(await pluginRuns(dir)).toEqual(["run []"]);
    expect(await denials()).toHaveLength(1); // the first refusal stops the run: no retry, no other certificate
  }, 120_000);
});
