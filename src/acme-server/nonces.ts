import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { KeyValueStore } from "../storage/storage.js";
import type { AcmeStore } from "../storage/acme-store.js";
import { problem } from "./problems.js";

/**
 * Replay nonces (RFC 8555 §6.5) that work across replicas: a nonce is self-authenticating —
 * expiry ‖ random ‖ HMAC under a key shared through storage — so issuing one costs no database write
 * and any replica can check it. Using one inserts it into `acme_used_nonces`; the primary key makes
 * the second use of the same nonce fail on every replica.
 */
export interface NonceService {
  /** A fresh nonce (no I/O). */
  issue(): string;
  /** Accept `nonce` once. Throws AcmeProblem `badNonce` when it is not ours, has expired, or was used. */
  consume(nonce: unknown, signal?: AbortSignal): Promise<void>;
}

export interface NonceServiceDeps {
  store: Pick<AcmeStore, "useNonce" | "purgeNonces">;
  kv: Pick<KeyValueStore, "getValue" | "putValue">;
  clock: Clock;
  logger: Logger;
  /** Default one hour. */
  lifetimeMs?: number;
}

const KEY_NAMESPACE = "acme-server";
const KEY_NAME = "nonce-hmac-key";
const RANDOM_BYTES = 12;
const MAC_BYTES = 16;
const NONCE_BYTES = 4 + RANDOM_BYTES + MAC_BYTES;
const PURGE_INTERVAL_MS = 5 * 60_000;

export async function createNonceService(
  deps: NonceServiceDeps,
  signal?: AbortSignal,
): Promise<NonceService> {
  const { store, clock, logger } = deps;
  const lifetimeMs = deps.lifetimeMs ?? 60 * 60_000;
  // Create-once: every replica ends up with the key the first one wrote.
  const key = Buffer.from(
    await deps.kv.putValue(
      KEY_NAMESPACE,
      KEY_NAME,
      randomBytes(32).toString("base64"),
      { secret: true, ifAbsent: true },
      signal,
    ),
    "base64",
  );
  const mac = (body: Buffer) => createHmac("sha256", key).update(body).digest().subarray(0, MAC_BYTES);
  let lastPurge = 0;

  const badNonce = (internal: string) =>
    problem("badNonce", "the nonce is invalid, expired or already used", { internal });

  return {
    issue() {
      const body = Buffer.alloc(4 + RANDOM_BYTES);
      body.writeUInt32BE(Math.ceil((clock.now().getTime() + lifetimeMs) / 1000), 0);
      randomBytes(RANDOM_BYTES).copy(body, 4);
      return Buffer.concat([body, mac(body)]).toString("base64url");
    },

    async consume(nonce, signal) {
      if (typeof nonce !== "string" || nonce.length === 0) throw badNonce("no nonce");
      if (!/^[A-Za-z0-9_-]+$/.test(nonce)) throw badNonce("not base64url");
      const raw = Buffer.from(nonce, "base64url");
      if (raw.length !== NONCE_BYTES) throw badNonce("wrong length");
      const body = raw.subarray(0, 4 + RANDOM_BYTES);
      if (!timingSafeEqual(mac(body), raw.subarray(4 + RANDOM_BYTES))) throw badNonce("not issued by us");
      const expiresAt = new Date(body.readUInt32BE(0) * 1000);
      const now = clock.now();
      if (expiresAt.getTime() <= now.getTime()) throw badNonce("expired");
      if (!(await store.useNonce(nonce, expiresAt, signal))) throw badNonce("replayed");
      if (now.getTime() - lastPurge > PURGE_INTERVAL_MS) {
        lastPurge = now.getTime();
        store
          .purgeNonces(now)
          .catch((e: unknown) => logger.warn({ err: String(e) }, "acme: purging used nonces failed"));
      }
    },
  };
}
