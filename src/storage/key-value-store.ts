/**
 * Small named values (CA material, ACME client accounts, EAB keys, settings), by namespace + key.
 * Values written with `secret: true` are encrypted at rest, bound to their namespace and key; callers
 * always see plaintext. Every call is one statement, safe to race from many processes.
 */
export interface KeyValueStore {
  /** The value, or undefined when there is none. */
  getValue(namespace: string, key: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Write a value. With `ifAbsent`, an existing value wins and is returned instead (create-once). */
  putValue(
    namespace: string,
    key: string,
    value: string,
    options?: { secret?: boolean; ifAbsent?: boolean },
    signal?: AbortSignal,
  ): Promise<string>;
  /**
   * One page of a namespace's values, in key order, with keys after `after` (exclusive). For small
   * admin listings (EAB keys); a namespace is not meant to hold millions of values.
   */
  listValues(
    namespace: string,
    page: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ key: string; value: string }[]>;
  /** Always runs; no signal. Deleting a missing value is not an error. */
  deleteValue(namespace: string, key: string): Promise<void>;
}
