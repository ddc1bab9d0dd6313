import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../core/errors.js";
import { applyEnv } from "./env.js";
import { interpolate, type InterpolationIssue } from "./interpolate.js";
import { configSchema, type ConfigFile } from "./schema.js";

/**
 * Read a config file (optional: the embedded default needs none), interpolate `${VAR}`, overlay
 * CERTFLEET_* variables, validate strictly. Every problem is reported at once, each with its key path.
 */
export async function loadConfigFile(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ConfigFile> {
  let raw: unknown = {};
  if (path) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      throw new ConfigError([
        {
          path: "(file)",
          message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        },
      ]);
    }
    raw = parseYaml(text, path);
  }
  return parseConfig(raw, env);
}

export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: "(file)", message: `${source}: ${e.message.split("\n")[0]}` })),
    );
  }
  const value = doc.toJS() as unknown;
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError([{ path: "(root)", message: "the config file must be a mapping of keys" }]);
  }
  return value;
}

export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}): ConfigFile {
  const issues: InterpolationIssue[] = [];
  const interpolated = interpolate(raw, env, issues) as Record<string, unknown>;
  issues.push(...applyEnv(configSchema, interpolated, env));
  if (issues.length > 0) throw new ConfigError(issues);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) throw new ConfigError(zodIssues(result.error));
  return result.data;
}

export function zodIssues(
  error: z.ZodError,
  prefix: readonly (string | number)[] = [],
): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path].map(String);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...base, key].join("."), message: "unknown key" });
    } else {
      out.push({ path: base.join("."), message: issue.message });
    }
  }
  return out;
}
