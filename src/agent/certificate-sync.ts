import { X509Certificate } from "node:crypto";
import { keyMatchesCertificate } from "../core/certificate-info.js";
import { CertfleetError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { CertificateClient, IssuedCertificate } from "./client/certificate-client.js";
import type { ResolvedCertificate } from "./config/load-agent-config.js";
import type { CertificateInstaller } from "./install/installer.js";
import { runReload } from "./install/reload.js";
import { localKeyAndCsr } from "./local-key.js";

/**
 * One certificate's sync, as a checklist:
 *
 * 1. ask the server (server custody: names + key type; local custody: a CSR from the local key) — for
 *    the certificate itself, or for its renewal once the installed one is past its renewAt;
 * 2. check the answer before touching any file: the key belongs to the leaf, the leaf names exactly
 *    the configured names, it is currently valid;
 * 3. install (a no-op when nothing changed); a change records the reload as owed for the new
 *    generation on disk before it goes live (install/generation-store.ts);
 * 4. run the reload command while one is owed for the live generation — after a change, after a failed
 *    reload, and after a crash (kill -9, power cut) between the switch and the end of the reload, on the
 *    next start. An owed reload runs even when the server cannot be reached this time.
 *
 * Any failure leaves the installed files as they were (step 3 is all-or-nothing). Error codes beyond
 * the client's: private_key_missing, certificate_mismatch, plus InstallError install_failed /
 * reload_failed. When both the server exchange and an owed reload fail, the exchange's error is thrown
 * and the reload's is logged (the debt stays for the next sync).
 */
export interface SyncOutcome {
  name: string;
  changed: boolean;
  reloaded: boolean;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  renewAt: Date;
  cached: boolean;
  /** The stable directory holding this certificate's current files. */
  directory: string;
}

export interface CertificateSync {
  readonly name: string;
  readonly installer: CertificateInstaller;
  sync(signal: AbortSignal): Promise<SyncOutcome>;
}

export interface CertificateSyncDeps {
  certificate: ResolvedCertificate;
  client: CertificateClient;
  installer: CertificateInstaller;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  now: () => Date;
}

const mismatch = (message: string, internal?: string) =>
  new CertfleetError("certificate_mismatch", message, { status: 502, expose: true, internal });

function checkAnswer(issued: IssuedCertificate, keyPem: string, domains: readonly string[], now: Date): void {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(issued.certPem);
  } catch (e) {
    throw mismatch("the server sent an unreadable certificate", String(e));
  }
  if (!keyMatchesCertificate(keyPem, issued.certPem))
    throw mismatch("the certificate does not belong to the private key");
  const names = (leaf.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  const want = [...domains].sort().join(",");
  if ([...new Set(names)].sort().join(",") !== want) {
    throw mismatch(
      "the certificate's names are not the configured names",
      `got ${names.join(",")}, want ${want}`,
    );
  }
  if (new Date(leaf.validTo).getTime() <= now.getTime())
    throw mismatch("the server sent an expired certificate");
}

export function createCertificateSync(deps: CertificateSyncDeps): CertificateSync {
  const cert = deps.certificate;
  const logger = deps.logger.child({ certificate: cert.name });

  /** Run the reload command if one is owed for the live generation; true when it ran. */
  async function reloadIfOwed(): Promise<boolean> {
    if (!cert.reload) return false;
    const generation = await deps.installer.reloadOwed();
    if (generation === undefined) return false;
    await runReload(cert.reload, {
      timeoutMs: cert.reloadTimeoutMs,
      env: deps.env,
      platform: deps.platform,
      vars: {
        CERTFLEET_CERTIFICATE: cert.name,
        CERTFLEET_DOMAINS: cert.domains.join(","),
        CERTFLEET_CERT_DIR: deps.installer.store.currentPath,
      },
    });
    await deps.installer.reloadDone(generation);
    logger.info({ generation }, "reload command succeeded");
    return true;
  }

  return {
    name: cert.name,
    installer: deps.installer,
    async sync(signal) {
      let exchanged: Awaited<ReturnType<typeof exchange>>;
      try {
        exchanged = await exchange(signal);
      } catch (e) {
        await reloadIfOwed().catch((reloadError: unknown) =>
          logger.error(
            { code: (reloadError as { code?: string }).code, err: String(reloadError) },
            "the owed reload command failed",
          ),
        );
        throw e;
      }
      const { issued, result } = exchanged;
      const reloaded = await reloadIfOwed();
      return {
        name: cert.name,
        changed: result.changed,
        reloaded,
        serial: issued.serial,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        renewAt: issued.renewAt,
        cached: issued.cached,
        directory: result.currentPath,
      };
    },
  };

  async function exchange(signal: AbortSignal) {
    let keyPem: string;
    let issued: IssuedCertificate;
    // Past the renewAt the server announced for what is installed: ask for the renewal itself.
    const installed = await deps.installer.installed();
    const due =
      installed !== undefined &&
      [...installed.domains].sort().join(",") === [...cert.domains].sort().join(",") &&
      new Date(installed.renewAt).getTime() <= deps.now().getTime();
    const ask = (request: Parameters<CertificateClient["obtain"]>[0]) =>
      due ? deps.client.renew(request, signal) : deps.client.obtain(request, signal);
    if (cert.keyCustody === "local") {
      const local = await localKeyAndCsr(await deps.installer.installedKey(), cert.keyType, cert.domains);
      issued = await ask({ domains: cert.domains, csrPem: local.csrPem });
      keyPem = local.keyPem;
    } else {
      issued = await ask({ domains: cert.domains, keyType: cert.keyType });
      if (!issued.privateKeyPem) {
        throw new CertfleetError(
          "private_key_missing",
          "the server sent no private key (is this a CSR-mode certificate?)",
          {
            status: 502,
            expose: true,
          },
        );
      }
      keyPem = issued.privateKeyPem;
    }
    checkAnswer(issued, keyPem, cert.domains, deps.now());

    const result = await deps.installer.install(
      { certPem: issued.certPem, chainPem: issued.chainPem, keyPem },
      {
        serial: issued.serial,
        domains: cert.domains,
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
        renewAt: issued.renewAt.toISOString(),
      },
    );
    if (result.changed)
      logger.info(
        { serial: issued.serial, notAfter: issued.notAfter, generation: result.generation },
        "certificate installed",
      );

    return { issued, result };
  }
}
