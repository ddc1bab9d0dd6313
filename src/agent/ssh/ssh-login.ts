import { generateKeyPairSync, createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { CertfleetError, UpstreamError, ValidationError } from "../../core/errors.js";
import { parseCertificateLine } from "../../ssh/certificate.js";
import { parseSshPublicKey, sshBlobOfKey, sshPublicKeyLine } from "../../ssh/public-key.js";
import type { CertificateClient } from "../client/certificate-client.js";
import { writeFileAtomic } from "../install/atomic-file.js";
import { addCertificateToAgent } from "./ssh-agent-socket.js";

/**
 * `certfleet ssh login`: a user certificate for the next SSH connections, the flow an epithet-style
 * broker runs, with any of the agent's auth methods (the exec plugin and its 401 re-run included).
 *
 * - With `keyFile`: certify that key's public half (`KEY.pub`) and write `KEY-cert.pub` beside it
 *   atomically (mode 0644), which `ssh -i KEY` picks up by itself. The private key is never read.
 * - Otherwise, with an ssh-agent (`SSH_AUTH_SOCK`): make a fresh Ed25519 key in memory, certify it and
 *   add key + certificate to the agent with a lifetime equal to the certificate's; nothing is written.
 * - Neither: `ssh_login_no_target`.
 */
export interface SshLoginOptions {
  principals: string[];
  /** Private key path; its public key is read from `<keyFile>.pub`. */
  keyFile?: string | undefined;
  /** `SSH_AUTH_SOCK`. */
  agentSocket?: string | undefined;
  /** e.g. "8h"; default: the server's (16 h). */
  validity?: string | undefined;
}

export interface SshLoginResult {
  certificate: string;
  serial: string;
  keyId: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  /** Where the certificate went: a file path, or "ssh-agent". */
  installedTo: string;
}

export const sshCertificateAnswer = z.object({
  certificate: z.string().regex(/^\S+-cert-v01@openssh\.com \S+/),
  serial: z.string().regex(/^\d+$/),
  keyId: z.string(),
  principals: z.array(z.string()),
  validAfter: z.iso.datetime({ offset: true }),
  validBefore: z.iso.datetime({ offset: true }),
  type: z.enum(["user", "host"]),
});
export type SshCertificateAnswer = z.infer<typeof sshCertificateAnswer>;

/** POST /api/ssh/certificate through the agent's client; the answer's shape is checked. */
export async function requestSshCertificate(
  client: Pick<CertificateClient, "post">,
  request: { publicKey: string; principals: string[]; type: "user" | "host"; validity?: string | undefined },
  signal: AbortSignal,
): Promise<SshCertificateAnswer> {
  const text = await client.post(
    "/api/ssh/certificate",
    {
      publicKey: request.publicKey,
      principals: request.principals,
      type: request.type,
      ...(request.validity ? { validity: request.validity } : {}),
    },
    signal,
  );
  const parsed = sshCertificateAnswer.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new UpstreamError("server_answer_invalid", "the server's answer is not an SSH certificate", {
      retryable: false,
      internal: parsed.error.message.slice(0, 300),
    });
  }
  return parsed.data;
}

/** `id_ed25519` → `id_ed25519-cert.pub`, as ssh looks for it. */
export function certificatePathFor(keyFile: string): string {
  return keyFile.replace(/\.pub$/, "") + "-cert.pub";
}

export async function sshLogin(
  client: Pick<CertificateClient, "post">,
  options: SshLoginOptions,
  signal: AbortSignal,
): Promise<SshLoginResult> {
  if (options.principals.length === 0)
    throw new ValidationError("ssh_principals_empty", "name at least one principal (--principal)");
  if (options.keyFile) {
    const keyFile = options.keyFile.replace(/\.pub$/, "");
    const publicLine = await readFile(`${keyFile}.pub`, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new ValidationError("ssh_key_unreadable", `cannot read ${keyFile}.pub: ${e.code ?? e.message}`);
    });
    parseSshPublicKey(publicLine);
    const answer = await requestSshCertificate(
      client,
      {
        publicKey: publicLine.trim(),
        principals: options.principals,
        type: "user",
        validity: options.validity,
      },
      signal,
    );
    const path = certificatePathFor(keyFile);
    await writeFileAtomic(path, answer.certificate + "\n", { mode: 0o644 });
    return { ...summary(answer), installedTo: path };
  }
  if (options.agentSocket) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const publicLine = sshPublicKeyLine(sshBlobOfKey(createPublicKey(privateKey)), "certfleet");
    const answer = await requestSshCertificate(
      client,
      { publicKey: publicLine, principals: options.principals, type: "user", validity: options.validity },
      signal,
    );
    const cert = parseCertificateLine(answer.certificate);
    await addCertificateToAgent(
      options.agentSocket,
      {
        privateKey,
        certificateBlob: cert.blob,
        comment: `certfleet ${answer.keyId} serial ${answer.serial}`,
        lifetimeSeconds: (cert.validBefore.getTime() - Date.now()) / 1000,
      },
      signal,
    );
    return { ...summary(answer), installedTo: "ssh-agent" };
  }
  throw new CertfleetError(
    "ssh_login_no_target",
    "no ssh-agent (SSH_AUTH_SOCK is not set) and no --key: nowhere to put the certificate",
    { status: 400 },
  );
}

function summary(a: SshCertificateAnswer): Omit<SshLoginResult, "installedTo"> {
  return {
    certificate: a.certificate,
    serial: a.serial,
    keyId: a.keyId,
    principals: a.principals,
    validAfter: a.validAfter,
    validBefore: a.validBefore,
  };
}
