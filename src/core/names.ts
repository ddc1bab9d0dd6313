import { isIP } from "node:net";
import { domainToASCII, domainToUnicode } from "node:url";
import { ValidationError } from "./errors.js";

/**
 * DNS names as certfleet accepts them for certificates: lowercase ASCII (IDNs in punycode), at least two
 * labels, no IP literals, and a wildcard only as the whole leftmost label (`*.example.com`).
 *
 * Error codes are stable: domain_invalid, domain_too_long, domain_ip_literal, domain_wildcard_invalid,
 * domain_not_punycode, domains_empty, domains_too_many.
 */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const MAX_NAMES_PER_CERTIFICATE = 100;

function fail(code: string, name: string, message: string): never {
  throw new ValidationError(code, message, { domain: name });
}

/** Validate and normalise one name (lowercase, no trailing dot). Throws ValidationError. */
export function normalizeName(input: unknown): string {
  if (typeof input !== "string" || input.trim() === "") {
    fail("domain_invalid", String(input), "domain must be a non-empty string");
  }
  const raw = input.trim();
  if (isIP(raw) || isIP(raw.replace(/^\[|\]$/g, ""))) {
    fail("domain_ip_literal", raw, `"${raw}" is an IP address; certificates here are for DNS names only`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(raw)) {
    const ascii = domainToASCII(raw);
    const hint = ascii ? ` (use the punycode form "${ascii}")` : "";
    fail("domain_not_punycode", raw, `"${raw}" contains non-ASCII characters${hint}`);
  }
  let name = raw.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length > 253) fail("domain_too_long", raw, `"${raw.slice(0, 40)}…" is longer than 253 characters`);

  const labels = name.split(".");
  const wildcard = labels[0] === "*";
  if (name.includes("*") && (!wildcard || labels.slice(1).some((l) => l.includes("*")))) {
    fail(
      "domain_wildcard_invalid",
      raw,
      `"${raw}": a wildcard is only allowed as the whole leftmost label (*.example.com)`,
    );
  }
  const rest = wildcard ? labels.slice(1) : labels;
  if (rest.length < 2) {
    fail(
      wildcard ? "domain_wildcard_invalid" : "domain_invalid",
      raw,
      `"${raw}" needs at least two labels below the wildcard or the root (like example.com)`,
    );
  }
  for (const label of rest) {
    if (label.length > 63)
      fail("domain_too_long", raw, `"${raw}": label "${label.slice(0, 20)}…" is longer than 63 characters`);
    if (!LABEL.test(label))
      fail("domain_invalid", raw, `"${raw}": label "${label}" may hold only a-z, 0-9 and inner hyphens`);
    if (label.slice(2, 4) === "--") {
      if (!label.startsWith("xn--"))
        fail("domain_invalid", raw, `"${raw}": label "${label}" uses the reserved "--" at positions 3-4`);
      const roundTrip = domainToASCII(domainToUnicode(label));
      if (roundTrip !== label) fail("domain_not_punycode", raw, `"${raw}": "${label}" is not valid punycode`);
    }
  }
  if (/^[0-9]+$/.test(rest[rest.length - 1]!))
    fail("domain_invalid", raw, `"${raw}": the top-level label cannot be all digits`);
  return name;
}

/** Normalise a request's names: validates each, removes duplicates, keeps the caller's first name first. */
export function normalizeNames(input: readonly unknown[]): string[] {
  if (input.length === 0) throw new ValidationError("domains_empty", "at least one domain is required");
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of input) {
    const name = normalizeName(n);
    if (!seen.has(name)) {
      seen.add(name);
      out.push(name);
    }
  }
  if (out.length > MAX_NAMES_PER_CERTIFICATE) {
    throw new ValidationError(
      "domains_too_many",
      `at most ${MAX_NAMES_PER_CERTIFICATE} names per certificate`,
      {
        count: out.length,
      },
    );
  }
  return out;
}

export function isWildcard(name: string): boolean {
  return name.startsWith("*.");
}

/** The name without a leading `*.`: what DNS-01 proves control of. */
export function baseName(name: string): string {
  return isWildcard(name) ? name.slice(2) : name;
}

/**
 * Does `pattern` cover `name`? Patterns: an exact name; `*.example.com` covers exactly the wildcard
 * name `*.example.com` and any single-label child (`a.example.com`); `.example.com` (leading dot) covers
 * every name strictly below example.com at any depth, wildcards included; `*` covers everything.
 */
export function patternMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (p === "*") return true;
  if (p === n) return true;
  if (p.startsWith(".")) return n.endsWith(p) && n.length > p.length;
  if (p.startsWith("*.")) {
    const suffix = p.slice(1); // ".example.com"
    if (!n.endsWith(suffix)) return false;
    const head = n.slice(0, -suffix.length);
    return head === "*" || (head.length > 0 && !head.includes(".") && !head.includes("*"));
  }
  return false;
}
