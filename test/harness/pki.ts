import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Verify leaf ← chain ← root with the real `openssl verify`; resolves to openssl's output or throws. */
export async function opensslVerify(
  rootPem: string,
  chainPem: string,
  leafPem: string,
  options: { purpose?: string } = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cf-verify-"));
  try {
    await writeFile(join(dir, "root.pem"), rootPem);
    await writeFile(join(dir, "chain.pem"), chainPem || rootPem);
    await writeFile(join(dir, "leaf.pem"), leafPem);
    const args = ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "chain.pem")];
    if (options.purpose) args.push("-purpose", options.purpose);
    const { stdout } = await run("openssl", [...args, join(dir, "leaf.pem")]);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function keyMatches(privateKeyPem: string, certPem: string): boolean {
  const a = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: "spki", format: "der" });
  const b = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return a.equals(b);
}

export function sanDnsNames(certPem: string): string[] {
  return (new X509Certificate(certPem).subjectAltName ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4))
    .sort();
}
