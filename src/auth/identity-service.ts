import { randomUUID } from "node:crypto";
import { CertfleetError, ValidationError } from "../core/errors.js";
import { normalizeGrantPattern } from "../core/grant-patterns.js";
import type { IdentityPatch, IdentityRecord, IdentityStore } from "../storage/storage.js";
import { recordBindingKey } from "./binding.js";
import { CLIENT_SECRET_METHOD, createClientCredentials } from "./client-secret.js";

/**
 * Identity-record administration, shared by the admin API and the CLI: one place decides how a record
 * is made (binding key, normalised grants, server-generated client secrets shown once).
 */
export const IDENTITY_METHODS = [
  "jwt",
  "azure",
  "aws",
  "gcp",
  "kubernetes",
  "spiffe",
  "client_secret",
  "certificate",
] as const;
export type IdentityMethod = (typeof IDENTITY_METHODS)[number];

export interface IdentityInput {
  name: string;
  method: IdentityMethod;
  binding: Record<string, string>;
  grants: string[];
  enabled: boolean;
  admin: boolean;
}

type IdentityWrites = Pick<IdentityStore, "createIdentity" | "getIdentity" | "updateIdentity">;

export function normalizeGrants(input: readonly string[]): string[] {
  return [...new Set(input.map(normalizeGrantPattern))];
}

export const identityNotFound = (id: string) =>
  new CertfleetError("identity_not_found", `no identity ${id}`, { status: 404, details: { id } });

/** Create a record; for client_secret the answer carries the secret, which is stored only hashed. */
export async function createIdentityRecord(
  store: IdentityWrites,
  input: IdentityInput,
): Promise<{ record: IdentityRecord; clientSecret?: string }> {
  let binding = input.binding;
  let secretHash: string | null = null;
  let clientSecret: string | undefined;
  if (input.method === CLIENT_SECRET_METHOD) {
    if (Object.keys(binding).length > 0) {
      throw new ValidationError(
        "binding_invalid",
        "client_secret identities get their client id from the server; send no binding",
      );
    }
    const creds = await createClientCredentials();
    binding = { clientId: creds.clientId };
    secretHash = creds.secretHash;
    clientSecret = creds.clientSecret;
  }
  const record = await store.createIdentity({
    id: randomUUID(),
    name: input.name,
    method: input.method,
    binding,
    bindingKey: recordBindingKey(input.method, binding),
    grants: normalizeGrants(input.grants),
    enabled: input.enabled,
    admin: input.admin,
    secretHash,
  });
  return { record, ...(clientSecret ? { clientSecret } : {}) };
}

export async function updateIdentityRecord(
  store: IdentityWrites,
  id: string,
  patch: IdentityPatch,
): Promise<IdentityRecord> {
  const record = await store.updateIdentity(id, {
    ...patch,
    ...(patch.grants ? { grants: normalizeGrants(patch.grants) } : {}),
  });
  if (!record) throw identityNotFound(id);
  return record;
}

/** A new secret for a client_secret identity (same client id); the old one stops working at once. */
export async function rotateIdentitySecret(
  store: IdentityWrites,
  id: string,
): Promise<{ record: IdentityRecord; clientSecret: string }> {
  const record = await store.getIdentity(id);
  if (!record) throw identityNotFound(id);
  if (record.method !== CLIENT_SECRET_METHOD || !record.binding.clientId) {
    throw new ValidationError(
      "identity_has_no_secret",
      `a ${record.method} identity has no server-generated secret to rotate`,
    );
  }
  const creds = await createClientCredentials({ clientId: record.binding.clientId });
  const updated = await store.updateIdentity(record.id, { secretHash: creds.secretHash });
  if (!updated) throw identityNotFound(id);
  return { record: updated, clientSecret: creds.clientSecret };
}

/** Public view of a record: never the secret hash. */
export function presentIdentity(r: IdentityRecord) {
  return {
    id: r.id,
    name: r.name,
    method: r.method,
    binding: r.binding,
    grants: r.grants,
    enabled: r.enabled,
    admin: r.admin,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}
