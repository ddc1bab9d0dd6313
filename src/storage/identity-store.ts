import type { IdentityAssignments } from "./identity-assignments.js";
/**
 * Identity records ("agents"): who may authenticate, how, and for which names. Misses return
 * `undefined`; the unique id and binding key are enforced by the database, so concurrent creates
 * of the same identity have exactly one winner.
 */
export interface IdentityStore extends IdentityAssignments {
  /** Throws CertfleetError `identity_conflict` (409) if the id or bindingKey already exists. */
  createIdentity(record: NewIdentity, signal?: AbortSignal): Promise<IdentityRecord>;
  getIdentity(id: string, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  /** Look up by the unique binding key (see auth/ for how keys are derived from claims / subjects). */
  findIdentityByBinding(bindingKey: string, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  listIdentities(signal?: AbortSignal): Promise<IdentityRecord[]>;
  /** Partial update; returns undefined when the id does not exist. Conflicts throw as createIdentity. */
  updateIdentity(id: string, patch: IdentityPatch, signal?: AbortSignal): Promise<IdentityRecord | undefined>;
  /** True if something was deleted. */
  deleteIdentity(id: string, signal?: AbortSignal): Promise<boolean>;
}

export interface NewIdentity {
  /** UUID. */
  id: string;
  name: string;
  /** Auth method, e.g. "api_key", "jwt", "client_secret", "certificate", "azure", "spiffe". */
  method: string;
  /** Method-specific binding (claims, subject, SPIFFE ID, ...). */
  binding: Record<string, string>;
  /** Unique lookup key derived from method + binding; null for methods looked up by id. */
  bindingKey: string | null;
  /** Name patterns (core/names.ts patternMatches). */
  grants: string[];
  enabled: boolean;
  admin: boolean;
  /** Slow-KDF hash of a server-generated secret, when the method has one. Never the secret itself. */
  secretHash: string | null;
}

export interface IdentityRecord extends NewIdentity {
  createdAt: Date;
  updatedAt: Date;
}

export type IdentityPatch = Partial<
  Pick<NewIdentity, "name" | "binding" | "bindingKey" | "grants" | "enabled" | "admin" | "secretHash">
>;
