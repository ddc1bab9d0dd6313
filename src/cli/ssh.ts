import { readFile } from "node:fs/promises";
import { createCredentialSource } from "../agent/auth/registry.js";
import { createCertificateClient } from "../agent/client/certificate-client.js";
import {
  agentConfigPath,
  agentRuntime,
  defaultIo,
  reportError,
  type CommandIo,
} from "../agent/command-io.js";
import { loadAgentConfig } from "../agent/config/load-agent-config.js";
import { EXIT_OK } from "../agent/exit-codes.js";
import { sshLogin } from "../agent/ssh/ssh-login.js";
import { ConfigError } from "../core/errors.js";

/**
 * `certfleet ssh login --principal NAME [--principal …] [--key FILE] [--validity 8h] [--json] [--config FILE]`
 *
 * Server and auth method come from the agent config (any method: exec plugin, interactive OIDC login,
 * API key …). Puts a fresh key + user certificate into the running ssh-agent (SSH_AUTH_SOCK), or with
 * `--key` writes `<key>-cert.pub` beside an existing key (docs/ssh.md). Exit codes as `agent --once`.
 */
export interface SshLoginCommandOptions {
  principal?: string[];
  key?: string;
  validity?: string;
  json?: boolean;
  config?: string;
}

export async function sshLoginCommand(
  options: SshLoginCommandOptions,
  io: CommandIo = defaultIo(),
): Promise<number> {
  const json = options.json === true;
  try {
    const config = await loadAgentConfig(agentConfigPath(options.config, io.env), io.env);
    if (options.validity !== undefined && !/^\d{1,9}(s|m|h|d)$/.test(options.validity))
      throw new ConfigError([{ path: "--validity", message: "a duration such as 30m, 8h or 1d" }]);
    const rt = agentRuntime(config, io);
    const caBundlePem = config.api.caBundle ? await readFile(config.api.caBundle, "utf8") : undefined;
    const credentials = createCredentialSource(config.auth, config.identityUuid, {
      fetch: rt.fetch,
      env: rt.env,
      clock: rt.clock,
      logger: rt.logger.child({ auth: config.auth.method }),
      tell: (line) => void io.stderr.write(line + "\n"),
      platform: rt.platform,
    });
    const client = createCertificateClient({
      url: config.api.url,
      caBundlePem,
      credentials,
      timeoutMs: config.api.timeoutMs,
      logger: rt.logger,
      userAgent: rt.userAgent ?? "certfleet-agent",
    });
    try {
      const result = await sshLogin(
        client,
        {
          principals: options.principal ?? [],
          keyFile: options.key,
          agentSocket: io.env.SSH_AUTH_SOCK,
          validity: options.validity,
        },
        AbortSignal.timeout(config.api.timeoutMs + 10 * 60_000),
      );
      if (json) io.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
      else
        io.stderr.write(
          `certfleet: SSH certificate for ${result.principals.join(", ")} (serial ${result.serial}, valid until ${result.validBefore}) → ${result.installedTo}\n`,
        );
      return EXIT_OK;
    } finally {
      await client.close();
      await credentials.close?.();
    }
  } catch (e) {
    return reportError(e, io, json);
  }
}
