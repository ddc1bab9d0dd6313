import { CertfleetError, ValidationError, throwIfAborted } from "../core/errors.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { KeyValueStore } from "../storage/storage.js";
import { generateSshCaKeyPem, loadSshCaKey, type SshCaKey, type SshCaKeyType } from "./ca-key.js";
import {
  DEFAULT_USER_EXTENSIONS,
  certificateLine,
  parseCertificateLine,
  randomSshSerial,
  signCertificate,
  type SshCertificateType,
} from "./certificate.js";
import { encodeKrl } from "./krl.js";
import { parseSshPublicKey, type SshPublicKey } from "./public-key.js";
import type { SshGrant } from "./ssh-grant.js";

/**
 * certfleet's SSH CA: a user CA key and a host CA key, each created on first start (Ed25519 unless
 * configured otherwise) and kept in Storage under the namespace "ssh-ca" with create-once writes:
 *
 *   <type>-key:<n>    PKCS#8 PEM of generation n of the user / host CA key, written { secret: true }
 *   <type>-state      { current: n, published: [n, …] }: which key signs, which keys are published
 *   revocation:<n>    the revocation log, one entry per slot n = 0, 1, 2 … (taken with ifAbsent)
 *
 * Rotation: `rotate(type)` creates generation n+1 and makes it current while the old key stays
 * published (sshd and known_hosts trust both); `retire(type)` stops publishing everything but the
 * current key. Every call reads the state, so all replicas switch at once. Keys never change once
 * written, so imported keys are cached by generation.
 *
 * Revocation: entries are appended to the log (certificate serials under the CA key that signed
 * them, or whole public keys); `krl()` builds the OpenSSH KRL from the log, caching what it has read.
 * Entries of certificates that have expired are left out.
 *
 * Error codes: ssh_validity_invalid / ssh_validity_too_long (400), ssh_certificate_not_issued_here
 * (400), already_revoked (409); the public-key and certificate parsers' codes (400).
 */
export interface SshCa {
  /** Published CA public-key lines for `type`: the current key first, then older ones in a rotation. */
  publicKeys(type: SshCertificateType, signal?: AbortSignal): Promise<string[]>;
  issue(request: SshCertificateRequest, signal?: AbortSignal): Promise<IssuedSshCertificate>;
  /** Make a new CA key current; the previous one stays published until `retire`. */
  rotate(type: SshCertificateType, signal?: AbortSignal): Promise<SshCaState>;
  /** Stop publishing every key but the current one (the end of a rotation). */
  retire(type: SshCertificateType, signal?: AbortSignal): Promise<SshCaState>;
  revoke(request: SshRevokeRequest, signal?: AbortSignal): Promise<SshRevocation>;
  /** The KRL (PROTOCOL.krl) of everything revoked and not yet expired. */
  krl(signal?: AbortSignal): Promise<Buffer>;
}

export interface SshCertificateRequest {
  publicKey: SshPublicKey;
  type: SshCertificateType;
  principals: readonly string[];
  /** Requested lifetime; default per type, capped by the server and the grant. */
  validityMs?: number | undefined;
  keyId: string;
  /** The grant that authorised the request: extensions, critical options, validity cap. */
  grant: SshGrant;
}

export interface IssuedSshCertificate {
  certificate: string;
  serial: bigint;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  type: SshCertificateType;
  caFingerprint: string;
}

export type SshRevokeRequest =
  | { certificate: string; reason?: string | undefined }
  | { publicKey: string; reason?: string | undefined }
  | { serial: bigint; type: SshCertificateType; reason?: string | undefined };

export interface SshRevocation {
  kind: "certificate" | "key";
  serial?: bigint;
  fingerprint?: string;
}

export interface SshCaState {
  current: number;
  published: number[];
  fingerprints: string[];
}

export interface SshCaOptions {
  keyType: SshCaKeyType;
  user: { defaultValidityMs: number; maxValidityMs: number };
  host: { defaultValidityMs: number; maxValidityMs: number };
}

export interface SshCaDeps {
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  clock: Clock;
  logger: Logger;
  options: SshCaOptions;
}

export const SSH_CA_NAMESPACE = "ssh-ca";
/** Certificates start this much in the past, for hosts with a slow clock. */
export const SSH_BACKDATE_MS = 60_000;
const MAX_KEY_ID = 256;

interface StoredState {
  current: number;
  published: number[];
}

type LogEntry =
  | {
      kind: "certificate";
      ca: string;
      serial: string;
      keyId: string;
      validBefore: string;
      at: string;
      reason: string;
    }
  | { kind: "key"; key: string; at: string; reason: string };

