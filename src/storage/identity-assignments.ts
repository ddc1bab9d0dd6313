import type { Kysely } from "kysely";
import { throwIfAborted } from "../core/errors.js";
import type { KeyType } from "../core/key-types.js";

/**
 * The certificates an identity record is assigned (migration 0005): what an agent without a local
 * `certificates` list asks for and installs. Only names and key type live here; install paths and
 * reload commands stay on the machine, so the server never tells an agent what to run.
 *
 * Contract: `listAssignments` of an unknown identity is `[]` (not an error); `replaceAssignments` swaps the whole list in
 * one transaction (all or nothing) and is idempotent; entries come back sorted by name.
 */
export interface AssignedCertificate {
  /** Local name: the agent's directory and log lines use it. */
  name: string;
  domains: string[];
  keyType: KeyType;
}

export interface IdentityAssignments {
  listAssignments(identityId: string, signal?: AbortSignal): Promise<AssignedCertificate[]>;
  replaceAssignments(
    identityId: string,
    entries: readonly AssignedCertificate[],
    signal?: AbortSignal,
  ): Promise<void>;
}

interface AssignmentsTable {
  identity_id: string;
  name: string;
  domains: string;
  key_type: string;
  updated_at: number;
}

export function createIdentityAssignments(
  // any schema: this seam names only its own table
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  now: () => Date = () => new Date(),
): IdentityAssignments {
  const k = db as Kysely<{ identity_assignments: AssignmentsTable }>;
  return {
    async listAssignments(identityId, signal) {
      throwIfAborted(signal);
      const rows = await k
        .selectFrom("identity_assignments")
        .selectAll()
        .where("identity_id", "=", identityId)
        .orderBy("name")
        .execute();
      return rows.map((r) => ({
        name: r.name,
        domains: JSON.parse(r.domains) as string[],
        keyType: r.key_type as KeyType,
      }));
    },
    async replaceAssignments(identityId, entries, signal) {
      throwIfAborted(signal);
      const at = now().getTime();
      await k.transaction().execute(async (tx) => {
        await tx.deleteFrom("identity_assignments").where("identity_id", "=", identityId).execute();
        if (entries.length === 0) return;
        await tx
          .insertInto("identity_assignments")
          .values(
            entries.map((e) => ({
              identity_id: identityId,
              name: e.name,
              domains: JSON.stringify(e.domains),
              key_type: e.keyType,
              updated_at: at,
            })),
          )
          .execute();
      });
    },
  };
}
