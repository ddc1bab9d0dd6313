import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, sshKeygen } from "../ssh/openssh-tools.js";

/**
 * A real OpenSSH server (Debian's /usr/sbin/sshd) on 127.0.0.1:<free port>, run as root in the
 * foreground with its own host key, pid file and log, for certificate tests. Users authenticate only
 * with certificates from `trustedUserCaKeys` whose principals appear in the AuthorizedPrincipalsFile
 * (one per login user, `principals[user]`); `revokedKeys` is the KRL file. The test stops it.
 */
export interface SshdHarness {
  port: number;
  dir: string;
  /** Public key line of the host key (what a host certificate is made for). */
  hostPublicKey: string;
  hostKeyPath: string;
  /** Where sshd reads HostCertificate (write it before `start` or call `restart`). */
  hostCertificatePath: string;
  trustedUserCaKeysPath: string;
  revokedKeysPath: string;
  log(): Promise<string>;
  /** SIGHUP: sshd re-reads its config, host keys and certificates. */
  reload(): void;
  pid(): number;
  stop(): Promise<void>;
}

export interface SshdOptions {
  trustedUserCaKeys: string;
  principals: Record<string, string[]>;
  /** Write a HostCertificate line (the file must exist when sshd starts). */
  hostCertificate?: string;
  revokedKeys?: Buffer;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, logPath: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`sshd exited (${child.exitCode}): ${await readFile(logPath, "utf8").catch(() => "")}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error("sshd did not start listening");
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startSshd(options: SshdOptions): Promise<SshdHarness> {
  await mkdir("/run/sshd", { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), "certfleet-sshd-"));
  const port = await freePort();
  const hostKeyPath = join(dir, "ssh_host_ed25519_key");
  const hostPublicKey = await sshKeygen(hostKeyPath, "ed25519");
  const hostCertificatePath = `${hostKeyPath}-cert.pub`;
  const trustedUserCaKeysPath = join(dir, "user_ca.pub");
  const revokedKeysPath = join(dir, "revoked.krl");
  const logPath = join(dir, "sshd.log");
  await writeFile(trustedUserCaKeysPath, options.trustedUserCaKeys);
  await writeFile(revokedKeysPath, options.revokedKeys ?? Buffer.alloc(0));
  await mkdir(join(dir, "principals"));
  for (const [user, list] of Object.entries(options.principals))
    await writeFile(join(dir, "principals", user), list.join("\n") + "\n");
  if (options.hostCertificate !== undefined) await writeFile(hostCertificatePath, options.hostCertificate);
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${hostKeyPath}`,
    ...(options.hostCertificate !== undefined ? [`HostCertificate ${hostCertificatePath}`] : []),
    `PidFile ${join(dir, "sshd.pid")}`,
    `TrustedUserCAKeys ${trustedUserCaKeysPath}`,
    `AuthorizedPrincipalsFile ${join(dir, "principals")}/%u`,
    `RevokedKeys ${revokedKeysPath}`,
    "AuthorizedKeysFile none",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "StrictModes no",
    "UsePAM no",
    "LogLevel VERBOSE",
    "MaxStartups 10:30:20",
    "LoginGraceTime 20",
  ].join("\n");
  const configPath = join(dir, "sshd_config");
  await writeFile(configPath, config + "\n");
  const check = await run("/usr/sbin/sshd", ["-t", "-f", configPath]);
  if (check.code !== 0) throw new Error(`sshd -t: ${check.stderr}`);
  const child = spawn("/usr/sbin/sshd", ["-D", "-f", configPath, "-E", logPath], { stdio: "ignore" });
  try {
    await waitForPort(port, child, logPath);
  } catch (e) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    dir,
    hostPublicKey,
    hostKeyPath,
    hostCertificatePath,
    trustedUserCaKeysPath,
    revokedKeysPath,
    log: () => readFile(logPath, "utf8").catch(() => ""),
    reload: () => void child.kill("SIGHUP"),
    pid: () => child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `ssh -o BatchMode=yes … <user>@<host> <command>` with no user config (HOME is a temp dir and -F
 * /dev/null); `hostName` is what the host certificate must name (connected via 127.0.0.1).
 */
export async function sshCommand(options: {
  port: number;
  user: string;
  keyPath?: string;
  certificatePath?: string;
  knownHostsPath?: string;
  hostName?: string;
  env?: NodeJS.ProcessEnv;
  command?: string;
}): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "PasswordAuthentication=no",
    "-p",
    String(options.port),
  ];
  if (options.knownHostsPath) {
    args.push("-o", `UserKnownHostsFile=${options.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes");
    args.push("-o", "GlobalKnownHostsFile=/dev/null");
  } else {
    args.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
  }
  if (options.hostName) args.push("-o", "HostName=127.0.0.1");
  if (options.keyPath) args.push("-o", "IdentitiesOnly=yes", "-i", options.keyPath);
  if (options.certificatePath) args.push("-o", `CertificateFile=${options.certificatePath}`);
  args.push(`${options.user}@${options.hostName ?? "127.0.0.1"}`, options.command ?? "echo certfleet-ssh-ok");
  return run("ssh", args, { env: { HOME: tmpdir(), ...options.env }, timeoutMs: 20_000 });
}
