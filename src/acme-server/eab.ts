import { randomBytes } from "node:crypto";
import { flattenedVerify, type JWK } from "jose";
import type { Clock } from "../core/clock.js";
import { ValidationError } from "../core/errors.js";
import { normalizeName } from "../core/names.js";
import type { KeyValueStore } from "../storage/storage.js";
import { canonicalPublicJwk, jwkThumbprint } from "./jwk.js";
import { parseJwsEnvelope, requireSignature } from "./jws.js";
import { problem } from "./problems.js";

/**
 * External Account Binding keys (RFC 8555 §7.3.4). An admin (or an authenticated identity) creates a
 * key id + HMAC key carrying name grants; an ACME account that binds the key inherits the grants.
 * Keys are stored encrypted at rest in the storage key/value table (namespace "acme-eab"); each key
 * binds at most one account (the accounts table holds the kid with a unique constraint).
 */
export interface EabKey {
  kid: string;
  /** base64url, no padding: what lego, certbot and Caddy expect. */
  hmacKey: string;
  /** Name patterns (core/names.ts patternMatches). */
  grants: string[];
  /** Identity that owns the key (its record must stay enabled), or null for an admin-made key. */
  ownerId: string | null;
  createdAt: string;
  /** Set once by `revoke`: no account that bound the key may order any more. Absent in older keys. */
  revokedAt?: string | null;
}

export interface EabKeys {
  /** Throws ValidationError `grant_invalid` for a pattern that can never match a name. */
  create(grants: string[], ownerId?: string, signal?: AbortSignal): Promise<{ kid: string; hmacKey: string }>;
  get(kid: string, signal?: AbortSignal): Promise<EabKey | undefined>;
  /** True if it existed. An account already bound keeps its grants. */
  remove(kid: string): Promise<void>;
  /** One page of keys in kid order (after the kid `after`), HMAC keys included: callers drop them. */
  list(page: { after?: string; limit: number }, signal?: AbortSignal): Promise<EabKey[]>;
  /**
   * Mark a key revoked (idempotent; the first revocation time stays): it binds no new account, and
   * the accounts that bound it can no longer order. Undefined when there is no such key.
   */
  revoke(kid: string, signal?: AbortSignal): Promise<EabKey | undefined>;
  /**
   * Remember which key an account bound. The first account also holds the kid in its own row; an
   * account that rebinds the key (see newAccount) does not, so this is where its key is found.
   */
  noteAccount(accountId: string, kid: string, signal?: AbortSignal): Promise<void>;
  /** The kid an account bound, from its row or from `noteAccount`; undefined for none. */
  keyOfAccount(
    account: { id: string; eabKid: string | null },
    signal?: AbortSignal,
  ): Promise<string | undefined>;
  /**
   * Note that `binding.accountId` is about to bind `kid`, unless an earlier bind was noted: returns
   * the binding that stands (the earlier one, or this). Written before the account row, so a request
   * that loses the race for the key always finds the winner's note.
   */
  noteBinding(kid: string, binding: EabBinding, signal?: AbortSignal): Promise<EabBinding>;
  /** Replace the note (the account that actually holds the key). */
  replaceBinding(kid: string, binding: EabBinding, signal?: AbortSignal): Promise<void>;
}

/** Which account bound an EAB key first. */
export interface EabBinding {
  accountId: string;
  profile: string;
}

export const EAB_NAMESPACE = "acme-eab";
const BINDING_NAMESPACE = "acme-eab-binding";
const ACCOUNT_NAMESPACE = "acme-eab-account";
const HMAC_KEY_BYTES = 32;
const EAB_ALGORITHMS = ["HS256", "HS384", "HS512"];

