import type { AcmeStore, AuthorizationRecord, OrderRecord } from "../storage/acme-store.js";
import { problem, problemDocument } from "./problems.js";

/**
 * Order and authorization states move on when they are read (RFC 8555 §7.1.6): an expired pending
 * authorization becomes `expired`; a pending order becomes `ready` once every authorization is valid
 * and `invalid` once one of them cannot become valid; a pending or ready order past its expiry, or a
 * `processing` order whose issuance died with its replica, becomes `invalid`. Each step is a
 * conditional update, so concurrent readers agree.
 */

/** How long a `processing` order may stay so before it is declared failed. */
export const PROCESSING_DEADLINE_MS = 10 * 60_000;
/** Likewise for a challenge whose validation died with its replica. */
export const VALIDATION_DEADLINE_MS = 5 * 60_000;

export async function refreshAuthorizations(
  store: AcmeStore,
  authzs: AuthorizationRecord[],
  now: Date,
  signal?: AbortSignal,
): Promise<AuthorizationRecord[]> {
  const out: AuthorizationRecord[] = [];
  for (const a of authzs) {
    if ((a.status === "pending" || a.status === "valid") && a.expiresAt.getTime() <= now.getTime()) {
      await store.transitionAuthorization(a.id, [a.status], "expired", signal);
      out.push({ ...a, status: "expired" });
      continue;
    }
    const stuck = a.challenges.find(
      (c) =>
        c.status === "processing" &&
        c.processingAt &&
        c.processingAt.getTime() + VALIDATION_DEADLINE_MS <= now.getTime(),
    );
    if (a.status === "pending" && stuck) {
      await store.finishChallenge(stuck.id, a.id, {
        status: "invalid",
        at: now,
        error: problemDocument(problem("serverInternal", "validation did not complete")),
      });
      out.push((await store.getAuthorization(a.profile, a.id, signal)) ?? a);
      continue;
    }
    out.push(a);
  }
  return out;
}

export async function refreshOrder(
  store: AcmeStore,
  order: OrderRecord,
  now: Date,
  signal?: AbortSignal,
): Promise<{ order: OrderRecord; authorizations: AuthorizationRecord[] }> {
  const authorizations = await refreshAuthorizations(
    store,
    await store.getAuthorizations(order.profile, order.authorizationIds, signal),
    now,
    signal,
  );
  let next = order;
  const move = async (to: OrderRecord["status"], error: Record<string, unknown> | null) => {
    if (await store.transitionOrder(order.id, [order.status], to, { error }, signal)) {
      next = { ...order, status: to, error };
    } else {
      next = (await store.getOrder(order.profile, order.id, signal)) ?? order;
    }
  };

  if (
    (order.status === "pending" || order.status === "ready") &&
    order.expiresAt.getTime() <= now.getTime()
  ) {
    await move("invalid", problemDocument(problem("malformed", "the order expired")));
  } else if (order.status === "pending") {
    const failed = authorizations.find((a) => a.status !== "valid" && a.status !== "pending");
    if (failed) {
      const error = failed.challenges.find((c) => c.error)?.error;
      await move(
        "invalid",
        error ??
          problemDocument(
            problem("unauthorized", `the authorization for ${failed.identifier} is ${failed.status}`),
          ),
      );
    } else if (authorizations.length > 0 && authorizations.every((a) => a.status === "valid")) {
      await move("ready", null);
    }
  } else if (
    order.status === "processing" &&
    order.processingAt &&
    order.processingAt.getTime() + PROCESSING_DEADLINE_MS <= now.getTime()
  ) {
    await move("invalid", problemDocument(problem("serverInternal", "issuance did not complete")));
  }
  return { order: next, authorizations };
}
