/**
 * Every URL the ACME server hands out, for one profile and one external base URL. The base is the
 * configured `externalUrl` (or the request's own scheme and host), so a JWS `url` header can be checked
 * against exactly what the client was told, also behind a reverse proxy.
 */
export interface AcmeUrls {
  base: string;
  /** `<base>/acme/<profile>` */
  profileBase: string;
  directory: string;
  /** `<base>/acme/directory`, the default profile's alias. */
  defaultDirectory: string;
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange: string;
  renewalInfo: string;
  renewalExplanation: string;
  account(id: string): string;
  accountOrders(id: string): string;
  order(id: string): string;
  finalize(orderId: string): string;
  authorization(id: string): string;
  challenge(id: string): string;
  certificate(id: string, alternate?: number): string;
  /** The account id a `kid` names, or undefined when it is not an account URL of this profile. */
  accountIdFromKid(kid: string): string | undefined;
}

export const ACME_PREFIX = "/acme";

export function acmeUrls(base: string, profile: string): AcmeUrls {
  const root = base.replace(/\/+$/, "");
  const p = `${root}${ACME_PREFIX}/${profile}`;
  const accountPrefix = `${p}/account/`;
  return {
    base: root,
    profileBase: p,
    directory: `${p}/directory`,
    defaultDirectory: `${root}${ACME_PREFIX}/directory`,
    newNonce: `${p}/new-nonce`,
    newAccount: `${p}/new-account`,
    newOrder: `${p}/new-order`,
    revokeCert: `${p}/revoke-cert`,
    keyChange: `${p}/key-change`,
    renewalInfo: `${p}/renewal-info`,
    renewalExplanation: `${p}/renewal-info-explained`,
    account: (id) => `${accountPrefix}${id}`,
    accountOrders: (id) => `${accountPrefix}${id}/orders`,
    order: (id) => `${p}/order/${id}`,
    finalize: (id) => `${p}/order/${id}/finalize`,
    authorization: (id) => `${p}/authz/${id}`,
    challenge: (id) => `${p}/chall/${id}`,
    certificate: (id, alternate) => (alternate ? `${p}/cert/${id}/${alternate}` : `${p}/cert/${id}`),
    accountIdFromKid(kid) {
      if (!kid.startsWith(accountPrefix)) return undefined;
      const id = kid.slice(accountPrefix.length);
      return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : undefined;
    },
  };
}
