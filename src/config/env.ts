import { readFileSync } from "node:fs";
import type { z } from "zod";
import { objectShape, unwrap } from "./schema-walk.js";

/**
 * Environment variables overlay the file. A key path maps to CERTFLEET_ + its segments in
 * SCREAMING_SNAKE_CASE joined by a double underscore: `acme.caDirUrl` ↔ `CERTFLEET_ACME__CA_DIR_URL`,
 * `server.port` ↔ `CERTFLEET_SERVER__PORT`. Append `_FILE` to read the value from a file (secrets):
 * `CERTFLEET_AUTH__PSK__KEY_FILE=/run/secrets/key`. Values for numbers, booleans, lists and sections are
 * JSON (`CERTFLEET_AUTH__API_KEYS='[{"name":"a","key":"…"}]'`); strings are taken as they are.
 * CERTFLEET_CONFIG names the config file and is not a key.
 */
export const ENV_PREFIX = "CERTFLEET_";
export const RESERVED_ENV = new Set(["CERTFLEET_CONFIG"]);

export function envNameForPath(path: readonly string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__");
}

export interface EnvIssue {
  path: string;
  message: string;
}

/** Apply CERTFLEET_* variables onto `target` (mutated). Returns problems, each naming the variable. */
export function applyEnv(
  schema: z.ZodType,
  target: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): EnvIssue[] {
  const issues: EnvIssue[] = [];
  for (const [name, rawValue] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || rawValue === undefined) continue;
    const fromFile = name.endsWith("_FILE") && !resolvePath(schema, name) ? true : false;
    const varName = fromFile ? name.slice(0, -"_FILE".length) : name;
    const resolved = resolvePath(schema, varName);
    if (!resolved) {
      issues.push({
        path: name,
        message:
          "environment variable does not name a configuration key (CERTFLEET_* variables set config keys; " +
          "for ${VAR} interpolation in the file, use a name without the CERTFLEET_ prefix)",
      });
      continue;
    }
    let raw = rawValue;
    if (fromFile) {
      try {
        raw = readFileSync(rawValue, "utf8").replace(/\r?\n$/, "");
      } catch (e) {
        issues.push({
          path: resolved.path.join("."),
          message: `${name}: cannot read ${rawValue}: ${(e as Error).message}`,
        });
        continue;
      }
    }
    let value: unknown = raw;
    if (resolved.leafType !== "string") {
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw; // let the schema report the type error with the key path
      }
    }
    setPath(target, resolved.path, value);
  }
  return issues;
}

function resolvePath(schema: z.ZodType, name: string): { path: string[]; leafType: string } | undefined {
  const segments = name.slice(ENV_PREFIX.length).split("__");
  const path: string[] = [];
  let cur: z.ZodType = schema;
  for (const seg of segments) {
    const shape = objectShape(cur);
    if (!shape) return undefined;
    const want = seg.replace(/_/g, "").toLowerCase();
    const key = Object.keys(shape).find((k) => k.toLowerCase() === want);
    if (!key) return undefined;
    path.push(key);
    cur = shape[key]!;
  }
  return { path, leafType: unwrap(cur).type };
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}
