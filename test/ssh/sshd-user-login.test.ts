import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd, sshCommand, type SshdHarness } from "../harness/sshd.js";
import { listCertificate, run, sshKeygen } from "./openssh-tools.js";
import { KEYS, startSshTestServer, type SshTestServer } from "./ssh-server.js";

let server: SshTestServer;
let sshd: SshdHarness;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cf-ssh-user-"));
  server = await startSshTestServer();
  const ca = await server.request("GET", "/ssh/user_ca.pub");
  sshd = await startSshd({ trustedUserCaKeys: ca.text, principals: { root: ["alice"] } });
});

afterAll(async () => {
  await sshd?.stop();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A new key pair and a certificate for it from POST /api/ssh/certificate, written as KEY-cert.pub. */
async function certify(name: string, body: Record<string, unknown> = {}, key: string = KEYS.alice) {
  const keyPath = join(dir, name);
  const publicKey = await sshKeygen(keyPath, "ed25519");
  const res = await server.request("POST", "/api/ssh/certificate", {
    key,
    body: { publicKey, principals: ["alice"], type: "user", ...body },
  });
  if (res.status === 200) await writeFile(`${keyPath}-cert.pub`, res.body.certificate + "\n");
  return { keyPath, certPath: `${keyPath}-cert.pub`, publicKey, res };
}

describe("user certificates against a real sshd", () => {
  it("serves the user CA as one OpenSSH public-key line", async () => {
    const res = await server.request("GET", "/ssh/user_ca.pub");
    expect(res.status).toBe(200);
    const lines = res.text.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ certfleet-user-ca-0$/);
    const host = await server.request("GET", "/ssh/host_ca.pub");
    expect(host.text).toMatch(/^@cert-authority \* ssh-ed25519 AAAA\S+ certfleet-host-ca-0\n$/);
    expect(host.text).not.toContain(lines[0]!.split(" ")[1]!);
  });

  it("an API key's certificate logs in with ssh -o BatchMode=yes, and ssh-keygen -L shows every field", async () => {
    const { keyPath, certPath, res } = await certify("alice1");
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(
      ["certificate", "keyId", "principals", "serial", "type", "validAfter", "validBefore"].sort(),
    );
    expect(res.body.certificate).toMatch(/^ssh-ed25519-cert-v01@openssh\.com /);
    expect(res.body.principals).toEqual(["alice"]);
    expect(res.body.keyId).toBe("apikey:alice");
    expect(res.body.type).toBe("user");
    const validAfter = new Date(res.body.validAfter).getTime();
    const validBefore = new Date(res.body.validBefore).getTime();
    // 16 h by default, starting a minute in the past
    expect(validBefore - validAfter).toBe(16 * 3_600_000 + 60_000);

    const listed = await listCertificate(certPath);
    expect(listed.type).toBe("ssh-ed25519-cert-v01@openssh.com user certificate");
    expect(listed.keyId).toBe("apikey:alice");
    expect(listed.serial).toBe(res.body.serial);
    expect(listed.principals).toEqual(["alice"]);
    expect(listed.valid).toBe(
      `from ${res.body.validAfter.slice(0, 19)} to ${res.body.validBefore.slice(0, 19)}`,
    );
    expect(listed.extensions).toEqual(["permit-pty"]); // the grant's sshExtensions
    expect(listed.criticalOptions).toEqual([]);

    const login = await sshCommand({ port: sshd.port, user: "root", keyPath, certificatePath: certPath });
    expect(login.stderr).toBe("");
    expect(login.code).toBe(0);
    expect(login.stdout.trim()).toBe("certfleet-ssh-ok");
    expect(await sshd.log()).toMatch(/Accepted publickey for root .* ID apikey:alice/);
  });

  it("never issues a principal outside the grant (403 principal_not_granted, audited)", async () => {
    const { res } = await certify("alice-root", { principals: ["alice", "root"] });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("principal_not_granted");
    const host = await certify("alice-host", { type: "host", principals: ["alice"] });
    expect(host.res.status).toBe(403);
    expect(host.res.body.error.code).toBe("ssh_type_not_granted");
    const none = await certify("admin-none", {}, KEYS.admin);
    expect(none.res.status).toBe(403);
    expect(none.res.body.error.code).toBe("ssh_type_not_granted");
    const empty = await certify("alice-empty", { principals: [] });
    expect(empty.res.status).toBe(400);
    expect(empty.res.body.error.code).toBe("ssh_principals_empty");
    const anon = await server.request("POST", "/api/ssh/certificate", {
      body: { publicKey: "x", principals: ["alice"] },
    });
    expect(anon.status).toBe(401);

    await server.cf.app.ready();
    const events = await server.cf.storage.audit.listAudit({ limit: 50, type: "ssh.certificate.issue" });
    const denied = events.find((e) => e.outcome === "deny" && e.subject === "alice,root");
    expect(denied).toMatchObject({ actor: "apikey:alice", method: "api_key" });
    expect(denied!.reason).toContain("principal_not_granted");
    expect(events.some((e) => e.outcome === "success" && e.actor === "apikey:alice")).toBe(true);
  });

  it("caps the validity at the server's maximum and refuses anything longer", async () => {
    const long = await certify("alice-long", { validity: "8d" });
    expect(long.res.status).toBe(400);
    expect(long.res.body.error.code).toBe("ssh_validity_too_long");
    const ok = await certify("alice-2h", { validity: "2h" });
    expect(ok.res.status).toBe(200);
    const span = new Date(ok.res.body.validBefore).getTime() - new Date(ok.res.body.validAfter).getTime();
    expect(span).toBe(2 * 3_600_000 + 60_000);
  });

  it("an expired certificate is refused by sshd", async () => {
    const { keyPath, certPath, res } = await certify("alice-short", { validity: "1s" });
    expect(res.status).toBe(200);
    const validBefore = new Date(res.body.validBefore).getTime();
    while (Date.now() < validBefore + 1500) await new Promise((r) => setTimeout(r, 250));
    const login = await sshCommand({ port: sshd.port, user: "root", keyPath, certificatePath: certPath });
    expect(login.code).not.toBe(0);
    expect(login.stdout).not.toContain("certfleet-ssh-ok");
    expect(await sshd.log()).toMatch(/[Cc]ertificate invalid: expired/);
  });

  it("a certificate on the KRL is refused by sshd; others still log in", async () => {
    const revoked = await certify("alice-revoked");
    const kept = await certify("alice-kept");
    expect(
      (
        await sshCommand({
          port: sshd.port,
          user: "root",
          keyPath: revoked.keyPath,
          certificatePath: revoked.certPath,
        })
      ).code,
    ).toBe(0);

    const notAdmin = await server.request("POST", "/api/ssh/revoke", {
      key: KEYS.alice,
      body: { certificate: revoked.res.body.certificate },
    });
    expect(notAdmin.status).toBe(403);
    const res = await server.request("POST", "/api/ssh/revoke", {
      key: KEYS.admin,
      body: { certificate: revoked.res.body.certificate, reason: "laptop lost" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revoked: true, kind: "certificate", serial: revoked.res.body.serial });
    const again = await server.request("POST", "/api/ssh/revoke", {
      key: KEYS.admin,
      body: { certificate: revoked.res.body.certificate },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("already_revoked");

    const krl = await server.request("GET", "/ssh/revoked.krl");
    expect(krl.status).toBe(200);
    expect(krl.bytes.subarray(0, 8).toString("latin1")).toBe("SSHKRL\n\0");
    await writeFile(sshd.revokedKeysPath, krl.bytes);
    const query = await run("ssh-keygen", [
      "-Q",
      "-f",
      sshd.revokedKeysPath,
      revoked.certPath,
      kept.certPath,
    ]);
    const verdict = (path: string) =>
      query.stdout
        .split("\n")
        .find((l) => l.startsWith(path + " "))
        ?.split(": ")
        .pop();
    expect(verdict(revoked.certPath)).toBe("REVOKED");
    expect(verdict(kept.certPath)).toBe("ok");

    const refused = await sshCommand({
      port: sshd.port,
      user: "root",
      keyPath: revoked.keyPath,
      certificatePath: revoked.certPath,
    });
    expect(refused.code).not.toBe(0);
    expect(await sshd.log()).toMatch(/revoked/i);
    const stillOk = await sshCommand({
      port: sshd.port,
      user: "root",
      keyPath: kept.keyPath,
      certificatePath: kept.certPath,
    });
    expect(stillOk.code).toBe(0);
  });

  it("revokes a whole key: ssh-keygen -Q reports every certificate of it revoked", async () => {
    const keyed = await certify("alice-key-revoked");
    const res = await server.request("POST", "/api/ssh/revoke", {
      key: KEYS.admin,
      body: { publicKey: keyed.publicKey },
    });
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe("key");
    const krl = await server.request("GET", "/ssh/revoked.krl");
    const krlPath = join(dir, "key.krl");
    await writeFile(krlPath, krl.bytes);
    const query = await run("ssh-keygen", ["-Q", "-f", krlPath, `${keyed.keyPath}.pub`]);
    expect(query.stdout).toContain(`${keyed.keyPath}.pub (test): REVOKED`);
    expect(query.code).not.toBe(0);
    expect((await readFile(`${keyed.keyPath}.pub`, "utf8")).length).toBeGreaterThan(0);
  });
});
