import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { createAgent } from "../agent/agent.js";
import { loadAgentConfig, type ResolvedCertificate } from "../agent/config/load-agent-config.js";
import { EXIT_OK } from "../agent/exit-codes.js";
import { ConfigError, isCertfleetError } from "../core/errors.js";
import { isKeyType, type KeyType } from "../core/key-types.js";
import { normalizeNames } from "../core/names.js";
import {
  agentConfigPath,
  agentRuntime,
  defaultIo,
  reportError,
  type CommandIo,
} from "../agent/command-io.js";

/**
 * `certfleet get <domain> [more names…] [--out DIR] [--json] [--config FILE] [--key-type T] [--local-key]`
 *
 * Fetch one certificate ad hoc with the server and identity of an agent config file (its `certificates`
 * list is ignored) and install it into DIR (default: the current directory) exactly like the agent
 * does: `cert.pem`, `chain.pem`, `fullchain.pem`, `key.pem` as stable links into `DIR/.certfleet/`, so a
 * second `get` into the same DIR switches the pair atomically. `--local-key` generates the key here and
 * sends a CSR. `--json` prints the result (paths, serial, dates) on stdout. Exit codes as `agent --once`.
 */
export interface GetCommandOptions {
  out?: string;
  json?: boolean;
  config?: string;
  keyType?: string;
  localKey?: boolean;
}

export async function getCommand(
  domain: string | readonly string[],
  options: GetCommandOptions,
  io: CommandIo = defaultIo(),
): Promise<number> {
  const json = options.json === true;
  let agent: Awaited<ReturnType<typeof createAgent>> | undefined;
  try {
    const base = await loadAgentConfig(agentConfigPath(options.config, io.env), io.env);
    let domains: string[];
    try {
      domains = normalizeNames(typeof domain === "string" ? [domain] : [...domain]);
    } catch (e) {
      throw new ConfigError([{ path: "domain", message: isCertfleetError(e) ? e.message : String(e) }]);
    }
    if (options.keyType !== undefined && !isKeyType(options.keyType)) {
      throw new ConfigError([{ path: "--key-type", message: `unknown key type "${options.keyType}"` }]);
    }
    const out = resolve(options.out ?? ".");
    await mkdir(out, { recursive: true, mode: 0o755 });
    const certificate: ResolvedCertificate = {
      name: "get",
      domains,
      keyType: (options.keyType as KeyType | undefined) ?? "ec256",
      keyCustody: options.localKey ? "local" : "server",
      outputs: {
        pem: {
          cert: `${out}/cert.pem`,
          chain: `${out}/chain.pem`,
          fullchain: `${out}/fullchain.pem`,
          key: `${out}/key.pem`,
        },
      },
      owner: undefined,
      group: undefined,
      mode: 0o644,
      keyMode: 0o600,
      reload: undefined,
      reloadTimeoutMs: 60_000,
    };
    const config = {
      ...base,
      stateDir: `${out}/.certfleet`,
      certificates: [certificate],
      traefik: undefined,
    };
    agent = await createAgent(config, agentRuntime(config, io));
    const report = await agent.runOnce(AbortSignal.timeout(config.api.timeoutMs + 60_000), {
      progress: !json,
    });
    const result = report.results[0]!;
    if (!result.ok) return reportError(result.error, io, json);
    const o = result.outcome;
    if (json) {
      io.stdout.write(
        JSON.stringify({
          ok: true,
          exitCode: EXIT_OK,
          domains,
          serial: o.serial,
          notBefore: o.notBefore.toISOString(),
          notAfter: o.notAfter.toISOString(),
          renewAt: o.renewAt.toISOString(),
          changed: o.changed,
          files: certificate.outputs.pem,
        }) + "\n",
      );
    } else {
      io.stdout.write(
        `${domains[0]}: serial ${o.serial}, valid until ${o.notAfter.toISOString()}\n  ${out}/fullchain.pem\n  ${out}/key.pem\n`,
      );
    }
    return report.exitCode;
  } catch (e) {
    return reportError(e, io, json);
  } finally {
    await agent?.close();
  }
}
