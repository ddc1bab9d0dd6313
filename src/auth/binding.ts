import { ValidationError } from "../core/errors.js";
import { AuthFailure } from "./auth-failure.js";

/**
 * Binding keys: how a verified proof finds its identity record. An identity record stores a `binding`
 * (the fields an administrator entered) and a unique `bindingKey` derived from it here; at
 * authentication the verified proof (token claims, client id, certificate) is turned into the same
 * key(s) and looked up with Storage.findIdentityByBinding. Both derivations live in this one file so
 * they cannot drift apart.
 *
 * Every key starts with the method, and keys for issuer-scoped subjects include the issuer, so a
 * token from one trusted issuer can never match a record meant for another.
 *
 * | method          | binding fields                          | key                                         |
 * |-----------------|-----------------------------------------|---------------------------------------------|
 * | jwt             | issuer, subject                         | `jwt:<iss>|sub=<sub>`                       |
 * | azure           | tenantId, objectId                      | `azure:<tid>|<oid>`                         |
 * | aws             | issuer, roleArn                         | `aws:<iss>|<role ARN>`                      |
 * | gcp             | issuer, subject — or issuer, email      | `gcp:<iss>|sub=<sub>` / `gcp:<iss>|email=…` |
 * | kubernetes      | issuer, namespace, serviceAccount       | `kubernetes:<iss>|system:serviceaccount:…`  |
 * | spiffe          | spiffeId                                | `spiffe:<spiffe id>`                        |
 * | client_secret   | clientId                                | `client_secret:<cour_…>`                    |
 * | certificate     | fingerprint — or commonName, dnsName, uri | `x509:sha256=<hex>` / `x509:cn=…` / …     |
 */

export const WORKLOAD_KINDS = ["oidc", "azure", "aws", "gcp", "kubernetes", "spiffe"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** The identity-record method for tokens of a given issuer kind. */
export function methodOfKind(kind: WorkloadKind): string {
  return kind === "oidc" ? "jwt" : kind;
}

const KUBERNETES_SUB =
  /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]+$/;
const ASSUMED_ROLE_ARN = /^arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role\/([\w+=,.@-]+)\/[\w+=,.@-]+$/;
const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The trust domain of a SPIFFE ID, or undefined when the value is not one. */
export function spiffeTrustDomain(id: string): string | undefined {
  if (id.length > 2048) return undefined;
  return SPIFFE_ID.exec(id)?.[1];
}

/** `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` → `arn:aws:iam::ACCT:role/ROLE`; role ARNs as they are. */
export function roleArnOf(arn: string): string | undefined {
  if (ROLE_ARN.test(arn)) return arn;
  const m = ASSUMED_ROLE_ARN.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : undefined;
}

function claimString(claims: Record<string, unknown>, name: string): string {
  const value = claims[name];
  if (typeof value !== "string" || value.length === 0 || value.length > 1024) {
    throw new AuthFailure("jwt_binding_claim_missing", `claim "${name}" is missing or not a string`);
  }
  return value;
}

/**
 * The binding keys a verified token may match, in the order they are tried. Throws AuthFailure when
 * the token lacks the claims its issuer kind requires.
 */
export function tokenBindingKeys(kind: WorkloadKind, claims: Record<string, unknown>): string[] {
  const iss = typeof claims.iss === "string" ? claims.iss : "";
  switch (kind) {
    case "oidc":
      return [`jwt:${iss}|sub=${claimString(claims, "sub")}`];
    case "azure": {
      const tid = claimString(claims, "tid").toLowerCase();
      const oid = claimString(claims, "oid").toLowerCase();
      if (!GUID.test(tid) || !GUID.test(oid))
        throw new AuthFailure("azure_claims_invalid", "tid/oid are not GUIDs");
      // v1 (sts.windows.net/<tid>/) and v2 (login.microsoftonline.com/<tid>/v2.0) issuers name the tenant.
      if (!iss.toLowerCase().includes(tid))
        throw new AuthFailure("azure_tenant_mismatch", `tid ${tid} is not the issuer's tenant`);
      return [`azure:${tid}|${oid}`];
    }
    case "aws": {
      const arn = roleArnOf(claimString(claims, "sub"));
      if (!arn) throw new AuthFailure("aws_sub_not_role_arn", "sub is not an IAM role or assumed-role ARN");
      return [`aws:${iss}|${arn}`];
    }
    case "gcp": {
      const keys = [`gcp:${iss}|sub=${claimString(claims, "sub")}`];
      if (typeof claims.email === "string" && claims.email_verified === true)
        keys.push(`gcp:${iss}|email=${claims.email.toLowerCase()}`);
      return keys;
    }
    case "kubernetes": {
      const sub = claimString(claims, "sub");
      if (!KUBERNETES_SUB.test(sub))
        throw new AuthFailure("kubernetes_sub_invalid", "sub is not system:serviceaccount:<ns>:<name>");
      return [`kubernetes:${iss}|${sub}`];
    }
    case "spiffe": {
      const sub = claimString(claims, "sub");
      if (spiffeTrustDomain(sub) === undefined)
        throw new AuthFailure("spiffe_id_invalid", "sub is not a SPIFFE ID");
      return [`spiffe:${sub}`];
    }
  }
}

