import { execFile } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import sshpk from "sshpk";

/** Run an OpenSSH tool; TZ=UTC so `ssh-keygen -L` prints validity in UTC. */
export async function run(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: { ...process.env, TZ: "UTC", ...options.env }, timeout: options.timeoutMs ?? 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

export const execFileAsync = promisify(execFile);

/** `ssh-keygen -t TYPE` without a passphrase; returns the public-key line. */
export async function sshKeygen(path: string, type: string, bits?: number): Promise<string> {
  const args = ["-q", "-t", type, "-N", "", "-C", "test", "-f", path];
  if (bits) args.push("-b", String(bits));
  const r = await run("ssh-keygen", args);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return (await import("node:fs/promises")).readFile(`${path}.pub`, "utf8");
}

/** Write a PKCS#8 private key as an OpenSSH private key file (for `ssh-keygen -s`). */
export async function writeOpenSshPrivateKey(path: string, pkcs8Pem: string): Promise<void> {
  createPrivateKey(pkcs8Pem); // fail early on garbage
  await writeFile(path, sshpk.parsePrivateKey(pkcs8Pem, "pkcs8").toString("openssh"), { mode: 0o600 });
}

/** `ssh-keygen -L -f FILE` parsed into its labelled fields. */
export async function listCertificate(path: string): Promise<{
  text: string;
  type: string;
  keyId: string;
  serial: string;
  valid: string;
  signingCa: string;
  principals: string[];
  criticalOptions: string[];
  extensions: string[];
}> {
  const r = await run("ssh-keygen", ["-L", "-f", path]);
  if (r.code !== 0) throw new Error(`ssh-keygen -L failed: ${r.stderr}`);
  const text = r.stdout;
  const field = (name: string) => new RegExp(`^\\s*${name}: (.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
  const list = (name: string) => {
    const m = new RegExp(`^\\s*${name}: *\\n((?:\\s{16}.*\\n?)*)`, "m").exec(text);
    return m
      ? m[1]!
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l.length > 0)
      : [];
  };
  return {
    text,
    type: field("Type"),
    keyId: field("Key ID").replace(/^"|"$/g, ""),
    serial: field("Serial"),
    valid: field("Valid"),
    signingCa: field("Signing CA"),
    principals: list("Principals"),
    criticalOptions: list("Critical Options"),
    extensions: list("Extensions"),
  };
}
