import type { ValidationDns } from "./dns-lookup.js";
import { isAllowedAddress } from "./address-policy.js";
import { problem } from "../problems.js";

/**
 * Resolve a host once and pick the address to connect to: the first one the address policy allows.
 * The caller dials exactly that address (never the name again), so a DNS answer that changes
 * between check and connect cannot redirect the validation (DNS rebinding).
 */
export async function checkedAddress(
  dns: ValidationDns,
  host: string,
  allowPrivate: boolean,
  signal: AbortSignal,
): Promise<string> {
  const addresses = await dns.addresses(host, signal);
  const allowed = addresses.find((a) => isAllowedAddress(a, allowPrivate));
  if (!allowed) {
    throw problem("connection", `${host} resolves only to addresses validation may not connect to`, {
      internal: addresses.join(","),
    });
  }
  return allowed;
}
