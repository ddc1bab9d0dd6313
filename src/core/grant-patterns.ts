import { ValidationError } from "./errors.js";
import { normalizeName } from "./names.js";

/**
 * Validate and normalise a grant pattern (see docs/auth/grants.md): `*`, an exact name, `*.example.com`
 * or `.example.com`. Throws ValidationError `grant_invalid` naming the pattern.
 */
export function normalizeGrantPattern(input: unknown): string {
  if (input === "*") return "*";
  if (typeof input !== "string" || input.trim() === "")
    throw new ValidationError("grant_invalid", "a grant must be a non-empty string");
  const p = input.trim().toLowerCase();
  try {
    if (p.startsWith(".")) return "." + normalizeName(p.slice(1));
    return normalizeName(p);
  } catch (e) {
    const reason = e instanceof ValidationError ? e.message : String(e);
    throw new ValidationError("grant_invalid", `grant "${input}" is not a valid pattern: ${reason}`, {
      grant: input,
    });
  }
}
