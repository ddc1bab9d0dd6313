import { createPublicKey } from "node:crypto";
import { isCertfleetError } from "../../core/errors.js";
import { isKeyType } from "../../core/key-types.js";
import { parseCsr } from "../../core/keys.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { ISSUANCE_TIMEOUT_MS, issueForOrder } from "../issuance.js";
import { jwkSpki, jwkThumbprint } from "../jwk.js";
import { problem } from "../problems.js";
import { orderResponse, ownOrder } from "./order.js";

/** Finalize answers with the finished order when issuance takes no longer than this. */
const FINALIZE_WAIT_MS = 3_000;

/**
 * RFC 8555 §7.4 finalize. The order must be `ready`; the CSR must name exactly the order's
 * identifiers (no extra SANs; parseCsr refuses IP, e-mail and URI SANs outright) with a key certfleet
 * issues for that is not an account key (§11.1). Issuance happens once: only the request whose ready → processing update wins starts it;
 * a concurrent or repeated finalize gets `orderNotReady`. A fast issuer's result is in the answer; a
 * slow one leaves the order `processing` (with Retry-After) for the client to poll.
 */
export async function finalize(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, jws, signal } = req;
  const order = await ownOrder(req, req.params.id!);
  if (order.status !== "ready") throw problem("orderNotReady", `the order is ${order.status}, not ready`);
  const payload = jws.payload;
  if (typeof payload?.csr !== "string" || !/^[A-Za-z0-9_-]+$/.test(payload.csr)) {
    throw problem("malformed", "finalize needs a base64url csr");
  }
  const der = Buffer.from(payload.csr, "base64url");
  const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE REQUEST-----\n`;
  let csr: ReturnType<typeof parseCsr>;
  try {
    csr = parseCsr(csrPem);
  } catch (e) {
    throw problem("badCSR", isCertfleetError(e) ? e.message : "the CSR is not valid", {
      internal: isCertfleetError(e) ? e.code : undefined,
    });
  }
  const wanted = new Set(order.identifiers);
  const extra = csr.names.filter((n) => !wanted.has(n));
  const missing = order.identifiers.filter((n) => !csr.names.includes(n));
  if (extra.length > 0 || missing.length > 0) {
    throw problem("badCSR", "the CSR must name exactly the order's identifiers", {
      internal: `extra ${extra.join(",")} missing ${missing.join(",")}`,
    });
  }
  const keyType = csr.keyType;
  if (!isKeyType(keyType)) throw problem("badCSR", "the CSR's key type is not one certfleet issues for");
  await refuseAccountKey(req, csr.publicKeyPem);

  if (
    !(await ctx.store.transitionOrder(
      order.id,
      ["ready"],
      "processing",
      { processingAt: ctx.clock.now() },
      signal,
    ))
  ) {
    throw problem("orderNotReady", "the order is already being finalized");
  }
  const processing = { ...order, status: "processing" as const };
  const done = ctx.work.run("issue certificate", ISSUANCE_TIMEOUT_MS, (s) =>
    issueForOrder(ctx, { order: processing, csrPem, keyType }, s),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, FINALIZE_WAIT_MS)))]);
  clearTimeout(timer);
  return orderResponse(req, await ownOrder(req, order.id));
}

/**
 * RFC 8555 §11.1: the certificate key must differ from the account key. A CSR carrying the ordering
 * account's key is `badCSR`; so is one carrying the key of any other account of this profile, since
 * a certificate for an account key lets whoever holds the certificate's key sign as that account and
 * the server would be vouching for a key it also trusts to authorize orders.
 */
async function refuseAccountKey(req: SignedAcmeRequest, spkiPem: string): Promise<void> {
  const spki = createPublicKey(spkiPem);
  const der = spki.export({ type: "spki", format: "der" });
  if (der.equals(jwkSpki(req.jws.account!.jwk))) {
    throw problem("badCSR", "the CSR's public key is the account key; use a separate certificate key");
  }
  const thumbprint = await jwkThumbprint(spki.export({ format: "jwk" }) as never);
  const other = await req.ctx.store.findAccountByThumbprint(req.ctx.profile.name, thumbprint, req.signal);
  if (other) {
    throw problem("badCSR", "the CSR's public key is an ACME account key; use a separate certificate key", {
      internal: `key of account ${other.id}`,
    });
  }
}