export async function createSshCa(deps: SshCaDeps, signal?: AbortSignal): Promise<SshCa> {
  const { store, clock, logger, options } = deps;
  const keys = new Map<string, SshCaKey>();
  const log: LogEntry[] = [];

  async function keyOf(type: SshCertificateType, n: number, signal?: AbortSignal): Promise<SshCaKey> {
    const name = `${type}-key:${n}`;
    const cached = keys.get(name);
    if (cached) return cached;
    const pem = await store.getValue(SSH_CA_NAMESPACE, name, signal);
    if (pem === undefined) throw corrupt(`${name} is missing`);
    const key = loadSshCaKey(pem, `certfleet-${type}-ca-${n}`);
    keys.set(name, key);
    return key;
  }

  async function createKey(type: SshCertificateType, n: number, signal?: AbortSignal): Promise<void> {
    const name = `${type}-key:${n}`;
    if ((await store.getValue(SSH_CA_NAMESPACE, name, signal)) !== undefined) return;
    const pem = await generateSshCaKeyPem(options.keyType);
    const winner = await store.putValue(
      SSH_CA_NAMESPACE,
      name,
      pem,
      { secret: true, ifAbsent: true },
      signal,
    );
    if (winner === pem)
      logger.info({ type, generation: n, keyType: options.keyType }, "SSH CA: created a CA key");
  }

  async function stateOf(type: SshCertificateType, signal?: AbortSignal): Promise<StoredState> {
    const raw = await store.getValue(SSH_CA_NAMESPACE, `${type}-state`, signal);
    if (raw === undefined) throw corrupt(`${type}-state is missing`);
    const state = JSON.parse(raw) as StoredState;
    if (!Number.isInteger(state.current) || !state.published.includes(state.current))
      throw corrupt(`${type}-state is inconsistent`);
    return state;
  }

  async function describe(
    type: SshCertificateType,
    state: StoredState,
    signal?: AbortSignal,
  ): Promise<SshCaState> {
    const fingerprints: string[] = [];
    for (const n of state.published) fingerprints.push((await keyOf(type, n, signal)).fingerprint);
    return { ...state, fingerprints };
  }

  /** Every key this CA has ever made for `type` (revocation must recognise retired ones too). */
  async function allKeys(type: SshCertificateType, signal?: AbortSignal): Promise<SshCaKey[]> {
    const state = await stateOf(type, signal);
    const out: SshCaKey[] = [];
    // generations are created in order and never deleted, so 0..max all exist
    for (let n = 0; n <= Math.max(state.current, ...state.published); n++)
      out.push(await keyOf(type, n, signal));
    return out;
  }

  async function readLog(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const raw = await store.getValue(SSH_CA_NAMESPACE, `revocation:${log.length}`, signal);
      if (raw === undefined) return;
      log.push(JSON.parse(raw) as LogEntry);
    }
  }

  async function append(entry: LogEntry, signal?: AbortSignal): Promise<void> {
    const value = JSON.stringify(entry);
    for (;;) {
      throwIfAborted(signal);
      await readLog(signal);
      const slot = log.length;
      const winner = await store.putValue(
        SSH_CA_NAMESPACE,
        `revocation:${slot}`,
        value,
        { ifAbsent: true },
        signal,
      );
      if (winner === value) {
        log.push(entry);
        return;
      }
      // another replica took the slot: read it and try the next one
    }
  }

  // first start: generation 0 of each key, then the state naming it (replicas racing agree on both)
  for (const type of ["user", "host"] as const) {
    await createKey(type, 0, signal);
    await store.putValue(
      SSH_CA_NAMESPACE,
      `${type}-state`,
      JSON.stringify({ current: 0, published: [0] } satisfies StoredState),
      { ifAbsent: true },
      signal,
    );
    const state = await stateOf(type, signal);
    const key = await keyOf(type, state.current, signal);
    logger.debug({ type, fingerprint: key.fingerprint, published: state.published }, "SSH CA: loaded");
  }

  return {
    async publicKeys(type, signal) {
      const state = await stateOf(type, signal);
      const lines: string[] = [];
      for (const n of state.published) lines.push((await keyOf(type, n, signal)).publicLine);
      return lines;
    },

    async issue(request, signal) {
      const limits = options[request.type];
      const max = Math.min(limits.maxValidityMs, request.grant.maxValidityMs ?? Infinity);
      const validityMs = request.validityMs ?? Math.min(limits.defaultValidityMs, max);
      if (!(validityMs > 0)) throw new ValidationError("ssh_validity_invalid", "validity must be positive");
      if (validityMs > max) {
        throw new ValidationError(
          "ssh_validity_too_long",
          `this identity may get ${request.type} certificates valid for at most ${Math.floor(max / 1000)} seconds`,
          { maxSeconds: Math.floor(max / 1000) },
        );
      }
      if (request.keyId.length > MAX_KEY_ID)
        throw new ValidationError("ssh_key_id_invalid", "key id too long");
      const state = await stateOf(request.type, signal);
      const ca = await keyOf(request.type, state.current, signal);
      const now = clock.now().getTime();
      const validAfter = new Date(Math.floor((now - SSH_BACKDATE_MS) / 1000) * 1000);
      const validBefore = new Date(Math.floor((now + validityMs) / 1000) * 1000);
      const criticalOptions: Record<string, string> = {};
      let extensions: readonly string[] = [];
      if (request.type === "user") {
        extensions = request.grant.extensions ?? DEFAULT_USER_EXTENSIONS;
        if (request.grant.forceCommand !== undefined)
          criticalOptions["force-command"] = request.grant.forceCommand;
        if (request.grant.sourceAddresses && request.grant.sourceAddresses.length > 0)
          criticalOptions["source-address"] = request.grant.sourceAddresses.join(",");
      }
      const serial = randomSshSerial();
      const principals = [...request.principals];
      const blob = signCertificate(
        {
          key: request.publicKey,
          type: request.type,
          serial,
          keyId: request.keyId,
          principals,
          validAfter,
          validBefore,
          criticalOptions,
          extensions,
        },
        ca,
      );
      return {
        certificate: certificateLine(blob),
        serial,
        keyId: request.keyId,
        principals,
        validAfter,
        validBefore,
        type: request.type,
        caFingerprint: ca.fingerprint,
      };
    },

    async rotate(type, signal) {
      const state = await stateOf(type, signal);
      const next = Math.max(state.current, ...state.published) + 1;
      await createKey(type, next, signal);
      const updated: StoredState = {
        current: next,
        published: [next, ...state.published.filter((n) => n !== next)],
      };
      await store.putValue(SSH_CA_NAMESPACE, `${type}-state`, JSON.stringify(updated), {}, signal);
      logger.info(
        { type, generation: next },
        "SSH CA: rotated; the previous key stays published until retired",
      );
      return describe(type, updated, signal);
    },

    async retire(type, signal) {
      const state = await stateOf(type, signal);
      const updated: StoredState = { current: state.current, published: [state.current] };
      await store.putValue(SSH_CA_NAMESPACE, `${type}-state`, JSON.stringify(updated), {}, signal);
      logger.info(
        { type, retired: state.published.filter((n) => n !== state.current) },
        "SSH CA: retired old keys",
      );
      return describe(type, updated, signal);
    },

    async revoke(request, signal) {
      await readLog(signal);
      const at = clock.now().toISOString();
      const reason = request.reason ?? "unspecified";
      if ("publicKey" in request) {
        const key = parseSshPublicKey(request.publicKey);
        const b64 = key.blob.toString("base64");
        if (log.some((e) => e.kind === "key" && e.key === b64))
          throw new CertfleetError("already_revoked", "this key is already revoked", { status: 409 });
        await append({ kind: "key", key: b64, at, reason }, signal);
        return { kind: "key", fingerprint: key.fingerprint };
      }
      let entries: { ca: SshCaKey; serial: bigint; keyId: string; validBefore: Date }[];
      if ("certificate" in request) {
        const cert = parseCertificateLine(request.certificate);
        const ca = (await allKeys(cert.type, signal)).find((k) =>
          k.publicBlob.equals(cert.signatureKey.blob),
        );
        if (!ca) {
          throw new ValidationError(
            "ssh_certificate_not_issued_here",
            "this certificate was not signed by this CA",
          );
        }
        entries = [{ ca, serial: cert.serial, keyId: cert.keyId, validBefore: cert.validBefore }];
      } else {
        if (request.serial <= 0n || request.serial >= 1n << 64n)
          throw new ValidationError("ssh_serial_invalid", "a serial is an unsigned 64-bit number above 0");
        // the serial alone: revoke it under every key of that type; validity unknown, so keep it for the longest
        const cap = options[request.type].maxValidityMs;
        entries = (await allKeys(request.type, signal)).map((ca) => ({
          ca,
          serial: request.serial,
          keyId: "",
          validBefore: new Date(clock.now().getTime() + cap),
        }));
      }
      const fresh = entries.filter(
        (e) =>
          !log.some(
            (l) =>
              l.kind === "certificate" &&
              l.serial === e.serial.toString() &&
              l.ca === e.ca.publicBlob.toString("base64"),
          ),
      );
      if (fresh.length === 0)
        throw new CertfleetError("already_revoked", "this certificate is already revoked", { status: 409 });
      for (const e of fresh) {
        await append(
          {
            kind: "certificate",
            ca: e.ca.publicBlob.toString("base64"),
            serial: e.serial.toString(),
            keyId: e.keyId,
            validBefore: e.validBefore.toISOString(),
            at,
            reason,
          },
          signal,
        );
      }
      return { kind: "certificate", serial: entries[0]!.serial };
    },

    async krl(signal) {
      await readLog(signal);
      const now = clock.now().getTime();
      const byCa = new Map<string, bigint[]>();
      const revokedKeys: Buffer[] = [];
      for (const e of log) {
        if (e.kind === "key") revokedKeys.push(Buffer.from(e.key, "base64"));
        else if (new Date(e.validBefore).getTime() > now) {
          const list = byCa.get(e.ca) ?? [];
          list.push(BigInt(e.serial));
          byCa.set(e.ca, list);
        }
      }
      return encodeKrl({
        version: BigInt(log.length),
        generatedAt: clock.now(),
        comment: "certfleet",
        certificates: [...byCa].map(([ca, serials]) => ({
          caPublicBlob: Buffer.from(ca, "base64"),
          serials,
        })),
        keys: revokedKeys,
      });
    },
  };
}

function corrupt(internal: string): CertfleetError {
  return new CertfleetError("ssh_ca_corrupt", "the SSH CA's stored material is inconsistent", {
    status: 500,
    internal,
  });
}
