import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { interpolate, type InterpolationIssue } from "../../config/interpolate.js";
import { parseYaml, zodIssues } from "../../config/load.js";
import { parseDuration } from "../../config/schema.js";
import { ConfigError, isCertfleetError } from "../../core/errors.js";
import type { KeyType } from "../../core/key-types.js";
import { normalizeNames } from "../../core/names.js";
import { agentConfigSchema, type AgentConfigFile } from "./agent-config.js";
import type { AuthConfig } from "./auth-config.js";
import { checkUuidPlacement, UUID_PLACEMENT } from "./uuid-placement.js";

/**
 * Load the agent config: YAML → `${VAR}` interpolation → UUID placement check → strict schema → a
 * resolved form (absolute paths, milliseconds, numeric modes, normalised names). Every problem is
 * reported at once as a ConfigError (`config_invalid`), each issue with its key path.
 */

export interface ResolvedCertificate {
  name: string;
  domains: string[];
  keyType: KeyType;
  keyCustody: "server" | "local";
  outputs: {
    pem?: { cert?: string; chain?: string; fullchain?: string; key?: string };
    combined?: string;
    pkcs12?: { path: string; password: string; friendlyName?: string };
  };
  owner: string | number | undefined;
  group: string | number | undefined;
  mode: number;
  keyMode: number;
  reload: string | undefined;
  reloadTimeoutMs: number;
}

/** How server-assigned certificates are installed (the `defaults:` block, resolved). */
export interface AssignedDefaults {
  dir: string;
  owner: string | number | undefined;
  group: string | number | undefined;
  mode: number;
  keyMode: number;
  reload: string | undefined;
  reloadTimeoutMs: number;
}

/** Documented defaults for a config that names no server, state directory or install directory. */
export const AGENT_DEFAULTS = {
  url: "https://certfleet:8443",
  stateDir: "/var/lib/certfleet-agent",
  certsDir: "/etc/certfleet/certs",
} as const;

export interface ResolvedAgentConfig {
  /** Directory of the config file; relative paths were resolved against it. */
  baseDir: string;
  api: { url: string; uuid: string | undefined; caBundle: string | undefined; timeoutMs: number };
  /** The auth block with file paths made absolute. */
  auth: AuthConfig;
  /** The identity UUID from wherever this method keeps it. */
  identityUuid: string | undefined;
  stateDir: string;
  certificates: ResolvedCertificate[];
  /** Set when there is no `certificates` list: install what the server assigns, this way. */
  assigned: AssignedDefaults | undefined;
  traefik: { path: string; mode: number } | undefined;
  renew: { jitterMs: number; maxIntervalMs: number };
  logLevel: AgentConfigFile["log_level"];
}

export async function loadAgentConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedAgentConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ConfigError([{ path: "(file)", message: `cannot read ${path}: ${code}` }]);
  }
  return parseAgentConfig(parseYaml(text, path), env, dirname(resolve(path)));
}

