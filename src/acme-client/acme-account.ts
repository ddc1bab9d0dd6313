import { createHash } from "node:crypto";
import { generatePrivateKey } from "../core/keys.js";
import type { KeyValueStore } from "../storage/storage.js";
import { acmeProblemError, asProblem, protocolError } from "./acme-errors.js";
import type { AcmeSession } from "./acme-transport.js";

/**
 * The ACME account of one (directory URL, email) pair. Its key is created once and stored encrypted
 * (namespace `acme-accounts`, key `<id>/key`, create-once so racing replicas converge on one key);
 * the account URL is stored next to it (`<id>/url`) after registration. Registering an existing key
 * again is harmless: the CA answers with the same account.
 */
export const ACCOUNT_NAMESPACE = "acme-accounts";

export type AccountStore = Pick<KeyValueStore, "getValue" | "putValue">;

export interface AcmeAccount {
  keyPem: string;
  /** undefined until registered. */
  url: string | undefined;
}

/** Stable storage id of the account for `directoryUrl` + `email`. */
export function accountStorageId(directoryUrl: string, email: string | undefined): string {
  return createHash("sha256")
    .update(`${directoryUrl}\n${email ?? ""}`)
    .digest("hex")
    .slice(0, 32);
}

/** Load the stored key and URL, creating (once) the key if there is none. */
export async function loadAccount(
  store: AccountStore,
  id: string,
  signal: AbortSignal,
): Promise<AcmeAccount> {
  let keyPem = await store.getValue(ACCOUNT_NAMESPACE, `${id}/key`, signal);
  if (!keyPem) {
    const fresh = await generatePrivateKey("ec256");
    keyPem = await store.putValue(
      ACCOUNT_NAMESPACE,
      `${id}/key`,
      fresh,
      { secret: true, ifAbsent: true },
      signal,
    );
  }
  const url = await store.getValue(ACCOUNT_NAMESPACE, `${id}/url`, signal);
  return { keyPem, url: url || undefined };
}

/**
 * newAccount (RFC 8555 §7.3) with termsOfServiceAgreed, the contact address and the EAB binding
 * (the session adds it when it has one). Stores and returns the account URL.
 */
export async function registerAccount(
  deps: { store: AccountStore; session: AcmeSession; id: string; email: string | undefined; now: () => Date },
  signal: AbortSignal,
): Promise<string> {
  const { session, store, id, email } = deps;
  const url = await session.resourceUrl("newAccount");
  const payload = { termsOfServiceAgreed: true, ...(email ? { contact: [`mailto:${email}`] } : {}) };
  // §7.3.1: a repeated newAccount for the same key answers with the existing account
  const res = await session.post(url, payload, { asNewAccount: true, repeatable: true });
  if (res.status !== 200 && res.status !== 201) {
    throw acmeProblemError(asProblem(res.data), "account", {
      httpStatus: res.status,
      retryAfterHeader: res.headers["retry-after"],
      now: deps.now(),
    });
  }
  const accountUrl = res.headers["location"];
  if (!accountUrl) throw protocolError("the ACME CA did not return an account URL");
  await store.putValue(ACCOUNT_NAMESPACE, `${id}/url`, accountUrl, {}, signal);
  session.setAccountUrl(accountUrl);
  return accountUrl;
}
