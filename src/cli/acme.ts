import { mkdir } from "node:fs/promises";
import { createEabKeys } from "../acme-server/eab.js";
import { systemClock } from "../core/clock.js";
import { isCertfleetError } from "../core/errors.js";
import { createStorage } from "../storage/create-storage.js";
import { loadMasterKeys } from "../storage/master-key.js";
import { loadResolvedConfig } from "./load-config.js";

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
