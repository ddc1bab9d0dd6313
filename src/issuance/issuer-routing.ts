import { ValidationError } from "../core/errors.js";
import { patternMatches } from "../core/names.js";
import type { Issuer } from "./issuer.js";

/**
 * Which issuer serves which names: the first rule whose pattern covers a name wins, else the default.
 * All names of one certificate must land on the same issuer. Every issuer a rule or the default names
 * must be among `issuers` (config validation guarantees it; this refuses to start otherwise).
 */
export interface IssuerRouter {
  select(names: readonly string[]): Issuer;
  get(id: string): Issuer | undefined;
}

export function createIssuerRouter(
  issuers: readonly Issuer[],
  rules: readonly { match: string; issuer: string }[],
  defaultIssuer: string,
): IssuerRouter {
  const byId = new Map(issuers.map((i) => [i.id, i]));
  const fallback = byId.get(defaultIssuer);
  if (!fallback) throw new Error(`default issuer "${defaultIssuer}" is not configured`);
  // a rule naming an issuer that was not built is a wiring bug, never a silent fall-back to the default
  const missing = rules.find((r) => !byId.has(r.issuer));
  if (missing)
    throw new Error(
      `routing rule for "${missing.match}" names issuer "${missing.issuer}", which is not built`,
    );
  const forName = (name: string): Issuer => {
    const rule = rules.find((r) => patternMatches(r.match, name));
    return rule ? byId.get(rule.issuer)! : fallback;
  };
  return {
    get: (id) => byId.get(id),
    select(names) {
      const chosen = names.map(forName);
      const first = chosen[0]!;
      if (chosen.some((i) => i !== first)) {
        throw new ValidationError(
          "issuer_ambiguous",
          "these names are served by different issuers; request them separately",
          {
            issuers: Object.fromEntries(names.map((n, i) => [n, chosen[i]!.id])),
          },
        );
      }
      return first;
    },
  };
}
