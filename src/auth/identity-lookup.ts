import type { IdentityRecord, IdentityStore } from "../storage/storage.js";
import { AuthFailure } from "./auth-failure.js";
import type { AuthRequest, Principal } from "./authenticator.js";
import { singleHeader } from "./authorization-header.js";

/**
 * Shared steps for methods that resolve a proof to an identity record: look the record up by binding
 * key, check it is enabled, and check the identity UUID the agent claims (header
 * `X-Certfleet-Identity`, sent by agents for every method as the reference agent sends its UUID) is the
 * record the proof resolved to. The header is optional: the proof alone decides who the caller is.
 */

export const IDENTITY_HEADER = "x-certfleet-identity";

/** The first record matching any of `keys`, tried in order; undefined when none does. */
export async function findIdentityByKeys(
  store: Pick<IdentityStore, "findIdentityByBinding">,
  keys: readonly string[],
  signal?: AbortSignal,
): Promise<IdentityRecord | undefined> {
  for (const key of keys) {
    const record = await store.findIdentityByBinding(key, signal);
    if (record) return record;
  }
  return undefined;
}

/** Throws AuthFailure when the record is disabled or is not the identity the request claims to be. */
export function checkIdentity(record: IdentityRecord, request: AuthRequest): void {
  if (!record.enabled)
    throw new AuthFailure("identity_disabled", `identity ${record.id} is disabled`, { identity: record.id });
  const claimed = singleHeader(request.headers, IDENTITY_HEADER);
  if (claimed !== undefined && claimed.trim().toLowerCase() !== record.id.toLowerCase()) {
    throw new AuthFailure(
      "identity_mismatch",
      `the proof belongs to ${record.id}, the request claims ${claimed.slice(0, 64)}`,
      {
        identity: record.id,
      },
    );
  }
}

export function principalOfRecord(record: IdentityRecord, method: string): Principal {
  return {
    id: record.id,
    name: record.name,
    method,
    grants: Object.freeze([...record.grants]),
    admin: record.admin,
  };
}
