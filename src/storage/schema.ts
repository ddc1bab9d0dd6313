import type { Generated } from "kysely";

/**
 * The tables as kysely sees them. Column names are snake_case; times are epoch milliseconds (integer
 * on SQLite, bigint on PostgreSQL, read back as numbers); booleans are 0/1 integers on both dialects;
 * JSON is stored as text. A module that adds a table adds a migration and its interface here.
 */
export interface Database {
  certificates: CertificatesTable;
  certificate_history: CertificatesTable;
  certificate_failures: CertificateFailuresTable;
  kv: KvTable;
  challenge_tokens: ChallengeTokensTable;
  locks: LocksTable;
  identities: IdentitiesTable;
  audit_log: AuditLogTable;
  acme_accounts: AcmeAccountsTable;
  acme_orders: AcmeOrdersTable;
  acme_authorizations: AcmeAuthorizationsTable;
  acme_challenges: AcmeChallengesTable;
  acme_certificates: AcmeCertificatesTable;
  acme_used_nonces: AcmeUsedNoncesTable;
  issuance_journal: IssuanceJournalTable;
}

/** The current version of each certificate; `certificate_history` holds the versions it replaced. */
export interface CertificatesTable {
  id: string;
  /** JSON array of names. */
  names: string;
  issuer_id: string;
  key_type: string;
  custody: string;
  cert_pem: string;
  chain_pem: string;
  /** SecretBox envelope, bound to the certificate id. */
  private_key: string | null;
  not_before: number;
  not_after: number;
  serial: string;
  ari_cert_id: string | null;
  renew_at: number;
  /** Who the certificate was issued to (an identity, an ACME account); null when unknown. */
  owner: string | null;
  version: number;
  created_at: number;
  updated_at: number;
}

/** The last failure per certificate id; the id may not have a certificate yet (first issuance). */
export interface CertificateFailuresTable {
  id: string;
  code: string;
  message: string;
  at: number;
  failure_count: number;
  next_attempt_at: number | null;
  /** What was requested (JSON names, issuer, owner): lists a certificate that was never issued. */
  names: string | null;
  issuer_id: string | null;
  owner: string | null;
}

export interface KvTable {
  namespace: string;
  key: string;
  /** Plaintext, or a SecretBox envelope bound to namespace + key when `secret` is 1. */
  value: string;
  secret: number;
}

export interface ChallengeTokensTable {
  token: string;
  key_authorization: string;
  expires_at: number;
}

export interface LocksTable {
  name: string;
  owner: string;
  expires_at: number;
}

export interface IdentitiesTable {
  id: string;
  name: string;
  method: string;
  /** JSON object of strings. */
  binding: string;
  binding_key: string | null;
  /** JSON array of name patterns. */
  grants: string;
  enabled: number;
  admin: number;
  secret_hash: string | null;
  created_at: number;
  updated_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  type: string;
  actor: string | null;
  method: string | null;
  subject: string | null;
  outcome: string;
  reason: string | null;
  remote_address: string | null;
  /** JSON object. */
  data: string;
}

// --- ACME server (src/acme-server, migration 0002) ---------------------------------------------------

export interface AcmeAccountsTable {
  id: string;
  profile: string;
  /** valid | deactivated | revoked */
  status: string;
  /** JSON public JWK (required members only). */
  jwk: string;
  /** RFC 7638 SHA-256 thumbprint of `jwk`, base64url; unique per profile. */
  thumbprint: string;
  /** JSON array of URLs. */
  contact: string;
  eab_kid: string | null;
  /** JSON array of name patterns inherited from the EAB key. */
  grants: string;
  owner_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface AcmeOrdersTable {
  id: string;
  account_id: string;
  profile: string;
  /** pending | ready | processing | valid | invalid */
  status: string;
  /** JSON array of names ("*.example.com" for a wildcard). */
  identifiers: string;
  /** JSON array of authorization ids. */
  authorizations: string;
  expires_at: number;
  /** JSON problem document. */
  error: string | null;
  certificate_id: string | null;
  replaces: string | null;
  processing_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface AcmeAuthorizationsTable {
  id: string;
  account_id: string;
  profile: string;
  /** The DNS name without "*.". */
  identifier: string;
  wildcard: number;
  /** pending | valid | invalid | deactivated | expired | revoked */
  status: string;
  expires_at: number;
  created_at: number;
  updated_at: number;
}

export interface AcmeChallengesTable {
  id: string;
  authorization_id: string;
  /** http-01 | dns-01 | tls-alpn-01 */
  type: string;
  token: string;
  /** pending | processing | valid | invalid */
  status: string;
  validated_at: number | null;
  /** JSON problem document. */
  error: string | null;
  processing_at: number | null;
  updated_at: number;
}

export interface AcmeCertificatesTable {
  id: string;
  account_id: string;
  profile: string;
  order_id: string;
  /** JSON array of names. */
  names: string;
  /** Lowercase hex. */
  serial: string;
  ari_cert_id: string | null;
  cert_pem: string;
  /** JSON array of chain PEMs (intermediates); the first is the default, the others alternates. */
  chains: string;
  not_before: number;
  not_after: number;
  revoked_at: number | null;
  revocation_reason: number | null;
  /** Order id of the order that replaced this certificate (RFC 9773 `replaces`). */
  replaced_by: string | null;
  created_at: number;
}

export interface AcmeUsedNoncesTable {
  nonce: string;
  expires_at: number;
}

/** In-flight issuances (see issuance-journal.ts); the row goes once the certificate is stored. */
export interface IssuanceJournalTable {
  id: string;
  /** JSON array of names. */
  names: string;
  issuer_id: string;
  key_type: string;
  custody: string;
  csr_pem: string;
  /** SecretBox envelope bound to the certificate id; null in CSR mode. */
  private_key: string | null;
  order_url: string | null;
  state: string;
  replacing_version: number | null;
  actor: string | null;
  created_at: number;
  updated_at: number;
}
