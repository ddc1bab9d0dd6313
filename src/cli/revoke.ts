import { createCertfleet } from "../composition.js";
import { systemClock } from "../core/clock.js";
import { ValidationError } from "../core/errors.js";
import { KEY_TYPES, type KeyType } from "../core/key-types.js";
import { createLogger } from "../core/logger.js";
import { normalizeNames } from "../core/names.js";
import { REVOCATION_REASON_NAMES, type RevocationReason } from "../issuance/issuer.js";
import { loadResolvedConfig } from "./load-config.js";

/**
 * `certfleet revoke --domain NAME [--domain …] [--reason keyCompromise] [--no-replace] [--json]`: revoke
 * the certificate certfleet holds for exactly these names at its CA and, unless --no-replace, issue its
 * replacement with a fresh key now. Works beside a running server on the same database: it builds the
 * same issuers from the same config, takes the same storage lock as the server, and the server's own
 * HTTP-01 listener answers challenges from storage. A running server may hand out the revoked
 * certificate from its memory cache for at most 2 s more. Exit 2 for bad usage or an unknown
 * certificate, 1 for a CA failure.
 */
export async function revokeCommand(opts: {
  config?: string;
  domain: string[];
  reason?: string;
  keyType?: string;
  replace: boolean;
  json?: boolean;
}): Promise<number> {
  if (opts.domain.length === 0) throw new ValidationError("domains_empty", "give at least one --domain");
  const names = normalizeNames(opts.domain);
  const reason = (opts.reason ?? "unspecified") as RevocationReason;
  if (!REVOCATION_REASON_NAMES.includes(reason)) {
    throw new ValidationError(
      "reason_invalid",
      `--reason must be one of ${REVOCATION_REASON_NAMES.join(", ")}`,
    );
  }
  if (opts.keyType !== undefined && !(KEY_TYPES as readonly string[]).includes(opts.keyType)) {
    throw new ValidationError("key_type_invalid", `--key-type must be one of ${KEY_TYPES.join(", ")}`);
  }
  const config = await loadResolvedConfig(opts.config);
  // warnings and errors only: the answer goes to stdout
  const logger = createLogger({ level: "warn" });
  const certfleet = await createCertfleet(config, {
    logger,
    clock: systemClock,
    fetch: globalThis.fetch,
    env: process.env,
  });
  try {
    const result = await certfleet.manager.revoke(
      { names, keyType: opts.keyType as KeyType | undefined },
      { reason, actor: "cli", replace: opts.replace },
    );
    const replacement = result.replacement;
    const summary = {
      revoked: { serial: result.revoked.serial, reason },
      ...(replacement
        ? {
            replacement: {
              serial: replacement.serial,
              notBefore: replacement.notBefore.toISOString(),
              notAfter: replacement.notAfter.toISOString(),
              issuer: replacement.issuerId,
            },
          }
        : {}),
    };
    process.stdout.write(
      opts.json
        ? JSON.stringify(summary) + "\n"
        : `revoked:      ${names.join(", ")} serial ${result.revoked.serial} (${reason})\n` +
            (replacement
              ? `replacement:  serial ${replacement.serial}, valid until ${replacement.notAfter.toISOString()}; agents get it on their next sync\n`
              : "not replaced (--no-replace): the next request for these names issues a new certificate\n"),
    );
    return 0;
  } finally {
    await certfleet.stop();
  }
}
