import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { decodePayload, headerJwk, parseJws, verifyJwsSignature } from "../jws.js";
import { jwkThumbprint } from "../jwk.js";
import { problem } from "../problems.js";
import { refuseCertificateKey } from "./new-account.js";
import { accountObject } from "../resources.js";

/**
 * RFC 8555 §7.3.5 Account Key Rollover. The outer JWS is signed by the account (`kid`); its payload is
 * an inner JWS signed by the new key (`jwk`, same `url`) whose payload names the account and its
 * current key. The swap is conditional on the old key still being current; a new key that already
 * belongs to another account of this profile is `conflict` with that account's URL.
 */
export async function keyChange(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  const account = jws.account!;
  if (jws.payload === undefined) throw problem("malformed", "keyChange needs an inner JWS");

  const inner = parseJws(jws.payload, "the inner JWS");
  if ("kid" in inner.header || !("jwk" in inner.header)) {
    throw problem("malformed", "the inner JWS must carry the new key as jwk and no kid");
  }
  // §7.3.5: the inner JWS MUST omit the nonce (it is not a request of its own and must not be
  // replayable as one) and MUST carry the same url as the outer JWS.
  if ("nonce" in inner.header) throw problem("malformed", "the inner JWS must not carry a nonce");
  if (inner.header.url !== jws.header.url) throw problem("malformed", "the inner and outer JWS url differ");
  const newJwk = headerJwk(inner.header);
  const innerPayload = await verifyJwsSignature(inner.jws, inner.header.alg, newJwk);
  // a JSON object (decodePayload refuses `null`, arrays and non-JSON with `malformed`)
  const body = (decodePayload(innerPayload) ?? {}) as { account?: unknown; oldKey?: unknown };
  if (body.account !== jws.header.kid || body.account !== urls.account(account.id)) {
    throw problem("unauthorized", "the inner JWS names another account");
  }
  if (typeof body.oldKey !== "object" || body.oldKey === null)
    throw problem("malformed", "the inner payload has no oldKey");
  let oldThumbprint: string;
  try {
    oldThumbprint = await jwkThumbprint(body.oldKey as never);
  } catch {
    throw problem("malformed", "oldKey is not a JWK");
  }
  if (oldThumbprint !== account.thumbprint)
    throw problem("unauthorized", "oldKey is not the account's current key");

  const newThumbprint = await jwkThumbprint(newJwk);
  if (newThumbprint === account.thumbprint) throw problem("malformed", "the new key is the current key");
  await refuseCertificateKey(req, newThumbprint);
  const holder = await ctx.store.findAccountByThumbprint(ctx.profile.name, newThumbprint, signal);
  if (holder) return conflict(urls.account(holder.id));

  const result = await ctx.store.changeAccountKey(
    account.id,
    account.thumbprint,
    newJwk,
    newThumbprint,
    signal,
  );
  if (result === "conflict") {
    const raced = await ctx.store.findAccountByThumbprint(ctx.profile.name, newThumbprint, signal);
    return conflict(raced ? urls.account(raced.id) : undefined);
  }
  if (result === "stale") throw problem("unauthorized", "the account key changed meanwhile");
  ctx.audit({
    type: "acme.account.key-change",
    actor: `acme:${ctx.profile.name}:${account.id}`,
    outcome: "success",
    remoteAddress: req.remoteAddress ?? null,
  });
  const updated = await ctx.store.getAccount(ctx.profile.name, account.id, signal);
  return { status: 200, location: urls.account(account.id), body: accountObject(updated ?? account, urls) };
}

function conflict(location: string | undefined): never {
  throw problem("conflict", "the new key already belongs to another account", { location });
}
