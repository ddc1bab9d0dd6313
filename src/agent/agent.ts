import { readFile } from "node:fs/promises";
import type { Clock } from "../core/clock.js";
import { ConfigError, toCertfleetError, type CertfleetError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { AgentAuthError } from "./agent-errors.js";
import type { CredentialSource } from "./auth/credential-source.js";
import type { FetchLike } from "./auth/http-token.js";
import { createCredentialSource } from "./auth/registry.js";
import { createCertificateSync, type CertificateSync, type SyncOutcome } from "./certificate-sync.js";
import { createCertificateClient, type CertificateClient } from "./client/certificate-client.js";
import {
  assignedCertificate,
  type ResolvedAgentConfig,
  type ResolvedCertificate,
} from "./config/load-agent-config.js";
import { createDaemon, type Daemon } from "./daemon.js";
import { exitCodeFor, EXIT_INSTALL, EXIT_OK, worstExitCode } from "./exit-codes.js";
import { FILES } from "./install/certificate-files.js";
import { resolveOwnership } from "./install/file-ownership.js";
import { createCertificateInstaller } from "./install/installer.js";
import { writeTraefikConfig, type TraefikEntry } from "./install/traefik-config.js";
import { createAuthFailureHook, type AuthFailureHook } from "./on-failure.js";
import { startProgress, type ProgressStream } from "./progress.js";

/**
 * The agent's composition root: builds the credential source, the server client, one installer and
 * sync per certificate, the Traefik writer and the on_failure hook from a resolved config, and offers
 * the two ways to run — `runOnce` (sync everything, report, exit code) and `runDaemon`.
 */
export interface AgentRuntime {
  logger: Logger;
  clock: Clock;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** For token endpoints and metadata servers (the server itself is reached through undici). */
  fetch: FetchLike;
  /** Where human-facing lines (progress, login URLs, plugin messages) go: the CLI's stderr. */
  stderr: ProgressStream;
  random?: () => number;
  retryDelay?: (failures: number, error: unknown) => number;
  userAgent?: string;
}

export type CertificateResult =
  | { name: string; ok: true; outcome: SyncOutcome }
  | { name: string; ok: false; error: CertfleetError; exitCode: number };

export interface OnceReport {
  exitCode: number;
  results: CertificateResult[];
}

export interface CertfleetAgent {
  readonly certificates: readonly CertificateSync[];
  readonly credentials: CredentialSource;
  runOnce(signal: AbortSignal, options?: { progress?: boolean }): Promise<OnceReport>;
  runDaemon(signal: AbortSignal): Promise<void>;
  /** Cut the daemon's sleeps short (SIGHUP). */
  wake(): void;
  close(): Promise<void>;
}

export async function createAgent(config: ResolvedAgentConfig, rt: AgentRuntime): Promise<CertfleetAgent> {
  const logger = rt.logger;
  let caBundlePem: string | undefined;
  if (config.api.caBundle) {
    caBundlePem = await readFile(config.api.caBundle, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError([
        { path: "api.ca_bundle", message: `cannot read ${config.api.caBundle}: ${e.code ?? e.message}` },
      ]);
    });
  }
  const tell = (line: string) => void rt.stderr.write(line + "\n");
  const credentials = createCredentialSource(config.auth, config.identityUuid, {
    fetch: rt.fetch,
    env: rt.env,
    clock: rt.clock,
    logger: logger.child({ auth: config.auth.method }),
    tell,
    platform: rt.platform,
  });
  const client: CertificateClient = createCertificateClient({
    url: config.api.url,
    caBundlePem,
    credentials,
    timeoutMs: config.api.timeoutMs,
    logger,
    userAgent: rt.userAgent ?? "certfleet-agent",
  });

  const certificates: CertificateSync[] = [];
  /** Local entries in the order of `certificates` (the config's list, or the server's assignment). */
  const localEntries: ResolvedCertificate[] = [];
  async function addCertificate(cert: ResolvedCertificate, at: string): Promise<void> {
    const ownership = await resolveOwnership(cert.owner, cert.group, at);
    certificates.push(
      createCertificateSync({
        certificate: cert,
        client,
        installer: createCertificateInstaller(cert, config.stateDir, ownership),
        logger,
        env: rt.env,
        platform: rt.platform,
        now: () => rt.clock.now(),
      }),
    );
    localEntries.push(cert);
  }
  for (const [i, cert] of config.certificates.entries()) await addCertificate(cert, `certificates.${i}`);

  // No local list: ask the server which certificates this identity is assigned (once per process).
  let assignmentLoaded = config.assigned === undefined;
  async function loadAssignment(signal: AbortSignal): Promise<void> {
    if (assignmentLoaded || !config.assigned) return;
    const assigned = await client.assigned(signal);
    for (const entry of assigned)
      await addCertificate(assignedCertificate(entry, config.assigned), "defaults");
    assignmentLoaded = true;
    logger.info(
      { certificates: assigned.map((a) => a.name), dir: config.assigned.dir },
      assigned.length === 0
        ? "the server assigns this identity no certificates"
        : "installing the certificates the server assigns this identity",
    );
  }

  const newHook = (): AuthFailureHook =>
    createAuthFailureHook({
      command: config.auth.on_failure,
      method: config.auth.method,
      env: rt.env,
      platform: rt.platform,
      logger,
    });

  async function updateTraefik(): Promise<void> {
    if (!config.traefik) return;
    const entries: TraefikEntry[] = [];
    for (const [i, sync] of certificates.entries()) {
      if (!(await sync.installer.store.current())) continue;
      const cert = localEntries[i]!;
      const dir = sync.installer.store.currentPath;
      entries.push({
        certFile: cert.outputs.pem?.fullchain ?? `${dir}/${FILES.fullchain}`,
        keyFile: cert.outputs.pem?.key ?? `${dir}/${FILES.key}`,
      });
    }
    if (await writeTraefikConfig(config.traefik.path, entries, config.traefik.mode)) {
      logger.info(
        { path: config.traefik.path, certificates: entries.length },
        "Traefik configuration written",
      );
    }
  }

  let daemon: Daemon | undefined;

  return {
    certificates,
    credentials,
    async runOnce(signal, options = {}) {
      const hook = newHook();
      const results: CertificateResult[] = [];
      let authError: CertfleetError | undefined;
      try {
        await loadAssignment(signal);
      } catch (e) {
        const error = toCertfleetError(e);
        logger.error({ code: error.code, internal: error.internal }, error.message);
        if (e instanceof AgentAuthError) await hook.failed(error);
        return {
          exitCode: exitCodeFor(e),
          results: [{ name: "assignment", ok: false, error, exitCode: exitCodeFor(e) }],
        };
      }
      for (const sync of certificates) {
        if (authError) {
          // The identity itself was refused: the other certificates would fail the same way.
          results.push({ name: sync.name, ok: false, error: authError, exitCode: exitCodeFor(authError) });
          continue;
        }
        const stop = options.progress
          ? startProgress(`certfleet: waiting for the server (${sync.name})`, rt.stderr)
          : () => undefined;
        try {
          const outcome = await sync.sync(signal);
          results.push({ name: sync.name, ok: true, outcome });
        } catch (e) {
          const error = toCertfleetError(e);
          if (e instanceof AgentAuthError) authError = error;
          logger.error({ certificate: sync.name, code: error.code, internal: error.internal }, error.message);
          results.push({ name: sync.name, ok: false, error, exitCode: exitCodeFor(e) });
        } finally {
          stop();
        }
      }
      try {
        await updateTraefik();
      } catch (e) {
        const error = toCertfleetError(e);
        logger.error(
          { code: error.code, internal: error.internal },
          "could not write the Traefik configuration",
        );
        results.push({ name: "traefik", ok: false, error, exitCode: EXIT_INSTALL });
      }
      if (authError) await hook.failed(authError);
      const codes = results.map((r) => (r.ok ? EXIT_OK : r.exitCode));
      return { exitCode: worstExitCode(codes), results };
    },
    async runDaemon(signal) {
      await loadAssignment(signal);
      daemon = createDaemon({
        certificates,
        clock: rt.clock,
        logger,
        authHook: newHook(),
        renew: config.renew,
        random: rt.random,
        retryDelay: rt.retryDelay,
        afterSync: async () => {
          await updateTraefik().catch((e: unknown) =>
            logger.error(
              { err: toCertfleetError(e).internal ?? String(e) },
              "could not write the Traefik configuration",
            ),
          );
        },
      });
      await daemon.run(signal);
    },
    wake() {
      daemon?.wake();
    },
    async close() {
      await client.close();
    },
  };
}
