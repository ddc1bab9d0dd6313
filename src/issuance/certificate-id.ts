import { createHash } from "node:crypto";
import type { KeyType } from "../core/key-types.js";

/**
 * A certificate's identity: its set of names (order-insensitive), key type and key custody. In CSR mode
 * the caller's public key is part of it, so two callers with their own keys never share a record.
 */
export function certificateId(names: readonly string[], keyType: KeyType, csrPublicKeyPem?: string): string {
  const h = createHash("sha256");
  h.update([...names].sort().join(","));
  h.update("|" + keyType);
  h.update(
    "|" +
      (csrPublicKeyPem
        ? "csr:" + createHash("sha256").update(csrPublicKeyPem.trim()).digest("hex")
        : "server"),
  );
  return h.digest("hex").slice(0, 32);
}
