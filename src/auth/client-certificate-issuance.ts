import { X509Certificate } from "node:crypto";
import { ValidationError } from "../core/errors.js";
import type { ClientCertificate, EmbeddedCa } from "../internal-ca/embedded-ca.js";
import type { IdentityRecord, IdentityStore } from "../storage/storage.js";
import { createIdentityRecord, type IdentityInput } from "./identity-service.js";

/**
 * A `certificate` identity with its client certificate from the embedded CA, in one step: issue a
 * clientAuth certificate (subject CN = the identity's name; a fresh ECDSA P-256 key unless the holder's
 * public key is given), then create the identity record bound to that certificate's SHA-256
 * fingerprint — the most specific binding, so no other certificate with the same name can stand in for
 * it. The certificate is issued first: a failure there creates nothing; a failure creating the record
 * leaves an unbound certificate that authenticates as nobody.
 *
 * Error codes: the CA's (subject_invalid, key_invalid, key_weak, validity_invalid) and the identity
 * service's (binding_invalid, grant_invalid, …), all 400.
 */
export const DEFAULT_CLIENT_CERT_VALIDITY_DAYS = 90;

export interface CertificateIdentityInput extends Omit<IdentityInput, "method" | "binding"> {
  validityDays?: number;
  /** SPKI PEM of a key the holder keeps; then no private key is generated or returned. */
  publicKeyPem?: string;
}

export async function createCertificateIdentity(
  deps: {
    store: Pick<IdentityStore, "createIdentity" | "getIdentity" | "updateIdentity">;
    ca: Pick<EmbeddedCa, "issueClientCertificate">;
  },
  input: CertificateIdentityInput,
  signal?: AbortSignal,
): Promise<{ record: IdentityRecord; certificate: ClientCertificate }> {
  const validityDays = input.validityDays ?? DEFAULT_CLIENT_CERT_VALIDITY_DAYS;
  if (!Number.isFinite(validityDays) || validityDays <= 0 || validityDays > 3650)
    throw new ValidationError("validity_invalid", "the validity must be between 1 and 3650 days");
  const certificate = await deps.ca.issueClientCertificate(
    {
      subjectCn: input.name,
      validityDays,
      ...(input.publicKeyPem !== undefined ? { publicKeyPem: input.publicKeyPem } : {}),
    },
    signal,
  );
  const fingerprint = new X509Certificate(certificate.certPem).fingerprint256.replace(/:/g, "").toLowerCase();
  const { record } = await createIdentityRecord(deps.store, {
    name: input.name,
    method: "certificate",
    binding: { fingerprint },
    grants: input.grants,
    enabled: input.enabled,
    admin: input.admin,
  });
  return { record, certificate };
}
