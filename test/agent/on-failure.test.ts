import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";

/**
 * `auth.on_failure` as documented: run with `sh -c` when authentication fails, before the process
 * exits, with the method and error code in its environment; its own exit status is logged as a warning
 * and never changes the agent's exit code; not run for failures that are not authentication.
 */
describe("on_failure hook", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function agentWith(auth: Record<string, unknown>, apiUrl = server.url) {
    const dir = await mkdtemp(join(tmpdir(), "cf-hook-"));
    const { path } = await writeAgentConfig(
      {
        api: { url: apiUrl, ca_bundle: server.caFile, timeout: "3s" },
        auth,
        state_dir: "state",
        certificates: [{ name: "svc", domains: ["hook.example.com"] }],
      },
      dir,
    );
    return { dir, path };
  }

  it("runs before exit with the failure in its environment; a failing hook is only a warning", async () => {
    const { dir, path } = await agentWith({
      method: "api_key",
      api_key: "wrong-key-0123456789abcdefghij",
      // sleeps first: the agent must wait for it before exiting
      on_failure: `sleep 0.3; echo "$CERTFLEET_AUTH_METHOD $CERTFLEET_ERROR_CODE" > ${join("$HOOK_DIR", "hook.out")}; exit 9`,
    });
    const result = await runAgent(["agent", "--config", path, "--once"], { env: { HOOK_DIR: dir } });
    expect(result.code).toBe(3);
    expect(await readFile(join(dir, "hook.out"), "utf8")).toBe("api_key unauthenticated\n");
    const warning = result.stderr
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "on_failure hook failed");
    expect(warning).toMatchObject({ level: 40, result: "exited with 9" });
  });

  it("runs when no credential can be obtained at all (a missing token file), once per run", async () => {
    const { dir, path } = await agentWith({
      method: "kubernetes",
      token_file: "/nonexistent/token",
      on_failure: `echo ran >> ${join("$HOOK_DIR", "hook.out")}`,
    });
    const result = await runAgent(["agent", "--config", path, "--once", "--json"], {
      env: { HOOK_DIR: dir },
    });
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout).certificates[0].error.code).toBe("auth_token_file_unreadable");
    expect(await readFile(join(dir, "hook.out"), "utf8")).toBe("ran\n");
  });

  it("does not run for other failures (server unreachable: exit 5)", async () => {
    const { dir, path } = await agentWith(
      {
        method: "api_key",
        api_key: "any-key-0123456789abcdefghij",
        on_failure: `touch ${join("$HOOK_DIR", "hook.out")}`,
      },
      "https://127.0.0.1:9",
    );
    const result = await runAgent(["agent", "--config", path, "--once"], { env: { HOOK_DIR: dir } });
    expect(result.code).toBe(5);
    await expect(stat(join(dir, "hook.out"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
