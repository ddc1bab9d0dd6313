import { lstat, mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError } from "../../src/core/errors.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { startInProcessAgent } from "./support/in-process-agent.js";
import { readPair } from "./support/pair-check.js";

/**
 * Installing, in-process with the real server: a failing reload is reported (exit 6, reload_failed)
 * while the installed pair stays complete and the previous generation stays on disk, and the reload is
 * retried until it works even though the content no longer changes; owner, group and modes; the Traefik
 * file lists every installed certificate.
 */
const FLEET = "agent-test-fleet-key-0123456789abcdef";

describe("installing and reloading", () => {
  let server: TestServer;
  let n = 0;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function agentFor(certificates: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
    const dir = join(server.dir, `install-${++n}`);
    await mkdir(dir);
    const started = await startInProcessAgent(
      {
        api: { url: server.url, ca_bundle: server.caFile },
        auth: { method: "api_key", api_key: FLEET },
        state_dir: "state",
        certificates,
        ...extra,
      },
      { baseDir: dir, env: { PATH: process.env.PATH, RELOAD_LOG: join(dir, "reloads") } },
    );
    return { dir, ...started };
  }

  it("a failing reload: exit 6, the new pair installed whole, the previous generation kept; retried until it works", async () => {
    const cert = (keyType: string, reload: string) => ({
      name: "web",
      domains: ["reload.example.com"],
      key_type: keyType,
      outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
      reload,
    });
    const ok = 'echo ok >> "$RELOAD_LOG"';
    const first = await agentFor([cert("ec256", ok)]);
    expect((await first.agent.runOnce(AbortSignal.timeout(30_000))).exitCode).toBe(0);
    await first.agent.close();
    const dir = first.dir;
    const store = join(dir, "state/certs/web");
    const generationA = (await readdir(store)).filter((e) => e.startsWith("g-"));

    // new content (another key type) with a reload command that fails
    const failing = await startInProcessAgent(
      {
        api: { url: server.url, ca_bundle: server.caFile },
        auth: { method: "api_key", api_key: FLEET },
        state_dir: "state",
        certificates: [cert("rsa2048", 'echo broken >> "$RELOAD_LOG"; exit 3')],
      },
      { baseDir: dir, env: { PATH: process.env.PATH, RELOAD_LOG: join(dir, "reloads") } },
    );
    const report = await failing.agent.runOnce(AbortSignal.timeout(30_000));
    expect(report.exitCode).toBe(6);
    expect(report.results[0]).toMatchObject({ ok: false, error: { code: "reload_failed" } });
    const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.keyPem).toContain("PRIVATE KEY");
    expect((await readdir(store)).filter((e) => e.startsWith("g-"))).toEqual(
      expect.arrayContaining(generationA),
    );

    // same agent, same content: the reload is still pending, so it runs again (and fails again)
    expect((await failing.agent.runOnce(AbortSignal.timeout(30_000))).exitCode).toBe(6);
    await failing.agent.close();
    expect((await readFile(join(dir, "reloads"), "utf8")).trim().split("\n")).toEqual([
      "ok",
      "broken",
      "broken",
    ]);
  });

  it("a reload pending from a failure runs once the command works, then no more", async () => {
    const { dir, agent } = await agentFor([
      {
        name: "web",
        domains: ["pending.example.com"],
        outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
        reload: 'test -e "$RELOAD_LOG.ok" && echo reloaded >> "$RELOAD_LOG"',
      },
    ]);
    expect((await agent.runOnce(AbortSignal.timeout(30_000))).exitCode).toBe(6);
    await import("node:fs/promises").then((fs) => fs.writeFile(join(dir, "reloads.ok"), ""));
    const second = await agent.runOnce(AbortSignal.timeout(30_000));
    expect(second.results[0]).toMatchObject({ ok: true, outcome: { changed: false, reloaded: true } });
    const third = await agent.runOnce(AbortSignal.timeout(30_000));
    expect(third.results[0]).toMatchObject({ ok: true, outcome: { changed: false, reloaded: false } });
    await agent.close();
  });

  it("owner, group and modes on every file; the Traefik file lists all certificates", async () => {
    const { dir, agent } = await agentFor(
      [
        {
          name: "a",
          domains: ["a.example.com"],
          owner: "nobody",
          group: 65534,
          mode: "0640",
          key_mode: "0400",
          outputs: {
            pem: { fullchain: "a/fullchain.pem", key: "a/key.pem" },
            pkcs12: { path: "a/a.p12", password: "x" },
          },
        },
        { name: "b", domains: ["b.example.com"] },
      ],
      { traefik: { path: "traefik.yml" } },
    );
    expect((await agent.runOnce(AbortSignal.timeout(30_000))).exitCode).toBe(0);
    await agent.close();
    for (const [file, mode] of [
      ["a/fullchain.pem", 0o640],
      ["a/key.pem", 0o400],
      ["a/a.p12", 0o400],
    ] as const) {
      const info = await stat(join(dir, file));
      expect([info.mode & 0o777, info.uid, info.gid], file).toEqual([mode, 65534, 65534]);
      expect((await lstat(join(dir, file))).isSymbolicLink()).toBe(true);
    }
    const traefik = parse(await readFile(join(dir, "traefik.yml"), "utf8"));
    expect(traefik.tls.certificates).toEqual([
      { certFile: join(dir, "a/fullchain.pem"), keyFile: join(dir, "a/key.pem") },
      {
        certFile: join(dir, "state/certs/b/current/fullchain.pem"),
        keyFile: join(dir, "state/certs/b/current/key.pem"),
      },
    ]);
  });

  it("an unknown owner is a configuration error naming the field", async () => {
    await expect(
      agentFor([{ name: "x", domains: ["x.example.com"], owner: "no-such-user-here" }]),
    ).rejects.toSatisfy(
      (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === "certificates.0.owner"),
    );
  });
});
