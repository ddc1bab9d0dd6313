import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { startSpiffeWorkloadApi, type SpiffeWorkloadApi } from "../harness/spiffe-workload-api.js";
import { runAgent, writeAgentConfig } from "./support/agent-process.js";
import { startTestServer, type TestServer } from "./support/certfleet-server.js";
import { readPair } from "./support/pair-check.js";

/**
 * The agent as a process with SPIFFE (a JWT-SVID from a Workload API server on a Unix socket, and the
 * SPIFFE_SVID_PATH file override) and with an external auth plugin following the exec protocol,
 * including the server's 401 making the agent re-invoke the plugin (with its state) and retry once.
 */
const SPIFFE_ID = "spiffe://example.org/edge/agent-5";

describe("agent end to end: spiffe and exec plugin", () => {
  let server: TestServer;
  let trustDomainKeys: JwksIssuer;
  let tokens: JwksIssuer;
  let workloadApi: SpiffeWorkloadApi;
  let root: string;

  beforeAll(async () => {
    [trustDomainKeys, tokens] = await Promise.all([startJwksIssuer(), startJwksIssuer()]);
    server = await startTestServer({
      issuers: [
        {
          kind: "spiffe",
          trustDomain: "example.org",
          bundleEndpointUrl: trustDomainKeys.bundleUrl,
          audience: "certfleet",
        },
        { issuerUrl: tokens.issuerUrl, audience: "certfleet", kind: "oidc" },
      ],
    });
    workloadApi = await startSpiffeWorkloadApi(async ({ audience }) => [
      {
        spiffe_id: SPIFFE_ID,
        svid: await trustDomainKeys.sign({ sub: SPIFFE_ID, aud: audience, iss: undefined }),
      },
    ]);
    root = join(server.dir, "agents");
    await mkdir(root);
  });
  afterAll(async () => {
    await workloadApi?.close();
    await server?.stop();
    await Promise.all([trustDomainKeys?.close(), tokens?.close()]);
  });

  async function agentDir(name: string, auth: Record<string, unknown>, domain: string, apiUuid: string) {
    const dir = join(root, name);
    await mkdir(dir);
    const { path } = await writeAgentConfig(
      {
        api: { url: server.url, ca_bundle: server.caFile, uuid: apiUuid },
        auth,
        state_dir: "state",
        certificates: [
          { name: "svc", domains: [domain], outputs: { pem: { cert: "cert.pem", key: "key.pem" } } },
        ],
      },
      dir,
    );
    return { dir, path };
  }

  it("spiffe: a JWT-SVID for the audience over the Workload API socket (with the security header)", async () => {
    const identity = await server.createIdentity({
      name: "edge-agent-5",
      method: "spiffe",
      binding: { spiffeId: SPIFFE_ID },
      grants: ["edge-5.example.com"],
    });
    const { dir, path } = await agentDir(
      "spiffe",
      { method: "spiffe", workload_api_socket: workloadApi.address, audience: "certfleet" },
      "edge-5.example.com",
      identity.id,
    );
    const result = await runAgent(["agent", "--config", path, "--once", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const pair = await readPair(join(dir, "cert.pem"), join(dir, "key.pem"));
    expect(pair.matches).toBe(true);
    expect(pair.names).toEqual(["edge-5.example.com"]);
    expect(workloadApi.calls.at(-1)).toEqual({
      audience: ["certfleet"],
      spiffeId: "",
      hadSecurityHeader: true,
    });
  });

  it("spiffe: SPIFFE_SVID_PATH names the SVID file and the socket is not used", async () => {
    const identity = await server.createIdentity({
      name: "edge-agent-6",
      method: "spiffe",
      binding: { spiffeId: "spiffe://example.org/edge/agent-6" },
      grants: ["edge-6.example.com"],
    });
    const svidFile = join(root, "jwt-svid.token");
    await writeFile(
      svidFile,
      await trustDomainKeys.sign({
        sub: "spiffe://example.org/edge/agent-6",
        aud: "certfleet",
        iss: undefined,
      }),
    );
    const calls = workloadApi.calls.length;
    const { dir, path } = await agentDir(
      "spiffe-file",
      { method: "spiffe", workload_api_socket: "unix:///nonexistent/api.sock" },
      "edge-6.example.com",
      identity.id,
    );
    const result = await runAgent(["agent", "--config", path, "--once"], {
      env: { SPIFFE_SVID_PATH: svidFile },
    });
    expect(result.code, result.stderr).toBe(0);
    expect((await readPair(join(dir, "cert.pem"), join(dir, "key.pem"))).matches).toBe(true);
    expect(workloadApi.calls.length).toBe(calls);
  });

  it("exec: stdin state (empty first), token on stdout, state on fd 3, stderr relayed; a 401 re-invokes once", async () => {
    const identity = await server.createIdentity({
      name: "laptop-ci",
      method: "jwt",
      binding: { issuer: tokens.issuerUrl, subject: "ci-bot" },
      grants: ["ci.example.com"],
    });
    const dir = join(root, "exec-files");
    await mkdir(dir);
    await writeFile(join(dir, "good.token"), await tokens.sign({ sub: "ci-bot", aud: "certfleet" }));
    // First call: no state → a token the server refuses, state n=1. Next call: state n=1 → a good token.
    await writeFile(
      join(dir, "plugin.sh"),
      [
        "state=$(cat)",
        'printf "%s\\n" "[$state]" >> "$PLUGIN_LOG"',
        'echo "plugin: called with state [$state]" >&2',
        'if [ -z "$state" ]; then printf "stale-token"; printf "n=1" >&3; exit 0; fi',
        'cat "$GOOD_TOKEN"; printf "n=2" >&3',
      ].join("\n"),
    );
    const { dir: agent, path } = await agentDir(
      "exec",
      { method: "exec", command: `sh ${join(dir, "plugin.sh")}` },
      "ci.example.com",
      identity.id,
    );
    const result = await runAgent(["agent", "--config", path, "--once"], {
      env: { PLUGIN_LOG: join(dir, "calls.log"), GOOD_TOKEN: join(dir, "good.token") },
    });
    expect(result.code, result.stderr).toBe(0);
    expect((await readFile(join(dir, "calls.log"), "utf8")).trim().split("\n")).toEqual(["[]", "[n=1]"]);
    expect(result.stderr).toContain("auth plugin: plugin: called with state [n=1]");
    const pair = await readPair(join(agent, "cert.pem"), join(agent, "key.pem"));
    expect(pair.matches).toBe(true);
  });

  it("exec: a plugin that fails exits 3 and is not retried", async () => {
    const dir = join(root, "exec-fail");
    await mkdir(dir);
    await writeFile(join(dir, "plugin.sh"), 'echo called >> "$PLUGIN_LOG"; echo "no session" >&2; exit 7');
    const { path } = await agentDir(
      "exec-fail-agent",
      { method: "exec", command: ["sh", join(dir, "plugin.sh")] },
      "ci.example.com",
      "00000000-0000-4000-8000-000000000000",
    );
    const result = await runAgent(["agent", "--config", path, "--once", "--json"], {
      env: { PLUGIN_LOG: join(dir, "calls.log") },
    });
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout).certificates[0].error.code).toBe("plugin_failed");
    expect((await readFile(join(dir, "calls.log"), "utf8")).trim().split("\n")).toHaveLength(1);
  });
});
