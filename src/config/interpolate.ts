/**
 * `${VAR}` and `${VAR:-default}` inside string values of the config file are replaced from the
 * environment; `$${` writes a literal `${`. A missing variable without a default is an error naming the
 * key path that used it. Interpolation runs on parsed values, never on the raw text, so a variable's
 * content cannot change the file's structure.
 */
export interface InterpolationIssue {
  path: string;
  message: string;
}

const TOKEN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  issues: InterpolationIssue[],
  path: string[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(TOKEN, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === "$${") return "${";
      const v = env[name!];
      if (v !== undefined && v !== "") return v;
      if (fallback !== undefined) return fallback;
      issues.push({ path: path.join("."), message: `environment variable ${name} is not set` });
      return "";
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, issues, [...path, String(i)]));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, issues, [...path, k]);
    return out;
  }
  return value;
}
