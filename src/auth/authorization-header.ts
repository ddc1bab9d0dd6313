import type { IncomingHttpHeaders } from "node:http";

/**
 * Split `Authorization: <scheme> <credentials>`. The scheme compares case-insensitively (RFC 9110
 * §11.1); undefined when the header is absent, repeated, or has another scheme.
 */
export function credentialsFor(headers: IncomingHttpHeaders, scheme: string): string | undefined {
  const value = headers.authorization;
  if (typeof value !== "string") return undefined;
  const space = value.indexOf(" ");
  if (space < 0) return value.toLowerCase() === scheme.toLowerCase() ? "" : undefined;
  if (value.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return value.slice(space + 1).trim();
}

/** A single-valued custom header, or undefined when absent or sent more than once. */
export function singleHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return typeof value === "string" ? value : undefined;
}
