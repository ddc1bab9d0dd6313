import { CertfleetError } from "../core/errors.js";
import type { AccountSummary, AcmeStore } from "../storage/acme-store.js";
import type { AuditEvent } from "../storage/storage.js";
import type { EabKey, EabKeys } from "./eab.js";

/**
 * What an operator sees of the ACME server's external accounts: EAB keys (never their HMAC key) with
 * the account that bound each and when it last ordered, and the ACME accounts themselves. Shared by
 * the admin API and `certfleet acme eab list|revoke`, so both show the same thing.
 */
export interface EabAdmin {
  /** One page of keys in kid order; `next` is the kid to pass as `after`, null on the last page. */
  listKeys(
    page: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ keys: EabKeyView[]; next: string | null }>;
  /**
   * Revoke a key: no new account may bind it and its accounts' newOrder requests are refused with an
   * `unauthorized` problem. Idempotent. `eab_key_not_found` (404) for an unknown kid. Audited.
   */
  revokeKey(kid: string, actor: string | null, signal?: AbortSignal): Promise<EabKeyView>;
  /** One page of ACME accounts (all profiles) in id order. */
  listAccounts(
    page: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ accounts: AccountView[]; next: string | null }>;
}

export interface EabKeyView {
  kid: string;
  grants: string[];
  /** The identity that made (and owns) the key, or null for an admin-made key. */
  ownerId: string | null;
  createdAt: string;
  revoked: boolean;
  revokedAt: string | null;
  /** The account that bound the key first; null while unused. */
  account: { id: string; profile: string; status: string } | null;
  /** When that account last created an order (its last use), or null. */
  lastUsedAt: string | null;
}

export interface AccountView {
  id: string;
  profile: string;
  status: string;
  contact: string[];
  /** The EAB key it bound, when the account row holds it (the first account to bind a key). */
  eabKid: string | null;
  grants: string[];
  ownerId: string | null;
  createdAt: string;
  lastOrderAt: string | null;
}

export interface EabAdminDeps {
  eab: Pick<EabKeys, "list" | "revoke" | "get">;
  acme: Pick<AcmeStore, "listAccounts">;
  audit?: (event: AuditEvent) => Promise<void>;
}

export function createEabAdmin(deps: EabAdminDeps): EabAdmin {
  async function view(key: EabKey, signal?: AbortSignal): Promise<EabKeyView> {
    const [account] = await deps.acme.listAccounts({ eabKid: key.kid, limit: 1 }, signal);
    return {
      kid: key.kid,
      grants: key.grants,
      ownerId: key.ownerId,
      createdAt: key.createdAt,
      revoked: Boolean(key.revokedAt),
      revokedAt: key.revokedAt ?? null,
      account: account ? { id: account.id, profile: account.profile, status: account.status } : null,
      lastUsedAt: account?.lastOrderAt?.toISOString() ?? null,
    };
  }

  return {
    async listKeys(page, signal) {
      // one more than asked tells whether there is a next page
      const keys = await deps.eab.list({ after: page.after, limit: page.limit + 1 }, signal);
      const shown = keys.slice(0, page.limit);
      return {
        keys: await Promise.all(shown.map((k) => view(k, signal))),
        next: keys.length > page.limit ? shown.at(-1)!.kid : null,
      };
    },
    async revokeKey(kid, actor, signal) {
      const before = await deps.eab.get(kid, signal);
      const key = before && (await deps.eab.revoke(kid, signal));
      if (!key) {
        throw new CertfleetError("eab_key_not_found", "there is no EAB key with this kid", {
          status: 404,
          expose: true,
        });
      }
      if (!before?.revokedAt) {
        await deps.audit?.({
          type: "acme.eab.revoke",
          actor,
          subject: kid,
          outcome: "success",
          data: { kid },
        });
      }
      return view(key, signal);
    },
    async listAccounts(page, signal) {
      const accounts = await deps.acme.listAccounts({ after: page.after, limit: page.limit + 1 }, signal);
      const shown = accounts.slice(0, page.limit);
      return {
        accounts: shown.map(accountView),
        next: accounts.length > page.limit ? shown.at(-1)!.id : null,
      };
    },
  };
}

function accountView(a: AccountSummary): AccountView {
  return {
    id: a.id,
    profile: a.profile,
    status: a.status,
    contact: a.contact,
    eabKid: a.eabKid,
    grants: a.grants,
    ownerId: a.ownerId,
    createdAt: a.createdAt.toISOString(),
    lastOrderAt: a.lastOrderAt?.toISOString() ?? null,
  };
}
