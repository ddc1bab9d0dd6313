import type { Selectable } from "kysely";
import type { KeyType } from "../core/key-types.js";
import type { AuditLogTable, CertificatesTable, IdentitiesTable } from "./schema.js";
import type {
  AuditEvent,
  AuditRecord,
  CertificateRecord,
  CertificateSummary,
  FailureRecord,
  IdentityPatch,
  IdentityRecord,
  KeyCustody,
  NewCertificate,
  NewIdentity,
} from "./storage.js";

// Translation between records (camelCase, Dates, booleans) and rows (snake_case, epoch ms, 0/1, JSON).

/** The certificate columns other than the PEM bodies, which summaries leave out. */
export const CERTIFICATE_SUMMARY_COLUMNS = [
  "id",
  "names",
  "issuer_id",
  "key_type",
  "custody",
  "not_before",
  "not_after",
  "serial",
  "ari_cert_id",
  "renew_at",
  "owner",
  "version",
  "created_at",
  "updated_at",
] as const;
export const CERTIFICATE_COLUMNS = [
  ...CERTIFICATE_SUMMARY_COLUMNS,
  "cert_pem",
  "chain_pem",
  "private_key",
] as const;

type CertificateSummaryRow = Pick<CertificatesTable, (typeof CERTIFICATE_SUMMARY_COLUMNS)[number]>;

/** certificate_failures columns as a left join returns them (all null when there is no failure). */
export interface FailureColumns {
  failure_code: string | null;
  failure_message: string | null;
  failure_at: number | null;
  failure_count: number | null;
  next_attempt_at: number | null;
}

export function certificateRow(
  record: NewCertificate,
  sealedPrivateKey: string | null,
): Omit<CertificatesTable, "version" | "created_at" | "updated_at"> {
  return {
    id: record.id,
    names: JSON.stringify(record.names),
    issuer_id: record.issuerId,
    key_type: record.keyType,
    custody: record.custody,
    cert_pem: record.certPem,
    chain_pem: record.chainPem,
    private_key: sealedPrivateKey,
    not_before: record.notBefore.getTime(),
    not_after: record.notAfter.getTime(),
    serial: record.serial,
    ari_cert_id: record.ariCertId,
    renew_at: record.renewAt.getTime(),
    owner: record.owner ?? null,
  };
}

export function toCertificateSummary(
  row: CertificateSummaryRow,
  failure: FailureColumns | null,
): CertificateSummary {
  return {
    id: row.id,
    names: JSON.parse(row.names) as string[],
    issuerId: row.issuer_id,
    keyType: row.key_type as KeyType,
    custody: row.custody as KeyCustody,
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    serial: row.serial,
    ariCertId: row.ari_cert_id,
    renewAt: new Date(row.renew_at),
    owner: row.owner,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    version: row.version,
    lastFailure: failure === null ? null : toFailureRecord(failure),
  };
}

export function toCertificateRecord(
  row: Selectable<CertificatesTable>,
  failure: FailureColumns | null,
  privateKeyPem: string | null,
): CertificateRecord {
  return {
    ...toCertificateSummary(row, failure),
    certPem: row.cert_pem,
    chainPem: row.chain_pem,
    privateKeyPem,
  };
}

export function toFailureRecord(f: FailureColumns): FailureRecord | null {
  if (f.failure_code === null) return null;
  return {
    code: f.failure_code,
    message: f.failure_message ?? "",
    at: new Date(f.failure_at ?? 0),
    failureCount: f.failure_count ?? 1,
    nextAttemptAt: f.next_attempt_at === null ? null : new Date(f.next_attempt_at),
  };
}

export function identityRow(record: NewIdentity, now: number): IdentitiesTable {
  return {
    id: record.id,
    name: record.name,
    method: record.method,
    binding: JSON.stringify(record.binding),
    binding_key: record.bindingKey,
    grants: JSON.stringify(record.grants),
    enabled: record.enabled ? 1 : 0,
    admin: record.admin ? 1 : 0,
    secret_hash: record.secretHash,
    created_at: now,
    updated_at: now,
  };
}

/** Only the fields the patch names; `undefined` means "leave as is". */
export function identityPatchRow(patch: IdentityPatch): Partial<IdentitiesTable> {
  const row: Partial<IdentitiesTable> = {};
  if (patch.name !== undefined) row.name = patch.name;
  if (patch.binding !== undefined) row.binding = JSON.stringify(patch.binding);
  if (patch.bindingKey !== undefined) row.binding_key = patch.bindingKey;
  if (patch.grants !== undefined) row.grants = JSON.stringify(patch.grants);
  if (patch.enabled !== undefined) row.enabled = patch.enabled ? 1 : 0;
  if (patch.admin !== undefined) row.admin = patch.admin ? 1 : 0;
  if (patch.secretHash !== undefined) row.secret_hash = patch.secretHash;
  return row;
}

export function toIdentityRecord(row: Selectable<IdentitiesTable>): IdentityRecord {
  return {
    id: row.id,
    name: row.name,
    method: row.method,
    binding: JSON.parse(row.binding) as Record<string, string>,
    bindingKey: row.binding_key,
    grants: JSON.parse(row.grants) as string[],
    enabled: row.enabled === 1,
    admin: row.admin === 1,
    secretHash: row.secret_hash,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export function auditRow(event: AuditEvent, now: Date): Omit<AuditLogTable, "id"> {
  return {
    at: (event.at ?? now).getTime(),
    type: event.type,
    actor: event.actor,
    method: event.method ?? null,
    subject: event.subject ?? null,
    outcome: event.outcome,
    reason: event.reason ?? null,
    remote_address: event.remoteAddress ?? null,
    data: JSON.stringify(event.data ?? {}),
  };
}

export function toAuditRecord(row: Selectable<AuditLogTable>): AuditRecord {
  return {
    id: row.id,
    at: new Date(row.at),
    type: row.type,
    actor: row.actor,
    method: row.method,
    subject: row.subject,
    outcome: row.outcome as AuditRecord["outcome"],
    reason: row.reason,
    remoteAddress: row.remote_address,
    data: JSON.parse(row.data) as Record<string, unknown>,
  };
}
