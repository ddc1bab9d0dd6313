import { randomBytes } from "node:crypto";
import { parseCertificate, splitPemChain } from "../core/certificate-info.js";
import { isCertfleetError } from "../core/errors.js";
import type { KeyType } from "../core/key-types.js";
import { ariCertId } from "../acme-client/ari.js";
import type { Issuer } from "../issuance/issuer.js";
import type { OrderRecord } from "../storage/acme-store.js";
import type { ProfileContext } from "./context.js";
import { problem, problemDocument, toProblem, type AcmeProblem } from "./problems.js";

/**
 * Issuance for a finalized order, run once per order: finalize moved the order ready → processing
 * with a conditional update, and only the request that made that move calls `issueForOrder`. The
 * profile's issuer signs the client's own CSR — the embedded CA, or an upstream ACME CA that certfleet
 * finalizes at with that CSR (the client keeps its key and never sees certfleet's DNS credentials).
 * The outcome is written all-or-nothing: the certificate row, then processing → valid (or → invalid
 * with the problem).
 */

/** How long one issuance may take (an upstream ACME CA solves challenges meanwhile). */
export const ISSUANCE_TIMEOUT_MS = 5 * 60_000;

export interface IssueInput {
  order: OrderRecord;
  csrPem: string;
  keyType: KeyType;
}

export async function issueForOrder(
  ctx: ProfileContext,
  input: IssueInput,
  signal: AbortSignal,
): Promise<void> {
  const { order } = input;
  const log = ctx.logger.child({ profile: ctx.profile.name, order: order.id });
  try {
    const issued = await ctx.issuer.issue(
      {
        names: order.identifiers,
        csrPem: input.csrPem,
        keyType: input.keyType,
        ...(order.replaces ? { replaces: order.replaces } : {}),
      },
      signal,
    );
    const [leaf] = splitPemChain(issued.certPem);
    if (!leaf) throw problem("serverInternal", "the issuer returned no certificate");
    const info = parseCertificate(leaf);
    const id = randomBytes(16).toString("base64url");
    await ctx.store.putCertificate(
      {
        id,
        accountId: order.accountId,
        profile: order.profile,
        orderId: order.id,
        names: order.identifiers,
        serial: info.serial,
        ariCertId: certIdOrNull(leaf),
        certPem: leaf,
        chains: chainsFor(ctx.issuer, issued.chainPem),
        notBefore: info.notBefore,
        notAfter: info.notAfter,
        revokedAt: null,
        revocationReason: null,
        replacedBy: null,
        createdAt: ctx.clock.now(),
      },
      signal,
    );
    if (order.replaces) {
      const old = await ctx.store.findCertificateByAriId(order.profile, order.replaces, signal);
      if (old) await ctx.store.markReplaced(old.id, order.id, signal);
    }
    await ctx.store.transitionOrder(order.id, ["processing"], "valid", {
      certificateId: id,
      processingAt: null,
    });
    log.info(
      { names: order.identifiers, serial: info.serial, issuer: ctx.issuer.id },
      "acme certificate issued",
    );
    ctx.audit({
      type: "acme.certificate.issue",
      actor: `acme:${order.profile}:${order.accountId}`,
      subject: order.identifiers.join(","),
      outcome: "success",
      data: {
        profile: order.profile,
        order: order.id,
        serial: info.serial,
        issuer: ctx.issuer.id,
        notAfter: info.notAfter.toISOString(),
      },
    });
  } catch (e) {
    const p = issuanceProblem(e, signal);
    log.warn(
      { problem: p.type, internal: p.internal ?? (e instanceof Error ? e.message : String(e)) },
      "acme issuance failed",
    );
    await ctx.store.transitionOrder(order.id, ["processing"], "invalid", {
      error: problemDocument(p),
      processingAt: null,
    });
    ctx.audit({
      type: "acme.certificate.issue",
      actor: `acme:${order.profile}:${order.accountId}`,
      subject: order.identifiers.join(","),
      outcome: "failure",
      reason: `${p.type}: ${p.internal ?? p.message}`,
      data: { profile: order.profile, order: order.id, issuer: ctx.issuer.id },
    });
  }
}

/** A CSR the issuer refuses is the client's problem (badCSR); an upstream failure is ours. */
function issuanceProblem(e: unknown, signal: AbortSignal): AcmeProblem {
  if (signal.aborted)
    return problem("serverInternal", "issuance timed out", { internal: String(signal.reason) });
  if (isCertfleetError(e) && e.status === 400 && (e.code.startsWith("csr_") || e.code.startsWith("domain"))) {
    return problem("badCSR", e.message, { internal: e.code });
  }
  const p = toProblem(e);
  return p.type === "malformed"
    ? problem("serverInternal", "the issuer failed", { internal: p.internal })
    : p;
}

/** Chain PEMs to offer: the issuer's chain, and, when the issuer exposes its root, the chain with it. */
function chainsFor(issuer: Issuer, chainPem: string): string[] {
  const chain = splitPemChain(chainPem).join("");
  const root = (issuer as Partial<{ rootPem: string }>).rootPem;
  if (typeof root !== "string" || root.length === 0 || chain.includes(root.trim())) return [chain];
  return [chain, chain + splitPemChain(root).join("")];
}

function certIdOrNull(certPem: string): string | null {
  try {
    return ariCertId(certPem);
  } catch {
    return null;
  }
}
