import { CertfleetError } from "../core/errors.js";
import { isKeyType } from "../core/key-types.js";
import type { CertificateRecord } from "../storage/storage.js";
import type { Inventory } from "./inventory.js";
import type { CertificateManager } from "./manager.js";

/**
 * Renew one inventory entry now, whatever its renewal time (`certfleet certificates renew`, the admin
 * API, the dashboard): the manager's forced renewal, so the usual lock, events, audit and failure
 * records apply. Only certificates whose key certfleet holds can be renewed here: a CSR-custody
 * certificate (an ACME client's, an agent's local key) is renewed by its key holder asking again,
 * refused with `renewal_needs_key_holder` (409); a request that never succeeded has no key type yet
 * and is retried on its own schedule, refused with `certificate_not_issued` (409).
 */
export async function renewById(
  deps: { inventory: Pick<Inventory, "get">; manager: Pick<CertificateManager, "renew"> },
  id: string,
  actor: string | null,
  signal?: AbortSignal,
): Promise<CertificateRecord> {
  const entry = await deps.inventory.get(id, signal);
  if (entry.custody === "csr") {
    throw new CertfleetError(
      "renewal_needs_key_holder",
      "the client holds this certificate's key: it renews by requesting again",
      { status: 409, expose: true },
    );
  }
  if (entry.keyType === null || !isKeyType(entry.keyType)) {
    throw new CertfleetError(
      "certificate_not_issued",
      "this request has never been issued; it is retried on its own schedule",
      { status: 409, expose: true },
    );
  }
  const { record } = await deps.manager.renew(
    { names: entry.names, keyType: entry.keyType, actor, owner: entry.owner, force: true },
    signal,
  );
  if (record.id !== id) {
    // the manager keys certificates by names + key type + custody, as the inventory does
    throw new CertfleetError("certificate_id_mismatch", `renewal stored ${record.id}, not ${id}`, {
      status: 500,
    });
  }
  return record;
}