export function clientSecretBindingKey(clientId: string): string {
  return `client_secret:${clientId}`;
}

/** Normalise a SHA-256 fingerprint: `AB:CD:…` or `abcd…` → 64 lowercase hex digits. */
export function normalizeFingerprint(value: string): string | undefined {
  const hex = value.replace(/:/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

export interface CertificateIdentity {
  /** SHA-256 of the DER, 64 lowercase hex digits. */
  fingerprint: string;
  commonNames: string[];
  dnsNames: string[];
  uris: string[];
}

/** Keys a verified client certificate may match: fingerprint first (most specific), then URI and DNS SANs, then CN. */
export function certificateBindingKeys(cert: CertificateIdentity): string[] {
  return [
    `x509:sha256=${cert.fingerprint}`,
    ...cert.uris.map((u) => `x509:uri=${u}`),
    ...cert.dnsNames.map((d) => `x509:dns=${d.toLowerCase()}`),
    ...cert.commonNames.map((cn) => `x509:cn=${cn}`),
  ];
}

function field(binding: Record<string, string>, name: string, method: string): string {
  const value = binding[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new ValidationError("binding_invalid", `a ${method} identity needs binding.${name}`, {
      field: name,
    });
  }
  return value.trim();
}

function invalid(method: string, message: string): never {
  throw new ValidationError("binding_invalid", `${method} binding: ${message}`);
}

/**
 * The bindingKey to store on an identity record of `method` with `binding`. Throws ValidationError
 * `binding_invalid` when a required field is missing or malformed; null for methods not looked up by
 * binding.
 */
export function recordBindingKey(method: string, binding: Record<string, string>): string | null {
  switch (method) {
    case "jwt":
    case "oidc":
      return `jwt:${field(binding, "issuer", method)}|sub=${field(binding, "subject", method)}`;
    case "azure": {
      const tid = field(binding, "tenantId", method).toLowerCase();
      const oid = field(binding, "objectId", method).toLowerCase();
      if (!GUID.test(tid) || !GUID.test(oid)) invalid(method, "tenantId and objectId are GUIDs");
      return `azure:${tid}|${oid}`;
    }
    case "aws": {
      const arn = roleArnOf(field(binding, "roleArn", method));
      if (!arn) invalid(method, "roleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
      return `aws:${field(binding, "issuer", method)}|${arn}`;
    }
    case "gcp": {
      const issuer = field(binding, "issuer", method);
      if (binding.email !== undefined && binding.subject === undefined)
        return `gcp:${issuer}|email=${field(binding, "email", method).toLowerCase()}`;
      return `gcp:${issuer}|sub=${field(binding, "subject", method)}`;
    }
    case "kubernetes": {
      const sub = `system:serviceaccount:${field(binding, "namespace", method)}:${field(binding, "serviceAccount", method)}`;
      if (!KUBERNETES_SUB.test(sub)) invalid(method, "namespace and serviceAccount must be Kubernetes names");
      return `kubernetes:${field(binding, "issuer", method)}|${sub}`;
    }
    case "spiffe": {
      const id = field(binding, "spiffeId", method);
      if (spiffeTrustDomain(id) === undefined)
        invalid(method, "spiffeId must look like spiffe://trust-domain/path");
      return `spiffe:${id}`;
    }
    case "client_secret": {
      const clientId = field(binding, "clientId", method);
      if (!clientId.startsWith("cour_")) invalid(method, "clientId starts with cour_");
      return clientSecretBindingKey(clientId);
    }
    case "certificate": {
      if (binding.fingerprint !== undefined) {
        const fp = normalizeFingerprint(binding.fingerprint);
        if (!fp) invalid(method, "fingerprint is a SHA-256 hex digest");
        return `x509:sha256=${fp}`;
      }
      if (binding.uri !== undefined) return `x509:uri=${field(binding, "uri", method)}`;
      if (binding.dnsName !== undefined) return `x509:dns=${field(binding, "dnsName", method).toLowerCase()}`;
      if (binding.commonName !== undefined) return `x509:cn=${field(binding, "commonName", method)}`;
      return invalid(method, "give one of fingerprint, uri, dnsName, commonName");
    }
    default:
      return null;
  }
}
