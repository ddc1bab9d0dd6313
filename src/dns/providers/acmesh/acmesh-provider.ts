import { spawn } from "node:child_process";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CertfleetError, UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord } from "../../dns-provider.js";
import type { DnsProviderDeps } from "../../registry.js";

/**
 * A bridge to acme.sh's dnsapi scripts (150+ providers): for `name: "cf"` it runs
 *
 *   sh -c '. <shim.sh>; . <scriptsDir>/dns_cf.sh; dns_cf_add "$1" "$2"' _ <fqdn> <value>
 *
 * (and `dns_cf_rm` to clean up) with the fqdn without its trailing dot, as acme.sh does. shim.sh
 * provides the acme.sh helper functions those scripts call (_post, _get, _readaccountconf_mutable, …);
 * credentials are the script's usual variables (e.g. CF_Token) given in `env`. The child sees only
 * `env` plus the variables named in `passEnv`, never certfleet's own environment.
 */
export const acmeShConfigSchema = z.strictObject({
  scriptsDir: z.string().min(1).describe("Directory holding acme.sh's dnsapi scripts (`dns_<name>.sh`)."),
  name: z
    .string()
    .regex(/^[a-z0-9_]+$/, "lowercase letters, digits and _ only (dns_<name>.sh)")
    .describe('Script name without prefix and suffix, e.g. "cf" for dns_cf.sh.'),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string())
    .default({})
    .describe('The script\'s variables, e.g. { CF_Token: "…", CF_Account_ID: "…" } (secret).'),
  passEnv: z
    .array(z.string().min(1))
    .default(["PATH"])
    .describe("certfleet environment variables passed through (e.g. PATH, HTTPS_PROXY)."),
  debug: z
    .number()
    .int()
    .min(0)
    .max(3)
    .default(0)
    .describe("acme.sh debug level for the script's _debug output (stderr, captured into error details)."),
  shell: z.string().min(1).default("/bin/sh").describe("Shell that runs the script"),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(600_000)
    .default(120_000)
    .describe("Timeout of one API request, in milliseconds"),
});

export type AcmeShConfig = z.infer<typeof acmeShConfigSchema>;

const MAX_OUTPUT = 8192;
const EXIT_NO_FUNCTION = 96;

/** shim.sh next to this module: in src/ itself, and in dist/ because the build copies it there. */
export function acmeShShimPath(): string {
  return fileURLToPath(new URL("./shim.sh", import.meta.url));
}

export function createAcmeShProvider(
  config: AcmeShConfig,
  deps: DnsProviderDeps,
  shimPath = acmeShShimPath(),
): DnsProvider {
  const id = "acmesh";
  const script = join(config.scriptsDir, `dns_${config.name}.sh`);
  const env: Record<string, string> = {};
  for (const key of config.passEnv) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, config.env, {
    CERTFLEET_ACMESH_SHIM: shimPath,
    CERTFLEET_ACMESH_SCRIPT: script,
    DEBUG: String(config.debug),
  });

  async function checkFiles(zone: string): Promise<void> {
    for (const [path, what] of [
      [shimPath, "acme.sh compatibility shim"],
      [script, "acme.sh dnsapi script"],
    ] as const) {
      try {
        await access(path);
      } catch (e) {
        throw new UpstreamError("dns_provider_config", `acmesh: the ${what} ${path} does not exist`, {
          retryable: false,
          cause: e,
          details: { provider: id, zone, path },
        });
      }
    }
  }

  function run(verb: "add" | "rm", record: TxtRecord, signal: AbortSignal): Promise<void> {
    const fn = `dns_${config.name}_${verb}`;
    const missing =
      verb === "rm"
        ? `echo "${fn} is not defined: nothing to clean up" >&2; exit 0`
        : `exit ${EXIT_NO_FUNCTION}`;
    const program =
      `. "$CERTFLEET_ACMESH_SHIM" || exit 90\n` +
      `. "$CERTFLEET_ACMESH_SCRIPT" || exit 91\n` +
      `command -v ${fn} >/dev/null 2>&1 || { ${missing}; }\n` +
      `${fn} "$1" "$2"\n`;
    return new Promise((resolvePromise, reject) => {
      const child = spawn(config.shell, ["-c", program, "certfleet-acmesh", record.name, record.value], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let output = "";
      const collect = (chunk: Buffer) => {
        if (output.length < MAX_OUTPUT) output += chunk.toString("utf8");
      };
      child.stdout.on("data", collect);
      child.stderr.on("data", collect);
      let settled = false;
      const kill = () => {
        // The script's curl and subshells are in its process group.
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        } catch {
          child.kill("SIGKILL");
        }
      };
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolvePromise();
      };
      const onAbort = () => {
        kill();
        finish(
          new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason }),
        );
      };
      const timer = setTimeout(() => {
        kill();
        finish(
          new UpstreamError(
            "dns_provider_timeout",
            `acmesh: ${fn} for zone ${record.zone} timed out after ${config.timeoutMs} ms`,
            {
              internal: output.slice(-MAX_OUTPUT),
              details: { provider: id, script: `dns_${config.name}`, zone: record.zone },
            },
          ),
        );
      }, config.timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });

      child.on("error", (e) =>
        finish(
          new UpstreamError("dns_provider_config", `acmesh: cannot run ${config.shell}`, {
            retryable: false,
            cause: e,
            details: { provider: id, zone: record.zone },
          }),
        ),
      );
      child.on("close", (code, sig) => {
        deps.logger.debug(
          { provider: id, script: `dns_${config.name}`, verb, code },
          "acme.sh dnsapi script finished",
        );
        if (code === 0) return finish();
        finish(
          new UpstreamError(
            code === EXIT_NO_FUNCTION || code === 90 || code === 91
              ? "dns_provider_config"
              : "dns_provider_error",
            code === EXIT_NO_FUNCTION
              ? `acmesh: dns_${config.name}.sh does not define ${fn}`
              : `acmesh: ${fn} for zone ${record.zone} failed (exit ${code ?? sig})`,
            {
              retryable: !(code === EXIT_NO_FUNCTION || code === 90 || code === 91),
              internal: output.slice(-MAX_OUTPUT),
              details: { provider: id, script: `dns_${config.name}`, zone: record.zone, exitCode: code },
            },
          ),
        );
      });
    });
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      await checkFiles(record.zone);
      throwIfAborted(signal);
      await run("add", record, signal);
    },
    async deleteTxt(record) {
      await checkFiles(record.zone);
      await run("rm", record, new AbortController().signal);
    },
  };
}

export const acmeShProviderDefinition = defineDnsProvider<AcmeShConfig>({
  id: "acmesh",
  aliases: ["acme.sh"],
  description:
    "Runs an acme.sh dnsapi script (`dns_<name>.sh`) through a compatibility shim, reaching acme.sh's 150+ DNS providers.",
  schema: acmeShConfigSchema,
  secretFields: ["env"],
  propagation: { timeoutMs: 300_000, intervalMs: 10_000 },
  create: (config, deps) => createAcmeShProvider(config, deps),
});
