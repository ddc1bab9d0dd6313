import type { Clock } from "../core/clock.js";
import { CertfleetError } from "../core/errors.js";
import type { CertificateStore, FailureRecord, KeyValueStore } from "../storage/storage.js";
import { REVOCATION_NAMESPACE } from "./manager.js";

/**
 * The inventory: every certificate certfleet manages, whatever asked for it (the API, an agent, the
 * ACME server), including requests whose first issuance failed. One entry per certificate id; the
 * entry's shape is the pinned compatibility surface of `certfleet certificates list --json` and
 * `GET /api/admin/certificates`.
 */
export interface Inventory {
  /** One page, ordered by id; `next` is the cursor for the following page, null on the last. */
  list(
    filter: InventoryFilter,
    signal?: AbortSignal,
  ): Promise<{ certificates: InventoryEntry[]; next: string | null }>;
  /** `certificate_not_found` (404) when there is no such certificate or failed request. */
  get(id: string, signal?: AbortSignal): Promise<InventoryEntry>;
}

export const INVENTORY_STATUSES = ["valid", "pending", "failed", "revoked", "expired"] as const;
export type InventoryStatus = (typeof INVENTORY_STATUSES)[number];

export interface InventoryFilter {
  status?: InventoryStatus;
  issuer?: string;
  owner?: string;
  /** Only certificates whose notAfter is within this many seconds (expired ones included). */
  expiringWithinSeconds?: number;
  /** Case-insensitive substring of any name. */
  search?: string;
  /** The `next` cursor of the previous page. */
  after?: string;
  limit?: number;
}

export interface InventoryEntry {
  id: string;
  names: string[];
  status: InventoryStatus;
  issuer: string;
  owner: string | null;
  keyType: string | null;
  custody: string | null;
  serial: string | null;
  notBefore: string | null;
  /** Null before the first successful issuance. */
  notAfter: string | null;
  renewAt: string | null;
  version: number;
  consecutiveFailures: number;
  lastError: { code: string; message: string; at: string; nextAttemptAt: string | null } | null;
  revocation: { serial: string; reason: string; at: string } | null;
}

export interface InventoryDeps {
  certificates: Pick<CertificateStore, "listCertificates" | "listUnissued">;
  kv: Pick<KeyValueStore, "getValue">;
  clock: Clock;
}

const DEFAULT_LIMIT = 100;

export function createInventory(deps: InventoryDeps): Inventory {
  const { certificates, kv, clock } = deps;

  async function revocationOf(id: string, serial: string, signal?: AbortSignal) {
    const stored = await kv.getValue(REVOCATION_NAMESPACE, id, signal);
    if (stored === undefined) return null;
    const r = JSON.parse(stored) as { serial?: string; reason?: string; at?: string };
    // a revoked certificate that was replaced: the current version is not revoked
    return r.serial === serial ? { serial, reason: r.reason ?? "unspecified", at: r.at ?? "" } : null;
  }

  async function all(signal?: AbortSignal): Promise<InventoryEntry[]> {
    const now = clock.now().getTime();
    const [issued, unissued] = await Promise.all([
      certificates.listCertificates(signal),
      certificates.listUnissued(signal),
    ]);
    const entries: InventoryEntry[] = [];
    for (const c of issued) {
      const revocation = await revocationOf(c.id, c.serial, signal);
      entries.push({
        id: c.id,
        names: c.names,
        status: revocation ? "revoked" : c.notAfter.getTime() <= now ? "expired" : "valid",
        issuer: c.issuerId,
        owner: c.owner,
        keyType: c.keyType,
        custody: c.custody,
        serial: c.serial,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        renewAt: c.renewAt.toISOString(),
        version: c.version,
        ...failureFields(c.lastFailure),
        revocation,
      });
    }
    for (const u of unissued) {
      entries.push({
        id: u.id,
        names: u.names,
        status: "failed",
        issuer: u.issuerId,
        owner: u.owner,
        keyType: null,
        custody: null,
        serial: null,
        notBefore: null,
        notAfter: null,
        renewAt: null,
        version: 0,
        ...failureFields(u.lastFailure),
        revocation: null,
      });
    }
    return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function matches(e: InventoryEntry, f: InventoryFilter, now: number): boolean {
    if (f.status && e.status !== f.status) return false;
    if (f.issuer && e.issuer !== f.issuer) return false;
    if (f.owner && e.owner !== f.owner) return false;
    if (f.expiringWithinSeconds !== undefined) {
      if (e.notAfter === null || Date.parse(e.notAfter) > now + f.expiringWithinSeconds * 1000) return false;
    }
    if (f.search) {
      const needle = f.search.toLowerCase();
      if (!e.names.some((n) => n.toLowerCase().includes(needle))) return false;
    }
    return true;
  }

  return {
    async list(filter, signal) {
      const now = clock.now().getTime();
      const limit = filter.limit ?? DEFAULT_LIMIT;
      const after = filter.after === undefined ? undefined : decodeCursor(filter.after);
      const page = (await all(signal)).filter(
        (e) => (after === undefined || e.id > after) && matches(e, filter, now),
      );
      const certificatesPage = page.slice(0, limit);
      const last = certificatesPage.at(-1);
      return {
        certificates: certificatesPage,
        next: page.length > limit && last ? encodeCursor(last.id) : null,
      };
    },
    async get(id, signal) {
      const entry = (await all(signal)).find((e) => e.id === id);
      if (!entry)
        throw new CertfleetError("certificate_not_found", "certfleet holds no such certificate", {
          status: 404,
        });
      return entry;
    },
  };
}

function failureFields(f: FailureRecord | null): Pick<InventoryEntry, "consecutiveFailures" | "lastError"> {
  return {
    consecutiveFailures: f?.failureCount ?? 0,
    lastError: f
      ? {
          code: f.code,
          message: f.message,
          at: f.at.toISOString(),
          nextAttemptAt: f.nextAttemptAt?.toISOString() ?? null,
        }
      : null,
  };
}

/** Opaque to callers: the last id of the page. */
function encodeCursor(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, "base64url").toString("utf8");
}
