import type { KeyType } from "../core/key-types.js";
import type { KeyCustody } from "./certificate-store.js";

/**
 * The issuance journal: what a process needs to finish an order someone else (or its own previous
 * life) started. One entry per certificate id, written under the certificate's lock before the order
 * is finalized and deleted once the certificate is stored, so an entry that survives a crash names an
 * order the CA may already have finalized. Private keys are encrypted at rest (bound to the id);
 * callers see plaintext. Every write is one statement; misses return `undefined`.
 */
export interface IssuanceJournal {
  /** Create or replace the entry for `entry.id` (a new attempt supersedes an abandoned one). */
  begin(entry: NewJournalEntry, signal?: AbortSignal): Promise<JournalEntry>;
  /** Record progress: the order URL once the CA created the order, then the state. Always runs. */
  update(id: string, patch: { orderUrl?: string; state: JournalState }): Promise<void>;
  get(id: string, signal?: AbortSignal): Promise<JournalEntry | undefined>;
  /** Every entry, oldest first. */
  list(signal?: AbortSignal): Promise<JournalEntry[]>;
  /** Always runs; a missing entry is not an error. */
  delete(id: string): Promise<void>;
}

/**
 * `created`: key and CSR chosen, no order yet. `ordered`: the CA holds an order (`orderUrl`).
 * `finalizing`: the CSR is (being) submitted: the CA may have issued the certificate.
 */
export type JournalState = "created" | "ordered" | "finalizing";

export interface NewJournalEntry {
  id: string;
  names: string[];
  issuerId: string;
  keyType: KeyType;
  custody: KeyCustody;
  csrPem: string;
  /** Plaintext PEM; null in CSR mode. Encrypted at rest. */
  privateKeyPem: string | null;
  /** The certificate version this issuance replaces (renewal), else null. */
  replacingVersion: number | null;
  actor: string | null;
}

export interface JournalEntry extends NewJournalEntry {
  orderUrl: string | null;
  state: JournalState;
  createdAt: Date;
  updatedAt: Date;
}
