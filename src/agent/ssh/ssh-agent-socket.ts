import type { KeyObject } from "node:crypto";
import { connect } from "node:net";
import { CertfleetError } from "../../core/errors.js";
import { certTypeName } from "../../ssh/certificate.js";
import { SshReader, SshWriter } from "../../ssh/wire.js";

/**
 * The one ssh-agent request `certfleet ssh login` needs (draft-miller-ssh-agent §3.2):
 * SSH_AGENTC_ADD_ID_CONSTRAINED with an Ed25519 private key and its certificate, constrained to the
 * certificate's lifetime, so the agent forgets the key when the certificate expires. The key never
 * touches the disk. Errors: `ssh_agent_unreachable` (no socket), `ssh_agent_refused` (FAILURE answer).
 */

const SSH_AGENT_FAILURE = 5;
const SSH_AGENT_SUCCESS = 6;
const SSH_AGENTC_ADD_ID_CONSTRAINED = 25;
const SSH_AGENT_CONSTRAIN_LIFETIME = 1;
const TIMEOUT_MS = 10_000;

export async function addCertificateToAgent(
  socketPath: string,
  identity: { privateKey: KeyObject; certificateBlob: Buffer; comment: string; lifetimeSeconds: number },
  signal?: AbortSignal,
): Promise<void> {
  const jwk = identity.privateKey.export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x)
    throw new Error("only Ed25519 keys are added to the agent");
  const seed = Buffer.from(jwk.d, "base64url");
  const pub = Buffer.from(jwk.x, "base64url");
  const body = new SshWriter()
    .byte(SSH_AGENTC_ADD_ID_CONSTRAINED)
    .string(certTypeName("ssh-ed25519"))
    .string(identity.certificateBlob)
    .string(pub)
    .string(Buffer.concat([seed, pub]))
    .string(identity.comment)
    .byte(SSH_AGENT_CONSTRAIN_LIFETIME)
    .uint32(Math.max(1, Math.floor(identity.lifetimeSeconds)))
    .toBuffer();
  const answer = await request(socketPath, body, signal);
  if (answer[0] === SSH_AGENT_SUCCESS) return;
  throw new CertfleetError(
    "ssh_agent_refused",
    answer[0] === SSH_AGENT_FAILURE
      ? "ssh-agent refused the key and certificate"
      : "unexpected ssh-agent answer",
    { status: 502, expose: true },
  );
}

function request(socketPath: string, body: Buffer, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let data = Buffer.alloc(0);
    const fail = (e: unknown) => {
      socket.destroy();
      reject(
        new CertfleetError("ssh_agent_unreachable", `cannot talk to ssh-agent at ${socketPath}`, {
          status: 502,
          expose: true,
          internal: e instanceof Error ? e.message : String(e),
        }),
      );
    };
    socket.setTimeout(TIMEOUT_MS, () => fail(new Error("timeout")));
    signal?.addEventListener("abort", () => fail(signal.reason), { once: true });
    socket.once("error", fail);
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readUInt32BE(0)) {
        socket.end();
        resolve(new SshReader(data, "agent answer").string());
      }
    });
    socket.once("connect", () => socket.write(new SshWriter().string(body).toBuffer()));
  });
}
