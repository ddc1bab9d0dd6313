import { createHash, randomBytes } from "node:crypto";

/** RFC 7636 PKCE with S256: a 43-character verifier and its challenge. */
export function createPkce(): { verifier: string; challenge: string; method: "S256" } {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge, method: "S256" };
}

/** An unguessable value for `state` and `nonce`. */
export function randomToken(): string {
  return randomBytes(24).toString("base64url");
}
