import type {
  AccountRecord,
  AuthorizationRecord,
  ChallengeRecord,
  OrderRecord,
} from "../storage/acme-store.js";
import type { AcmeUrls } from "./urls.js";

/** The JSON objects of RFC 8555 §7.1.2–7.1.5, as clients see them. */

export function accountObject(account: AccountRecord, urls: AcmeUrls): Record<string, unknown> {
  return {
    status: account.status,
    contact: account.contact,
    orders: urls.accountOrders(account.id),
    ...(account.eabKid ? { externalAccountBinding: { kid: account.eabKid } } : {}),
    createdAt: account.createdAt.toISOString(),
  };
}

export function orderObject(order: OrderRecord, urls: AcmeUrls): Record<string, unknown> {
  return {
    status: order.status,
    expires: order.expiresAt.toISOString(),
    identifiers: order.identifiers.map((value) => ({ type: "dns", value })),
    authorizations: order.authorizationIds.map((id) => urls.authorization(id)),
    finalize: urls.finalize(order.id),
    ...(order.certificateId && order.status === "valid"
      ? { certificate: urls.certificate(order.certificateId) }
      : {}),
    ...(order.error ? { error: order.error } : {}),
    ...(order.replaces ? { replaces: order.replaces } : {}),
    profile: order.profile,
  };
}

export function challengeObject(challenge: ChallengeRecord, urls: AcmeUrls): Record<string, unknown> {
  return {
    type: challenge.type,
    url: urls.challenge(challenge.id),
    status: challenge.status,
    token: challenge.token,
    ...(challenge.validatedAt ? { validated: challenge.validatedAt.toISOString() } : {}),
    ...(challenge.error ? { error: challenge.error } : {}),
  };
}

export function authorizationObject(authz: AuthorizationRecord, urls: AcmeUrls): Record<string, unknown> {
  // Once an authorization is valid, only the challenge that made it so is of interest (§7.1.4).
  const challenges =
    authz.status === "valid" ? authz.challenges.filter((c) => c.status === "valid") : authz.challenges;
  return {
    identifier: { type: "dns", value: authz.identifier },
    status: authz.status,
    expires: authz.expiresAt.toISOString(),
    challenges: challenges.map((c) => challengeObject(c, urls)),
    ...(authz.wildcard ? { wildcard: true } : {}),
  };
}
