import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startOidcProvider, type OidcProviderHarness } from "../harness/oidc-provider.js";
import { startSshd, sshCommand, type SshdHarness } from "../harness/sshd.js";
import { listCertificate, run, sshKeygen } from "./openssh-tools.js";
import { KEYS, startSshTestServer, type SshTestServer } from "./ssh-server.js";

/**
 * `certfleet ssh login` (the built bin) and OIDC tokens from a real oidc-provider, against a real
 * sshd: the token's `sub` (the client id, fleet-agent) is its SSH principal through the issuer's
 * sshPrincipalsClaim.
 */
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

let oidc: OidcProviderHarness;
let server: SshTestServer;
let sshd: SshdHarness;
let dir: string;
let agentPid: number | undefined;
let agentSocket: string;

async function cli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: dir, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cf-ssh-login-"));
  oidc = await startOidcProvider();
  server = await startSshTestServer({
    issuers: [{ issuerUrl: oidc.issuer, audience: oidc.resource, sshPrincipalsClaim: "sub" }],
  });
  await writeFile(join(dir, "ca.pem"), server.caPem);
  const ca = await server.request("GET", "/ssh/user_ca.pub");
  sshd = await startSshd({ trustedUserCaKeys: ca.text, principals: { root: [oidc.clientId, "alice"] } });
  agentSocket = join(dir, "agent.sock");
  const started = await run("ssh-agent", ["-a", agentSocket, "-s"]);
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]);
  expect(agentPid).toBeGreaterThan(0);
});

afterAll(async () => {
  if (agentPid) process.kill(agentPid, "SIGTERM");
  await sshd?.stop();
  await server?.stop();
  await oidc?.close();
  await rm(dir, { recursive: true, force: true });
});

/** An exec plugin that first prints a token the server refuses, then (given that state) the real one. */
async function execPluginConfig(name: string, token: string): Promise<string> {
  const tokenFile = join(dir, `${name}.token`);
  await writeFile(tokenFile, token);
  const log = join(dir, `${name}.runs`);
  const plugin = join(dir, `${name}.sh`);
  await writeFile(
    plugin,
    [
      "#!/bin/sh",
      "state=$(cat)",
      `echo "run state=[$state]" >> ${log}`,
      'if [ -z "$state" ]; then printf "not-a-valid-token"; printf "first" >&3; exit 0; fi',
      `cat ${tokenFile}`,
      'printf "second" >&3',
    ].join("\n") + "\n",
  );
  await chmod(plugin, 0o755);
  const config = join(dir, `${name}.yaml`);
  await writeFile(
    config,
    stringify({
      api: { url: server.url, ca_bundle: join(dir, "ca.pem"), timeout: "30s" },
      auth: { method: "exec", command: [plugin] },
      log_level: "warn",
    }),
  );
  return config;
}

describe("user certificates from OIDC tokens and certfleet ssh login", () => {
  it("an oidc-provider access token gets a certificate for its sub, which logs in; other principals are refused", async () => {
    const token = await oidc.getToken();
    const keyPath = join(dir, "oidc-key");
    const publicKey = await sshKeygen(keyPath, "ed25519");
    const post = (principals: string[]) =>
      server.request("POST", "/api/ssh/certificate", {
        headers: { authorization: `Bearer ${token}` },
        body: { publicKey, principals, type: "user" },
      });
    const denied = await post(["alice"]);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("principal_not_granted");
    const res = await post([oidc.clientId]);
    expect(res.status).toBe(200);
    expect(res.body.keyId).toBe(`jwt:${oidc.issuer}#${oidc.clientId}`);
    await writeFile(`${keyPath}-cert.pub`, res.body.certificate + "\n");
    const listed = await listCertificate(`${keyPath}-cert.pub`);
    expect(listed.principals).toEqual([oidc.clientId]);
    expect(listed.keyId).toBe(res.body.keyId);
    expect(listed.extensions).toEqual([
      "permit-X11-forwarding",
      "permit-agent-forwarding",
      "permit-port-forwarding",
      "permit-pty",
      "permit-user-rc",
    ]);
    const login = await sshCommand({
      port: sshd.port,
      user: "root",
      keyPath,
      certificatePath: `${keyPath}-cert.pub`,
    });
    expect(login.code).toBe(0);
    expect(login.stdout.trim()).toBe("certfleet-ssh-ok");
  });

  it("ssh login with the exec plugin (401 → re-run with state) puts key + certificate into ssh-agent", async () => {
    const config = await execPluginConfig("agent", await oidc.getToken());
    const res = await cli(["ssh", "login", "--principal", oidc.clientId, "--config", config, "--json"], {
      SSH_AUTH_SOCK: agentSocket,
    });
    expect(res.stderr).not.toContain("certfleet: ");
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({ ok: true, installedTo: "ssh-agent", principals: [oidc.clientId] });
    // the plugin ran twice: the server refused the first token, the second run got the first run's state
    expect(await readFile(join(dir, "agent.runs"), "utf8")).toBe("run state=[]\nrun state=[first]\n");

    const listed = await run("ssh-add", ["-L"], { env: { SSH_AUTH_SOCK: agentSocket } });
    expect(listed.stdout).toContain(out.certificate.split(" ").slice(0, 2).join(" "));
    const login = await sshCommand({ port: sshd.port, user: "root", env: { SSH_AUTH_SOCK: agentSocket } });
    expect(login.code).toBe(0);
    expect(login.stdout.trim()).toBe("certfleet-ssh-ok");
    expect(await sshd.log()).toContain(`ID jwt:${oidc.issuer}#${oidc.clientId} (serial ${out.serial})`);
  });

  it("ssh login --key writes KEY-cert.pub beside the key and ssh -i uses it", async () => {
    const config = await execPluginConfig("file", await oidc.getToken());
    const keyPath = join(dir, "id_ed25519");
    await sshKeygen(keyPath, "ed25519");
    const res = await cli([
      "ssh",
      "login",
      "-p",
      oidc.clientId,
      "--key",
      keyPath,
      "--validity",
      "1h",
      "--config",
      config,
    ]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stderr).toContain(`→ ${keyPath}-cert.pub`);
    const listed = await listCertificate(`${keyPath}-cert.pub`);
    expect(listed.type).toBe("ssh-ed25519-cert-v01@openssh.com user certificate");
    expect(listed.principals).toEqual([oidc.clientId]);
    const login = await sshCommand({ port: sshd.port, user: "root", keyPath });
    expect(login.code).toBe(0);
  });

  it("ssh login for a principal outside the grant fails with the server's code and writes nothing", async () => {
    const config = join(dir, "apikey.yaml");
    await writeFile(
      config,
      stringify({
        api: { url: server.url, ca_bundle: join(dir, "ca.pem") },
        auth: { method: "api_key", api_key: KEYS.alice },
      }),
    );
    const keyPath = join(dir, "id_refused");
    await sshKeygen(keyPath, "ed25519");
    const res = await cli(["ssh", "login", "-p", "root", "--key", keyPath, "--config", config, "--json"]);
    expect(res.code).not.toBe(0);
    expect(JSON.parse(res.stdout).error.code).toBe("principal_not_granted");
    await expect(readFile(`${keyPath}-cert.pub`)).rejects.toMatchObject({ code: "ENOENT" });
    const noAgent = await cli(["ssh", "login", "-p", "alice", "--config", config, "--json"]);
    expect(JSON.parse(noAgent.stdout).error.code).toBe("ssh_login_no_target");
  });
});
