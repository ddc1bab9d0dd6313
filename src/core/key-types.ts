/** Private key algorithms certfleet issues for. ECDSA P-256 is the default. */
export const KEY_TYPES = ["ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const DEFAULT_KEY_TYPE: KeyType = "ec256";

export function isKeyType(v: unknown): v is KeyType {
  return typeof v === "string" && (KEY_TYPES as readonly string[]).includes(v);
}