/** Validate an already-parsed config document. `baseDir` anchors relative paths. */
export function parseAgentConfig(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string): ResolvedAgentConfig {
  const issues: InterpolationIssue[] = [];
  const interpolated = interpolate(raw, env, issues);
  const placement = checkUuidPlacement(interpolated);
  issues.push(...placement.map(({ path, message }) => ({ path, message })));
  const result = agentConfigSchema.safeParse(interpolated);
  if (!result.success) {
    // Paths already explained (a missing variable, a misplaced uuid and where it belongs) would only get
    // the schema's vaguer message again.
    const explained = new Set(issues.map((i) => i.path));
    for (const p of placement) if (p.belongsAt) explained.add(p.belongsAt);
    issues.push(...zodIssues(result.error).filter((i) => !explained.has(i.path)));
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return resolveAgentConfig(result.data, baseDir, env);
}

function resolveAgentConfig(
  file: AgentConfigFile,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): ResolvedAgentConfig {
  const issues: { path: string; message: string }[] = [];
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const absOpt = (p: string | undefined) => (p === undefined ? undefined : abs(p));
  const mode = (m: string) => parseInt(m, 8);

  const seen = new Set<string>();
  const certificates = file.certificates.map((c, i): ResolvedCertificate => {
    if (seen.has(c.name))
      issues.push({ path: `certificates.${i}.name`, message: `"${c.name}" is used twice` });
    seen.add(c.name);
    let domains: string[] = [];
    try {
      domains = normalizeNames(c.domains);
    } catch (e) {
      issues.push({
        path: `certificates.${i}.domains`,
        message: isCertfleetError(e) ? e.message : String(e),
      });
    }
    const pem = c.outputs.pem;
    return {
      name: c.name,
      domains,
      keyType: c.key_type,
      keyCustody: c.key_custody,
      outputs: {
        pem: pem && {
          cert: absOpt(pem.cert),
          chain: absOpt(pem.chain),
          fullchain: absOpt(pem.fullchain),
          key: absOpt(pem.key),
        },
        combined: absOpt(c.outputs.combined),
        pkcs12: c.outputs.pkcs12 && {
          path: abs(c.outputs.pkcs12.path),
          password: c.outputs.pkcs12.password,
          friendlyName: c.outputs.pkcs12.friendly_name,
        },
      },
      owner: c.owner,
      group: c.group,
      mode: mode(c.mode),
      keyMode: mode(c.key_mode),
      reload: c.reload,
      reloadTimeoutMs: parseDuration(c.reload_timeout),
    };
  });

  const outputPaths = new Map<string, string>();
  certificates.forEach((c, i) => {
    const named: [string, string | undefined][] = [
      ["pem.cert", c.outputs.pem?.cert],
      ["pem.chain", c.outputs.pem?.chain],
      ["pem.fullchain", c.outputs.pem?.fullchain],
      ["pem.key", c.outputs.pem?.key],
      ["combined", c.outputs.combined],
      ["pkcs12.path", c.outputs.pkcs12?.path],
    ];
    for (const [key, p] of named) {
      if (p === undefined) continue;
      const at = `certificates.${i}.outputs.${key}`;
      const other = outputPaths.get(p);
      if (other) issues.push({ path: at, message: `${p} is also written by ${other}` });
      outputPaths.set(p, at);
    }
  });

  const auth = resolveAuthPaths(file.auth, abs);
  if (auth.method === "api_key" && (auth.api_key === undefined) === (auth.api_key_file === undefined)) {
    issues.push({ path: "auth.api_key", message: "set exactly one of api_key or api_key_file" });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const fromEnv = (name: string) => (env[name] ? env[name] : undefined);
  const url = file.api.url ?? fromEnv("CERTFLEET_URL") ?? AGENT_DEFAULTS.url;
  if (!/^https?:\/\/[^/]/.test(url))
    issues.push({ path: "api.url", message: `$CERTFLEET_URL must be an http(s) URL, got "${url}"` });
  const d = file.defaults;
  const assigned: AssignedDefaults | undefined =
    certificates.length > 0
      ? undefined
      : {
          dir: abs(d.dir ?? fromEnv("CERTFLEET_CERTS_DIR") ?? AGENT_DEFAULTS.certsDir),
          owner: d.owner,
          group: d.group,
          mode: mode(d.mode),
          keyMode: mode(d.key_mode),
          reload: d.reload,
          reloadTimeoutMs: parseDuration(d.reload_timeout),
        };
  if (issues.length > 0) throw new ConfigError(issues);
  const placement = UUID_PLACEMENT[auth.method];
  const identityUuid = placement.field === "auth.uuid" ? (auth as { uuid?: string }).uuid : file.api.uuid;

  return {
    baseDir,
    api: {
      url: url.replace(/\/+$/, ""),
      uuid: file.api.uuid,
      caBundle: absOpt(file.api.ca_bundle),
      timeoutMs: parseDuration(file.api.timeout),
    },
    auth,
    identityUuid,
    stateDir: abs(file.state_dir ?? fromEnv("CERTFLEET_STATE_DIR") ?? AGENT_DEFAULTS.stateDir),
    certificates,
    assigned,
    traefik: file.traefik && { path: abs(file.traefik.path), mode: mode(file.traefik.mode) },
    renew: {
      jitterMs: parseDuration(file.renew.jitter),
      maxIntervalMs: parseDuration(file.renew.max_interval),
    },
    logLevel: file.log_level,
  };
}

/** Make the auth block's own file paths absolute (token files, key files, hook scripts stay as given). */
function resolveAuthPaths(auth: AuthConfig, abs: (p: string) => string): AuthConfig {
  switch (auth.method) {
    case "api_key":
      return { ...auth, api_key_file: auth.api_key_file && abs(auth.api_key_file) };
    case "certificate":
      return { ...auth, cert_path: abs(auth.cert_path), key_path: abs(auth.key_path) };
    case "azure_jwt":
    case "aws_oidc":
      return { ...auth, token_file: auth.token_file && abs(auth.token_file) };
    case "kubernetes":
      return { ...auth, token_file: abs(auth.token_file) };
    case "azure_arc":
      return { ...auth, token_dir: auth.token_dir && abs(auth.token_dir) };
    case "oidc":
      return { ...auth, token_cache: auth.token_cache && abs(auth.token_cache) };
    default:
      return auth;
  }
}

/**
 * A server-assigned certificate as a local entry: files under `<dir>/<name>/` (cert.pem, chain.pem,
 * fullchain.pem, key.pem), the key from the server, modes / owner / reload from `defaults:`. The name
 * comes from the server and was checked (`[a-z0-9][a-z0-9._-]*`), so it cannot leave `dir`.
 */
export function assignedCertificate(
  entry: { name: string; domains: string[]; keyType: KeyType },
  defaults: AssignedDefaults,
): ResolvedCertificate {
  const dir = resolve(defaults.dir, entry.name);
  return {
    name: entry.name,
    domains: normalizeNames(entry.domains),
    keyType: entry.keyType,
    keyCustody: "server",
    outputs: {
      pem: {
        cert: resolve(dir, "cert.pem"),
        chain: resolve(dir, "chain.pem"),
        fullchain: resolve(dir, "fullchain.pem"),
        key: resolve(dir, "key.pem"),
      },
    },
    owner: defaults.owner,
    group: defaults.group,
    mode: defaults.mode,
    keyMode: defaults.keyMode,
    reload: defaults.reload,
    reloadTimeoutMs: defaults.reloadTimeoutMs,
  };
}
