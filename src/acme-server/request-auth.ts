import type { JWK } from "jose";
import type { AccountRecord, AcmeStore } from "../storage/acme-store.js";
import { decodePayload, headerJwk, parseJws, verifyJwsSignature, type ProtectedHeader } from "./jws.js";
import type { NonceService } from "./nonces.js";
import { problem } from "./problems.js";
import type { AcmeUrls } from "./urls.js";

/**
 * Authenticate an ACME POST (RFC 8555 §6.2–6.5), step by step:
 * content type → flattened JWS envelope → algorithm allowlist → `url` equals the request URL →
 * `jwk` xor `kid` as the resource demands → the key (a `kid` must name a valid account of THIS
 * profile) → signature → nonce (single use, consumed only by a correctly signed request) → payload.
 */
export type KeyRule = "jwk" | "kid" | "jwk-or-kid";

export interface AuthenticatedRequest {
  header: ProtectedHeader;
  /** The key that signed, canonical. */
  jwk: JWK;
  /** The account named by `kid`. */
  account: AccountRecord | undefined;
  /** Parsed JSON payload; undefined for POST-as-GET (empty payload). */
  payload: Record<string, unknown> | undefined;
}

export interface RequestAuthContext {
  /** The URL this request arrived at, as the client sees it (external base + path). */
  requestUrl: string;
  rule: KeyRule;
  urls: AcmeUrls;
  profile: string;
  store: Pick<AcmeStore, "getAccount">;
  nonces: NonceService;
  signal?: AbortSignal;
}

export const JOSE_CONTENT_TYPE = "application/jose+json";

export async function authenticateRequest(
  request: { contentType: string | undefined; body: unknown },
  ctx: RequestAuthContext,
): Promise<AuthenticatedRequest> {
  const mediaType = (request.contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType !== JOSE_CONTENT_TYPE) {
    throw problem("malformed", `requests must have Content-Type ${JOSE_CONTENT_TYPE}`, { status: 415 });
  }
  let body: unknown;
  try {
    body = JSON.parse(typeof request.body === "string" ? request.body : "");
  } catch {
    throw problem("malformed", "the request body is not JSON");
  }
  const { jws, header } = parseJws(body);

  if (header.url !== ctx.requestUrl) {
    throw problem("unauthorized", "the JWS url header does not match the request URL", {
      internal: `url ${header.url} != ${ctx.requestUrl}`,
    });
  }
  const hasJwk = "jwk" in header;
  const hasKid = "kid" in header;
  if (hasJwk && hasKid) throw problem("malformed", "the JWS must carry either jwk or kid, not both");
  if (!hasJwk && !hasKid) throw problem("malformed", "the JWS must carry jwk or kid");
  if (ctx.rule === "jwk" && !hasJwk) throw problem("malformed", "this resource needs a jwk header, not kid");
  if (ctx.rule === "kid" && !hasKid) throw problem("malformed", "this resource needs a kid header, not jwk");

  let jwk: JWK;
  let account: AccountRecord | undefined;
  if (hasKid) {
    account = await accountForKid(header.kid!, ctx);
    jwk = account.jwk;
  } else {
    jwk = headerJwk(header);
  }

  const payload = await verifyJwsSignature(jws, header.alg, jwk);
  await ctx.nonces.consume(header.nonce, ctx.signal);
  return { header, jwk, account, payload: decodePayload(payload) as Record<string, unknown> | undefined };
}

async function accountForKid(kid: string, ctx: RequestAuthContext): Promise<AccountRecord> {
  const id = ctx.urls.accountIdFromKid(kid);
  if (id === undefined) {
    throw problem("unauthorized", "the kid is not an account URL of this ACME profile", {
      internal: `kid ${kid}`,
    });
  }
  const account = await ctx.store.getAccount(ctx.profile, id, ctx.signal);
  if (!account) throw problem("accountDoesNotExist", "no such account", { internal: `kid ${kid}` });
  if (account.status !== "valid") throw problem("unauthorized", `the account is ${account.status}`);
  return account;
}

/** POST-as-GET (RFC 8555 §6.3): the payload must be empty. */
export function requirePostAsGet(req: AuthenticatedRequest): void {
  if (req.payload !== undefined)
    throw problem("malformed", "this resource takes POST-as-GET (an empty payload)");
}
