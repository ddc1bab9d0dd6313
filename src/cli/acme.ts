import { mkdir } from "node:fs/promises";
import { createEabKeys } from "../acme-server/eab.js";
import { systemClock } from "../core/clock.js";
import { isCertfleetError } from "../core/errors.js";
import { createStorage } from "../storage/create-storage.js";
import { loadMasterKeys } from "../storage/master-key.js";
import { loadResolvedConfig } from "./load-config.js";
import { createEabAdmin, type EabKeyView } from "../acme-server/eab-admin.js";
import type { Storage } from "../storage/storage.js";
import { withConfiguredStorage } from "./open-storage.js";

/**
 * `certfleet acme eab create --grant NAME [--grant NAME…] [--json]`: make an External Account Binding
 * key in the server's own storage. An ACME account that binds it may obtain exactly the granted
 * names (patterns: example.com, *.example.com, .example.com, *). Prints `{"kid","hmacKey"}` with
 * --json (hmacKey base64url, as lego, certbot and Caddy take it). Exit 2 for a bad grant.
 */
export async function acmeEabCreateCommand(opts: {
  config?: string;
  grant: string[];
  json?: boolean;
}): Promise<number> {
  const config = await loadResolvedConfig(opts.config);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const keys = await loadMasterKeys(config.storage);
  const storage = createStorage({
    url: config.storage.url,
    encryptionKey: keys.current,
    previousEncryptionKeys: keys.previous,
  });
  try {
    await storage.migrate();
    const keys = createEabKeys({ kv: storage.kv, clock: systemClock });
    let created: { kid: string; hmacKey: string };
    try {
      created = await keys.create(opts.grant ?? []);
    } catch (e) {
      if (!isCertfleetError(e) || e.code !== "grant_invalid") throw e;
      process.stderr.write(`certfleet: ${e.message}\n`);
      return 2;
    }
    await storage.audit.appendAudit({
      type: "acme.eab.create",
      actor: "cli",
      outcome: "success",
      data: { kid: created.kid, grants: opts.grant },
    });
    process.stdout.write(
      opts.json
        ? JSON.stringify(created) + "\n"
        : `EAB key id:  ${created.kid}\nHMAC key:    ${created.hmacKey}\ngrants:      ${opts.grant.join(", ")}\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}

/**
 * `certfleet acme eab list [--json]`: every EAB key (never its HMAC key) with its grants, owner, the
 * account that bound it, that account's last order and whether the key is revoked. --json prints an
 * array of the admin API's `EabKey` objects (all pages).
 */
export async function acmeEabListCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const admin = eabAdminOf(storage);
    const keys: EabKeyView[] = [];
    let after: string | undefined;
    do {
      const page = await admin.listKeys({ after, limit: 500 });
      keys.push(...page.keys);
      after = page.next ?? undefined;
    } while (after !== undefined);
    if (opts.json) {
      process.stdout.write(JSON.stringify(keys) + "\n");
      return 0;
    }
    if (keys.length === 0) {
      process.stdout.write("no EAB keys\n");
      return 0;
    }
    for (const k of keys) {
      process.stdout.write(
        `${k.kid}  ${k.revoked ? `revoked ${k.revokedAt}` : "active"}\n` +
          `  grants:    ${k.grants.join(", ")}\n` +
          `  owner:     ${k.ownerId ?? "admin"}\n` +
          `  account:   ${k.account ? `${k.account.id} (${k.account.profile}, ${k.account.status})` : "not bound yet"}\n` +
          `  last use:  ${k.lastUsedAt ?? "never"}\n`,
      );
    }
    return 0;
  });
}

/**
 * `certfleet acme eab revoke <kid> [--json]`: the key binds no new account and its accounts can no
 * longer order (their certificates stay valid; revoke those with `certfleet certificates revoke`).
 * Idempotent; exit 2 for an unknown kid.
 */
export async function acmeEabRevokeCommand(
  kid: string,
  opts: { config?: string; json?: boolean },
): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const key = await eabAdminOf(storage).revokeKey(kid, "cli");
    process.stdout.write(
      opts.json ? JSON.stringify(key) + "\n" : `revoked:  ${key.kid} at ${key.revokedAt}\n`,
    );
    return 0;
  });
}

function eabAdminOf(storage: Storage) {
  return createEabAdmin({
    eab: createEabKeys({ kv: storage.kv, clock: systemClock }),
    acme: storage.acme,
    audit: (event) => storage.audit.appendAudit({ ...event, method: "cli" }),
  });
}