export function createEabKeys(deps: {
  kv: Pick<KeyValueStore, "getValue" | "putValue" | "deleteValue" | "listValues">;
  clock: Clock;
}): EabKeys {
  const get = async (kid: string, signal?: AbortSignal): Promise<EabKey | undefined> => {
    if (typeof kid !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(kid)) return undefined;
    const value = await deps.kv.getValue(EAB_NAMESPACE, kid, signal);
    return value === undefined ? undefined : (JSON.parse(value) as EabKey);
  };
  return {
    async create(grants, ownerId, signal) {
      if (!Array.isArray(grants) || grants.length === 0) {
        throw new ValidationError("grant_invalid", "an EAB key needs at least one grant");
      }
      const patterns = grants.map(normalizeGrant);
      const kid = `eab_${randomBytes(16).toString("base64url")}`;
      const key: EabKey = {
        kid,
        hmacKey: newHmacKey(),
        grants: [...new Set(patterns)],
        ownerId: ownerId ?? null,
        createdAt: deps.clock.now().toISOString(),
      };
      await deps.kv.putValue(
        EAB_NAMESPACE,
        kid,
        JSON.stringify(key),
        { secret: true, ifAbsent: true },
        signal,
      );
      return { kid, hmacKey: key.hmacKey };
    },
    get,
    remove: (kid) => deps.kv.deleteValue(EAB_NAMESPACE, kid),
    async list(page, signal) {
      const rows = await deps.kv.listValues(EAB_NAMESPACE, page, signal);
      return rows.map((row) => JSON.parse(row.value) as EabKey);
    },
    async revoke(kid, signal) {
      const key = await get(kid, signal);
      if (!key || key.revokedAt) return key;
      const revoked: EabKey = { ...key, revokedAt: deps.clock.now().toISOString() };
      // a revocation racing another writes the same key with an equally valid time: either may stay
      await deps.kv.putValue(EAB_NAMESPACE, kid, JSON.stringify(revoked), { secret: true }, signal);
      return revoked;
    },
    async noteAccount(accountId, kid, signal) {
      await deps.kv.putValue(ACCOUNT_NAMESPACE, accountId, kid, { ifAbsent: true }, signal);
    },
    async keyOfAccount(account, signal) {
      return account.eabKid ?? (await deps.kv.getValue(ACCOUNT_NAMESPACE, account.id, signal));
    },
    async noteBinding(kid, binding, signal) {
      const stored = await deps.kv.putValue(
        BINDING_NAMESPACE,
        kid,
        JSON.stringify(binding),
        { ifAbsent: true },
        signal,
      );
      return JSON.parse(stored) as EabBinding;
    },
    async replaceBinding(kid, binding, signal) {
      await deps.kv.putValue(BINDING_NAMESPACE, kid, JSON.stringify(binding), {}, signal);
    },
  };
}

/** A grant pattern, normalised: `*`, `example.com`, `*.example.com` or `.example.com`. */
export function normalizeGrant(pattern: string): string {
  if (pattern === "*") return pattern;
  try {
    if (typeof pattern === "string" && pattern.startsWith(".")) return `.${normalizeName(pattern.slice(1))}`;
    return normalizeName(pattern);
  } catch {
    throw new ValidationError("grant_invalid", `"${String(pattern)}" is not a name pattern`, {
      grant: String(pattern),
    });
  }
}

/**
 * Check the `externalAccountBinding` of a newAccount request: a flattened JWS, HMAC-signed with the
 * EAB key, protected header { alg: HS256/384/512, kid, url = the newAccount URL } and no nonce, whose
 * payload is the account's own public JWK. Returns the key it binds. Every failure is `unauthorized`
 * (or `malformed` for a broken structure); the reason goes to the log only.
 */
export async function verifyExternalAccountBinding(
  binding: unknown,
  ctx: { accountJwk: JWK; newAccountUrl: string; keys: Pick<EabKeys, "get">; signal?: AbortSignal },
): Promise<EabKey> {
  const { jws, header } = parseJwsEnvelope(binding, "externalAccountBinding");
  const refuse = (internal: string) =>
    problem("unauthorized", "the external account binding is not valid", { internal });
  if (!EAB_ALGORITHMS.includes(String(header.alg))) throw refuse(`EAB alg ${String(header.alg)}`);
  requireSignature(jws, "externalAccountBinding");
  if (typeof header.kid !== "string") throw problem("malformed", "the external account binding has no kid");
  if (header.url !== ctx.newAccountUrl) throw refuse("EAB url is not the newAccount URL");
  if ("nonce" in header) throw problem("malformed", "the external account binding must not carry a nonce");
  if ("jwk" in header || "crit" in header)
    throw problem("malformed", "unexpected external account binding header");

  const key = await ctx.keys.get(header.kid, ctx.signal);
  if (!key) throw refuse(`unknown EAB kid ${header.kid}`);
  if (key.revokedAt) throw refuse(`EAB kid ${header.kid} was revoked at ${key.revokedAt}`);
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(jws, Buffer.from(key.hmacKey, "base64url"), {
      algorithms: [String(header.alg)],
    }));
  } catch (e) {
    throw refuse(`EAB signature: ${e instanceof Error ? e.message : String(e)}`);
  }
  let bound: JWK;
  try {
    bound = canonicalPublicJwk(JSON.parse(Buffer.from(payload).toString("utf8")));
  } catch {
    throw refuse("EAB payload is not a JWK");
  }
  if ((await jwkThumbprint(bound)) !== (await jwkThumbprint(ctx.accountJwk)))
    throw refuse("EAB payload is another key");
  return key;
}

/**
 * A base64url HMAC key that does not start with "-": command-line parsers such as certbot's read
 * `--eab-hmac-key -abc…` as a missing value followed by an unknown option (1 key in 64 otherwise).
 */
export function newHmacKey(): string {
  for (;;) {
    const key = randomBytes(HMAC_KEY_BYTES).toString("base64url");
    if (!key.startsWith("-")) return key;
  }
}
