import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCaOptions } from "../../src/internal-ca/embedded-ca.js";
import { createMemoryKv, type MemoryKv } from "./memory-kv.js";

const run = promisify(execFile);

/** A whole second, so that dates survive the round trip through X.509 time fields exactly. */
export function wholeSecondNow(): Date {
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

export async function newCa(
  options: EmbeddedCaOptions = {},
  store: MemoryKv = createMemoryKv(),
  start = wholeSecondNow(),
) {
  const clock = createManualClock(start);
  const ca = await createEmbeddedCa({ store, clock, logger: silentLogger(), options });
  return { ca, store, clock };
}

/**
 * `openssl verify -x509_strict -CAfile root -untrusted intermediate leaf` with extra flags; returns
 * whether OpenSSL accepted the chain and what it printed.
 */
export async function opensslVerify(
  rootPem: string,
  intermediatePem: string,
  leafPem: string,
  extra: string[] = [],
): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-ca-"));
  try {
    await Promise.all([
      writeFile(join(dir, "root.pem"), rootPem),
      writeFile(join(dir, "int.pem"), intermediatePem),
      writeFile(join(dir, "leaf.pem"), leafPem),
    ]);
    const args = [
      "verify",
      "-x509_strict",
      ...extra,
      "-CAfile",
      join(dir, "root.pem"),
      "-untrusted",
      join(dir, "int.pem"),
      join(dir, "leaf.pem"),
    ];
    try {
      const { stdout, stderr } = await run("openssl", args);
      return { ok: true, output: stdout + stderr };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      return { ok: false, output: (err.stdout ?? "") + (err.stderr ?? "") };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The extensions tests look at, read with @peculiar/x509. */
export function extensionsOf(pem: string) {
  const cert = new x509.X509Certificate(pem);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    cert,
    basicConstraints: bc ? { ca: bc.ca, pathLength: bc.pathLength, critical: bc.critical } : undefined,
    keyUsage: ku ? { usages: ku.usages, critical: ku.critical } : undefined,
    extendedKeyUsage: eku?.usages.map(String),
    san: san
      ? { names: san.names.items.map((n) => `${n.type}:${n.value}`), critical: san.critical }
      : undefined,
    ski: cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    aki: cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
  };
}
