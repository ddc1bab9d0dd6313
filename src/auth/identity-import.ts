import { z } from "zod";
import { CertfleetError, isCertfleetError, ValidationError } from "../core/errors.js";
import { KEY_TYPES } from "../core/key-types.js";
import { normalizeNames } from "../core/names.js";
import type { AssignedCertificate } from "../storage/identity-assignments.js";
import type { IdentityRecord, IdentityStore } from "../storage/storage.js";
import { recordBindingKey } from "./binding.js";
import { CLIENT_ID_PREFIX, CLIENT_SECRET_METHOD } from "./client-secret.js";
import { isNameGranted } from "./grants.js";
import { IDENTITY_METHODS, normalizeGrants } from "./identity-service.js";
import { hashSecret } from "./secrets.js";

/**
 * Assignments (which certificates an identity's agent keeps installed) and the import of identities
 * from another system (Zaita Courier records), shared by the admin API and `certfleet identity import`.
 *
 * An import keeps what agents already have in their configs: the record's UUID and, for
 * `client_secret`, the existing client id and secret (stored only as a scrypt hash). Every entry is
 * checked before anything is written; then records are created one by one, and an id or binding that
 * already exists stops the import with `identity_conflict` naming the entry (earlier entries stay).
 */

const certificateName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "lowercase letters, digits, dot, dash, underscore");

export const assignmentSchema = z
  .array(
    z.strictObject({
      name: certificateName,
      domains: z.array(z.string().min(1)).min(1).max(100),
      keyType: z.enum(KEY_TYPES).default("ec256"),
    }),
  )
  .max(100);

export const identityImportSchema = z.strictObject({
  id: z.uuid(),
  name: z.string().min(1).max(200),
  method: z.enum(IDENTITY_METHODS),
  binding: z.record(z.string(), z.string().max(2048)).default({}),
  grants: z.array(z.string()).max(1000).default([]),
  enabled: z.boolean().default(true),
  admin: z.boolean().default(false),
  clientId: z
    .string()
    .regex(/^cour_[A-Za-z0-9_-]{8,120}$/, `a ${CLIENT_ID_PREFIX}-prefixed client id`)
    .optional(),
  clientSecret: z.string().min(16).max(512).optional(),
  certificates: assignmentSchema.default([]),
});
export const importFileSchema = z.strictObject({
  identities: z.array(identityImportSchema).min(1).max(10_000),
});

export type IdentityImport = z.infer<typeof identityImportSchema>;

/**
 * Normalise an assignment and check it against the record's grants: unique names, valid domains, each
 * domain granted. Throws ValidationError (`assignment_invalid`, `assignment_not_granted`).
 */
export function checkAssignment(
  grants: readonly string[],
  entries: readonly { name: string; domains: string[]; keyType: AssignedCertificate["keyType"] }[],
  path = "certificates",
): AssignedCertificate[] {
  const seen = new Set<string>();
  return entries.map((e, i) => {
    if (seen.has(e.name))
      throw new ValidationError("assignment_invalid", `${path}.${i}.name: "${e.name}" is used twice`);
    seen.add(e.name);
    let domains: string[];
    try {
      domains = normalizeNames(e.domains);
    } catch (err) {
      throw new ValidationError(
        "assignment_invalid",
        `${path}.${i}.domains: ${isCertfleetError(err) ? err.message : String(err)}`,
      );
    }
    const refused = domains.filter((d) => !isNameGranted(grants, d));
    if (refused.length > 0) {
      throw new ValidationError(
        "assignment_not_granted",
        `${path}.${i}.domains: the identity is not granted ${refused.join(", ")}`,
        { names: refused },
      );
    }
    return { name: e.name, domains, keyType: e.keyType };
  });
}

interface PreparedImport {
  input: IdentityImport;
  binding: Record<string, string>;
  grants: string[];
  certificates: AssignedCertificate[];
}

function prepare(input: IdentityImport, at: string): PreparedImport {
  let binding = input.binding;
  const isSecret = input.method === CLIENT_SECRET_METHOD;
  if (isSecret) {
    if (!input.clientId || !input.clientSecret)
      throw new ValidationError("request_invalid", `${at}: client_secret needs clientId and clientSecret`);
    if (Object.keys(binding).length > 0)
      throw new ValidationError("binding_invalid", `${at}.binding: client_secret takes clientId instead`);
    binding = { clientId: input.clientId };
  } else if (input.clientId !== undefined || input.clientSecret !== undefined) {
    throw new ValidationError("request_invalid", `${at}: clientId / clientSecret only go with client_secret`);
  }
  const grants = normalizeGrants(input.grants);
  return {
    input,
    binding,
    grants,
    certificates: checkAssignment(grants, input.certificates, `${at}.certificates`),
  };
}

export async function importIdentities(
  store: Pick<IdentityStore, "createIdentity" | "replaceAssignments">,
  inputs: readonly IdentityImport[],
  signal?: AbortSignal,
): Promise<IdentityRecord[]> {
  const prepared = inputs.map((input, i) => prepare(input, `identities.${i}`));
  const ids = new Set<string>();
  prepared.forEach((p, i) => {
    if (ids.has(p.input.id))
      throw new ValidationError("request_invalid", `identities.${i}.id: ${p.input.id} appears twice`);
    ids.add(p.input.id);
  });
  const created: IdentityRecord[] = [];
  for (const [i, p] of prepared.entries()) {
    const secretHash = p.input.clientSecret ? await hashSecret(p.input.clientSecret) : null;
    let record: IdentityRecord;
    try {
      record = await store.createIdentity(
        {
          id: p.input.id,
          name: p.input.name,
          method: p.input.method,
          binding: p.binding,
          bindingKey: recordBindingKey(p.input.method, p.binding),
          grants: p.grants,
          enabled: p.input.enabled,
          admin: p.input.admin,
          secretHash,
        },
        signal,
      );
    } catch (e) {
      if (isCertfleetError(e) && e.code === "identity_conflict")
        throw new CertfleetError(
          "identity_conflict",
          `identities.${i}: ${p.input.id} or its binding already exists`,
          {
            status: 409,
            details: { id: p.input.id, imported: created.length },
          },
        );
      throw e;
    }
    await store.replaceAssignments(record.id, p.certificates, signal);
    created.push(record);
  }
  return created;
}
