import type { JWK } from "jose";

export type AccountStatus = "valid" | "deactivated" | "revoked";
export type OrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AuthorizationStatus = "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
export type ChallengeStatus = "pending" | "processing" | "valid" | "invalid";
export type ChallengeType = "http-01" | "dns-01" | "tls-alpn-01";
export type ProblemDoc = Record<string, unknown>;

export interface AccountRecord {
  id: string;
  profile: string;
  status: AccountStatus;
  jwk: JWK;
  thumbprint: string;
  contact: string[];
  eabKid: string | null;
  grants: string[];
  ownerId: string | null;
  createdAt: Date;
}

export interface OrderRecord {
  id: string;
  accountId: string;
  profile: string;
  status: OrderStatus;
  /** Names as ordered; a wildcard is "*.example.com". */
  identifiers: string[];
  authorizationIds: string[];
  expiresAt: Date;
  error: ProblemDoc | null;
  certificateId: string | null;
  replaces: string | null;
  processingAt: Date | null;
  createdAt: Date;
}

export interface ChallengeRecord {
  id: string;
  authorizationId: string;
  type: ChallengeType;
  token: string;
  status: ChallengeStatus;
  validatedAt: Date | null;
  error: ProblemDoc | null;
  processingAt: Date | null;
}

export interface AuthorizationRecord {
  id: string;
  accountId: string;
  profile: string;
  /** Without "*.". */
  identifier: string;
  wildcard: boolean;
  status: AuthorizationStatus;
  expiresAt: Date;
  challenges: ChallengeRecord[];
}

export interface IssuedRecord {
  id: string;
  accountId: string;
  profile: string;
  orderId: string;
  names: string[];
  serial: string;
  ariCertId: string | null;
  certPem: string;
  /** Chain PEMs; [0] is the default chain, the rest are alternates. */
  chains: string[];
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  revocationReason: number | null;
  replacedBy: string | null;
  createdAt: Date;
}

/** An account as the admin views list it: with when it last created an order. */
export interface AccountSummary extends AccountRecord {
  lastOrderAt: Date | null;
}

export type NewAccount = Omit<AccountRecord, "createdAt">;
export type NewOrder = Omit<OrderRecord, "createdAt" | "error" | "certificateId" | "processingAt">;
export type NewAuthorization = AuthorizationRecord;

/**
 * The ACME server's records, in the storage database (migration 0002). Every lookup is scoped to a
 * profile, so one profile's URLs never reach another's objects. State changes that two replicas (or
 * two concurrent requests) may race on are single conditional statements — `update … where status =
 * <expected>` — and the caller learns whether it won; nothing reads and then writes.
 */
export interface AcmeStore {
  /** `key`: this profile already has an account with this key; `eab`: the EAB key is bound to another account. */
  createAccount(
    account: NewAccount,
    signal?: AbortSignal,
  ): Promise<{ ok: true } | { ok: false; conflict: "key" | "eab" }>;
  getAccount(profile: string, id: string, signal?: AbortSignal): Promise<AccountRecord | undefined>;
  findAccountByThumbprint(
    profile: string,
    thumbprint: string,
    signal?: AbortSignal,
  ): Promise<AccountRecord | undefined>;
  /** Update a valid account; undefined when it is no longer valid (or gone). */
  updateAccount(
    id: string,
    patch: { contact?: string[]; status?: AccountStatus },
    signal?: AbortSignal,
  ): Promise<AccountRecord | undefined>;
  /**
   * One page of accounts (every profile), in id order after `after` (an account id); with `eabKid`,
   * only the account that bound that key. Each with the time of its newest order (an indexed lookup).
   */
  listAccounts(
    page: { after?: string; limit: number; eabKid?: string },
    signal?: AbortSignal,
  ): Promise<AccountSummary[]>;
  /** Swap the key of a valid account whose key is still `oldThumbprint`. */
  changeAccountKey(
    id: string,
    oldThumbprint: string,
    jwk: JWK,
    thumbprint: string,
    signal?: AbortSignal,
  ): Promise<"changed" | "conflict" | "stale">;

  /** The order, its authorizations and their challenges, all or nothing. */
  createOrder(order: NewOrder, authorizations: NewAuthorization[], signal?: AbortSignal): Promise<void>;
  getOrder(profile: string, id: string, signal?: AbortSignal): Promise<OrderRecord | undefined>;
  /** Ids of an account's orders that are not invalid, in id order, after the cursor (an order id). */
  listOrderIds(accountId: string, limit: number, after?: string, signal?: AbortSignal): Promise<string[]>;
  /** Orders an account created at or after `since`, and when the oldest of them was created. */
  countOrdersSince(
    accountId: string,
    since: Date,
    signal?: AbortSignal,
  ): Promise<{ count: number; oldest: Date | null }>;
  /**
   * Move an order from one of `from` to `to` (with the given fields). True when this call made the
   * change: the way to do something once across replicas.
   */
  transitionOrder(
    id: string,
    from: readonly OrderStatus[],
    to: OrderStatus,
    fields?: { error?: ProblemDoc | null; certificateId?: string; processingAt?: Date | null },
    signal?: AbortSignal,
  ): Promise<boolean>;

  countPendingAuthorizations(accountId: string, now: Date, signal?: AbortSignal): Promise<number>;
  getAuthorization(
    profile: string,
    id: string,
    signal?: AbortSignal,
  ): Promise<AuthorizationRecord | undefined>;
  getAuthorizations(
    profile: string,
    ids: readonly string[],
    signal?: AbortSignal,
  ): Promise<AuthorizationRecord[]>;
  transitionAuthorization(
    id: string,
    from: readonly AuthorizationStatus[],
    to: AuthorizationStatus,
    signal?: AbortSignal,
  ): Promise<boolean>;

  getChallenge(
    profile: string,
    id: string,
    signal?: AbortSignal,
  ): Promise<{ challenge: ChallengeRecord; authorization: AuthorizationRecord } | undefined>;
  /** pending → processing; true when this call started the validation. */
  startChallenge(id: string, at: Date, signal?: AbortSignal): Promise<boolean>;
  /** processing → valid/invalid, and the authorization (if still pending) with it, in one transaction. */
  finishChallenge(
    challengeId: string,
    authorizationId: string,
    outcome: { status: "valid"; at: Date } | { status: "invalid"; at: Date; error: ProblemDoc },
  ): Promise<void>;

  putCertificate(record: IssuedRecord, signal?: AbortSignal): Promise<void>;
  getCertificate(profile: string, id: string, signal?: AbortSignal): Promise<IssuedRecord | undefined>;
  findCertificateByAriId(
    profile: string,
    ariCertId: string,
    signal?: AbortSignal,
  ): Promise<IssuedRecord | undefined>;
  /** True when this call revoked it (false: already revoked). */
  revokeCertificate(id: string, reason: number, at: Date, signal?: AbortSignal): Promise<boolean>;
  /** Mark a certificate replaced by an order; false when another order already replaced it. */
  markReplaced(id: string, orderId: string, signal?: AbortSignal): Promise<boolean>;

  /** Record a nonce as used; false when it already was (a replay). */
  useNonce(nonce: string, expiresAt: Date, signal?: AbortSignal): Promise<boolean>;
  /** Forget used nonces that have expired anyway. Always runs; no signal. */
  purgeNonces(now: Date): Promise<void>;
}
