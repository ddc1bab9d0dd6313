import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { Clock } from "../core/clock.js";
import { throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { alreadyRevokedError, REVOCATION_REASONS, type RevocationReason } from "../issuance/issuer.js";
import type { KeyValueStore } from "../storage/storage.js";
import { CA_NAMESPACE, type CaHierarchy } from "./ca-hierarchy.js";
import { crlNumberExtension } from "./crl-extensions.js";

/**
 * The embedded CA's revoked serials and the CRL the intermediate signs over them, kept in the CA's
 * key/value namespace with create-once writes only, so replicas need no lock:
 *
 *   revocation:<n>      one entry per revocation, n = 0, 1, 2 … (each slot taken with ifAbsent; a
 *                       writer that loses a slot tries the next one)
 *   revoked:<serial>    marks a serial revoked (written after its entry; `already_revoked` when present)
 *   crl                 the last CRL made: { der (base64), thisUpdate, entries (log length it covers) }
 *
 * A crash between the entry and the marker leaves an entry without a marker; the retry appends a second
 * entry for the same serial, which the CRL lists once. The CRL is made again after each revocation and
 * when the stored one is older than `refreshAfterMs` or misses entries another replica appended. Its
 * number is the time it was made in milliseconds (at least the last number + 1), so it grows with
 * every CRL any replica makes. Entries for
 * certificates that have expired are left out (RFC 5280 §3.3).
 */
export interface RevocationList {
  /** Record a revocation. `already_revoked` (409) when the serial is already revoked. */
  revoke(
    entry: { serial: string; reason: RevocationReason; notAfter: Date },
    signal?: AbortSignal,
  ): Promise<void>;
  /** The current CRL (DER), made anew when stale. */
  crl(signal?: AbortSignal): Promise<Uint8Array>;
  isRevoked(serial: string, signal?: AbortSignal): Promise<boolean>;
}

export interface RevocationListDeps {
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  hierarchy: CaHierarchy;
  clock: Clock;
  logger: Logger;
  /** nextUpdate - thisUpdate; default 7 days. */
  validityMs?: number;
  /** Make a new CRL when the stored one is older than this; default 1 day. */
  refreshAfterMs?: number;
}

interface Entry {
  serial: string;
  reason: RevocationReason;
  at: string;
  notAfter: string;
}

interface StoredCrl {
  der: string;
  thisUpdate: string;
  number: number;
  entries: number;
}

const DAY_MS = 86_400_000;

export function createRevocationList(deps: RevocationListDeps): RevocationList {
  const { store, hierarchy, clock } = deps;
  const validityMs = deps.validityMs ?? 7 * DAY_MS;
  const refreshAfterMs = deps.refreshAfterMs ?? DAY_MS;
  // entries read so far (the log only grows), and the CRL last made or read
  const entries: Entry[] = [];
  let current: StoredCrl | undefined;

  /** Read entries appended since the last call (by this or another replica). */
  async function catchUp(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const value = await store.getValue(CA_NAMESPACE, `revocation:${entries.length}`, signal);
      if (value === undefined) return;
      entries.push(JSON.parse(value) as Entry);
    }
  }

  async function append(entry: Entry, signal?: AbortSignal): Promise<void> {
    await catchUp(signal);
    const mine = JSON.stringify(entry);
    for (;;) {
      const slot = `revocation:${entries.length}`;
      const winner = await store.putValue(CA_NAMESPACE, slot, mine, { ifAbsent: true }, signal);
      entries.push(JSON.parse(winner) as Entry);
      if (winner === mine) return;
    }
  }

  async function make(signal?: AbortSignal): Promise<StoredCrl> {
    throwIfAborted(signal);
    const now = clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    // a CRL number must grow: never reuse or go below the last one, even with a clock step back
    const number = BigInt(Math.max(now.getTime(), (current?.number ?? 0) + 1));
    const listed = new Map<string, Entry>();
    for (const e of entries) if (Date.parse(e.notAfter) > now.getTime()) listed.set(e.serial, e);
    const { cert, signingKey, keyId } = hierarchy.intermediate;
    const crl = await x509.X509CrlGenerator.create(
      {
        issuer: cert.subjectName,
        thisUpdate,
        nextUpdate: new Date(thisUpdate.getTime() + validityMs),
        signingKey: signingKey.keys.privateKey,
        signingAlgorithm: signingKey.signingAlgorithm,
        entries: [...listed.values()].map((e) => ({
          serialNumber: positiveSerial(e.serial),
          revocationDate: new Date(e.at),
          reason: REVOCATION_REASONS[e.reason] as number as x509.X509CrlReason,
        })),
        extensions: [new x509.AuthorityKeyIdentifierExtension(keyId, false), crlNumberExtension(number)],
      },
      webcrypto,
    );
    const made: StoredCrl = {
      der: Buffer.from(crl.rawData).toString("base64"),
      thisUpdate: thisUpdate.toISOString(),
      number: Number(number),
      entries: entries.length,
    };
    await store.putValue(CA_NAMESPACE, "crl", JSON.stringify(made), {}, signal);
    deps.logger.debug({ revoked: listed.size, thisUpdate }, "embedded CA: CRL made");
    return made;
  }

  function fresh(crl: StoredCrl | undefined): crl is StoredCrl {
    return (
      crl !== undefined &&
      crl.entries === entries.length &&
      clock.now().getTime() - Date.parse(crl.thisUpdate) < refreshAfterMs
    );
  }

  return {
    async revoke({ serial, reason, notAfter }, signal) {
      const key = `revoked:${serial.toLowerCase()}`;
      if ((await store.getValue(CA_NAMESPACE, key, signal)) !== undefined) throw alreadyRevokedError(serial);
      const at = clock.now().toISOString();
      const entry: Entry = { serial: serial.toLowerCase(), reason, at, notAfter: notAfter.toISOString() };
      await append(entry, signal);
      const marker = JSON.stringify({ reason, at });
      if ((await store.putValue(CA_NAMESPACE, key, marker, { ifAbsent: true }, signal)) !== marker) {
        throw alreadyRevokedError(serial);
      }
      current = await make(signal);
      deps.logger.info({ serial: entry.serial, reason }, "embedded CA: certificate revoked");
    },

    async crl(signal) {
      await catchUp(signal);
      if (!fresh(current)) {
        const stored = await store.getValue(CA_NAMESPACE, "crl", signal);
        const parsed = stored === undefined ? undefined : (JSON.parse(stored) as StoredCrl);
        current = fresh(parsed) ? parsed : await make(signal);
      }
      return new Uint8Array(Buffer.from(current.der, "base64"));
    },

    async isRevoked(serial, signal) {
      return (await store.getValue(CA_NAMESPACE, `revoked:${serial.toLowerCase()}`, signal)) !== undefined;
    },
  };
}

/**
 * The CRL generator writes the hex as given into the DER INTEGER; a serial whose first bit is set needs
 * a leading zero byte to stay positive (the certificate generator adds it, so the certificate has it).
 */
function positiveSerial(hex: string): string {
  const even = hex.length % 2 ? "0" + hex : hex;
  return parseInt(even.slice(0, 1), 16) >= 8 ? "00" + even : even;
}
