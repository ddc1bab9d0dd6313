import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { startInProcessAgent, waitFor } from "./support/in-process-agent.js";
import { readPair } from "./support/pair-check.js";
import { startTcpSwitch } from "./support/tcp-switch.js";

/**
 * The daemon over time, in-process with the real server: it renews at the server-announced renewAt
 * (asking for the renewal itself), keeps the last good certificate while the server is unreachable and
 * backs off, recovers by itself, and runs on_failure once per transition into failing authentication.
 */
const FLEET = "agent-test-fleet-key-0123456789abcdef";

async function manifest(dir: string) {
  return JSON.parse(await readFile(join(dir, "state/certs/svc/current/manifest.json"), "utf8")) as {
    serial: string;
    renewAt: string;
  };
}

describe("agent daemon", () => {
  it("renews at renewAt (+ jitter): new certificate installed, reload run, key matches", async () => {
    const server = await startTestServer({ leafValidity: "9s", checkInterval: "1h" });
    const dir = join(server.dir, "agent");
    await mkdir(dir);
    const { agent } = await startInProcessAgent(
      {
        api: { url: server.url, ca_bundle: server.caFile },
        auth: { method: "api_key", api_key: FLEET },
        state_dir: "state",
        renew: { jitter: "300ms" },
        certificates: [
          {
            name: "svc",
            domains: ["short.example.com"],
            outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
            reload: `date +%s%N >> ${join(dir, "reloads")}`,
          },
        ],
      },
      { baseDir: dir },
    );
    const controller = new AbortController();
    const running = agent.runDaemon(controller.signal);
    try {
      await waitFor(
        async () => (await readFile(join(dir, "reloads"), "utf8").catch(() => "")).split("\n").length > 1,
        10_000,
        "first install",
      );
      const first = await manifest(dir);
      await waitFor(async () => (await manifest(dir)).serial !== first.serial, 15_000, "the renewal");
      const renewedAt = Date.now();
      expect(renewedAt).toBeGreaterThanOrEqual(new Date(first.renewAt).getTime());
      // the reload command runs after the files (and the manifest) are in place: wait for it
      const reloadLines = async () => (await readFile(join(dir, "reloads"), "utf8")).trim().split("\n");
      await waitFor(async () => (await reloadLines()).length >= 2, 5_000, "the reload after renewal");
      expect(await reloadLines()).toHaveLength(2);
      const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
      expect(pair.matches).toBe(true);
      expect(pair.leaf.serialNumber.toLowerCase()).toBe((await manifest(dir)).serial);
    } finally {
      controller.abort();
      await running;
      await agent.close();
      await server.stop();
    }
  }, 40_000);

  it("keeps the last good certificate while the server is down, backs off, and recovers by itself", async () => {
    const server = await startTestServer();
    const tcp = await startTcpSwitch(Number(new URL(server.url).port));
    const dir = join(server.dir, "agent");
    await mkdir(dir);
    const { agent, logs, messages } = await startInProcessAgent(
      {
        api: { url: `https://127.0.0.1:${tcp.port}`, ca_bundle: server.caFile, timeout: "2s" },
        auth: { method: "api_key", api_key: FLEET },
        state_dir: "state",
        renew: { max_interval: "200ms" },
        certificates: [
          {
            name: "svc",
            domains: ["steady.example.com"],
            outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
          },
        ],
      },
      { baseDir: dir, runtime: { retryDelay: (failures) => Math.min(100 * 2 ** (failures - 1), 400) } },
    );
    const controller = new AbortController();
    const running = agent.runDaemon(controller.signal);
    try {
      await waitFor(
        async () => (await manifest(dir).catch(() => undefined)) !== undefined,
        10_000,
        "first install",
      );
      const { serial } = await manifest(dir);
      tcp.down();
      const downSince = Date.now();
      while (Date.now() - downSince < 1500) {
        const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
        expect(pair.matches).toBe(true);
        expect(pair.leaf.serialNumber.toLowerCase()).toBe(serial);
        await new Promise((r) => setTimeout(r, 100));
      }
      const failures = logs.filter(
        (l) =>
          l.msg === "sync failed: cannot reach the certfleet server at " + `https://127.0.0.1:${tcp.port}`,
      );
      expect(failures.length).toBeGreaterThanOrEqual(3);
      expect(failures.map((l) => l.failures)).toEqual(failures.map((_, i) => i + 1));
      expect(failures.at(-1)).toMatchObject({ code: "server_unreachable", keeping: serial });
      // backing off: with 100, 200, 400, 400 ms waits, 1.5 s holds only a handful of attempts
      expect(failures.length).toBeLessThanOrEqual(7);
      tcp.up();
      await waitFor(() => messages().includes("sync works again"), 5_000, "recovery");
      expect((await manifest(dir)).serial).toBe(serial);
    } finally {
      controller.abort();
      await running;
      await agent.close();
      await tcp.close();
      await server.stop();
    }
  }, 40_000);

  describe("on_failure in the daemon", () => {
    let issuer: JwksIssuer;
    let server: TestServer;
    beforeAll(async () => {
      issuer = await startJwksIssuer();
      server = await startTestServer({
        issuers: [{ issuerUrl: issuer.issuerUrl, audience: "certfleet", kind: "kubernetes" }],
      });
    });
    afterAll(async () => {
      await server?.stop();
      await issuer?.close();
    });

    it("runs once when authentication starts failing, not on every retry, and again after a recovery", async () => {
      const identity = await server.createIdentity({
        name: "pod",
        method: "kubernetes",
        binding: { issuer: issuer.issuerUrl, namespace: "web", serviceAccount: "agent" },
        grants: ["pod.example.com"],
      });
      const dir = join(server.dir, "agent-hook");
      await mkdir(dir);
      const tokenFile = join(dir, "token");
      const hookLog = join(dir, "hook.log");
      const { agent, logs } = await startInProcessAgent(
        {
          api: { url: server.url, ca_bundle: server.caFile, uuid: identity.id },
          auth: {
            method: "kubernetes",
            token_file: tokenFile,
            on_failure: `echo "$CERTFLEET_AUTH_METHOD $CERTFLEET_ERROR_CODE" >> ${hookLog}`,
          },
          state_dir: "state",
          renew: { max_interval: "100ms" },
          certificates: [
            {
              name: "svc",
              domains: ["pod.example.com"],
              outputs: { pem: { cert: "cert.pem", key: "key.pem" } },
            },
          ],
        },
        { baseDir: dir, env: { PATH: process.env.PATH }, runtime: { retryDelay: () => 100 } },
      );
      const hookLines = async () =>
        (await readFile(hookLog, "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
      const failures = () => logs.filter((l) => String(l.msg).startsWith("sync failed")).length;
      const controller = new AbortController();
      const running = agent.runDaemon(controller.signal);
      try {
        await waitFor(() => failures() >= 4, 10_000, "repeated failures");
        expect(await hookLines()).toEqual(["kubernetes auth_token_file_unreadable"]);

        await writeFile(
          tokenFile,
          await issuer.sign({ sub: "system:serviceaccount:web:agent", aud: "certfleet" }),
        );
        await waitFor(
          async () =>
            (await readPair(join(dir, "cert.pem"), join(dir, "key.pem")).catch(() => undefined))?.matches ===
            true,
          10_000,
          "install",
        );
        await rm(tokenFile);
        const before = failures();
        await waitFor(() => failures() >= before + 3, 10_000, "failures again");
        expect(await hookLines()).toEqual([
          "kubernetes auth_token_file_unreadable",
          "kubernetes auth_token_file_unreadable",
        ]);
      } finally {
        controller.abort();
        await running;
        await agent.close();
      }
    }, 40_000);
  });
});
