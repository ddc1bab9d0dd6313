import { createHash } from "node:crypto";
import { problem } from "../problems.js";
import type { ValidationDns } from "./dns-lookup.js";
import type { ChallengeToValidate } from "./validator.js";

/**
 * DNS-01 (RFC 8555 §8.4): a TXT record at _acme-challenge.<domain> holding
 * base64url(SHA-256(key authorization)), looked up through the configured resolvers.
 */
export async function validateDns01(
  challenge: ChallengeToValidate,
  dns: ValidationDns,
  signal: AbortSignal,
): Promise<void> {
  const expected = createHash("sha256").update(challenge.keyAuthorization).digest("base64url");
  const name = `_acme-challenge.${challenge.domain}`;
  const values = await dns.txt(name, signal);
  if (values.length === 0) throw problem("unauthorized", `no TXT record at ${name}`);
  if (!values.includes(expected))
    throw problem("incorrectResponse", `no TXT record at ${name} matches the challenge`);
}
