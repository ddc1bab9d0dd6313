import { open, readFile, unlink, type FileHandle } from "node:fs/promises";
import {
  createIdentityRecord,
  IDENTITY_METHODS,
  identityNotFound,
  presentIdentity,
  rotateIdentitySecret,
  updateIdentityRecord,
  type IdentityMethod,
} from "../auth/identity-service.js";
import { createCertificateIdentity } from "../auth/client-certificate-issuance.js";
import { writeLegacySettings } from "../auth/legacy-switch.js";
import { systemClock } from "../core/clock.js";
import { createLogger } from "../core/logger.js";
import { createEmbeddedCa } from "../internal-ca/embedded-ca.js";
import { ValidationError } from "../core/errors.js";
import type { AuditEvent, Storage } from "../storage/storage.js";
import { withConfiguredStorage } from "./open-storage.js";

/**
 * `certfleet identity …` and `certfleet settings legacy …`: the admin API's operations, run directly
 * against the server's storage. Secrets are printed once. Every change is audited with actor "cli".
 */
interface Common {
  config?: string;
  json?: boolean;
}

const out = (json: boolean | undefined, value: unknown, text: string) =>
  process.stdout.write(json ? JSON.stringify(value) + "\n" : text + "\n");

function audit(storage: Storage, event: Omit<AuditEvent, "actor" | "outcome">) {
  return storage.audit.appendAudit({ ...event, actor: "cli", method: "cli", outcome: "success" });
}

function parseBinding(pairs: readonly string[]): Record<string, string> {
  const binding: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new ValidationError("binding_invalid", `--binding takes key=value, got "${p}"`);
    binding[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return binding;
}

export async function identityCreateCommand(
  opts: Common & {
    name: string;
    method: string;
    binding?: string[];
    grant?: string[];
    admin?: boolean;
    disabled?: boolean;
    issueClientCert?: boolean;
    validity?: string;
    publicKey?: string;
    certOut?: string;
    keyOut?: string;
  },
): Promise<number> {
  if (!(IDENTITY_METHODS as readonly string[]).includes(opts.method)) {
    throw new ValidationError("request_invalid", `--method must be one of ${IDENTITY_METHODS.join(", ")}`);
  }
  if (opts.issueClientCert) {
    if (opts.method !== "certificate")
      throw new ValidationError("request_invalid", "--issue-client-cert needs --method certificate");
    if ((opts.binding ?? []).length > 0)
      throw new ValidationError(
        "binding_invalid",
        "--issue-client-cert binds the new certificate; give no --binding",
      );
    return identityCreateWithClientCertCommand(opts);
  }
  return withConfiguredStorage(opts.config, async (storage) => {
    const { record, clientSecret } = await createIdentityRecord(storage.identities, {
      name: opts.name,
      method: opts.method as IdentityMethod,
      binding: parseBinding(opts.binding ?? []),
      grants: opts.grant ?? [],
      enabled: !opts.disabled,
      admin: opts.admin ?? false,
    });
    await audit(storage, {
      type: "admin.identity.create",
      subject: record.id,
      data: { method: record.method, name: record.name },
    });
    const view = { ...presentIdentity(record), ...(clientSecret ? { clientSecret } : {}) };
    out(
      opts.json,
      view,
      `created identity ${record.id} (${record.method}, ${record.name})` +
        (clientSecret
          ? `\nclient id:     ${record.binding.clientId}\nclient secret: ${clientSecret}\n(the secret is shown only now)`
          : ""),
    );
    return 0;
  });
}

export async function identityListCommand(opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const list = (await storage.identities.listIdentities()).map(presentIdentity);
    out(
      opts.json,
      list,
      list.length === 0
        ? "no identities"
        : list
            .map(
              (i) =>
                `${i.id}  ${i.enabled ? "enabled " : "disabled"}  ${i.method.padEnd(13)} ${i.name}  [${i.grants.join(", ")}]${i.admin ? "  admin" : ""}`,
            )
            .join("\n"),
    );
    return 0;
  });
}

export async function identitySetEnabledCommand(id: string, enabled: boolean, opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const record = await updateIdentityRecord(storage.identities, id, { enabled });
    await audit(storage, {
      type: "admin.identity.update",
      subject: id,
      data: { fields: ["enabled"], enabled },
    });
    out(opts.json, presentIdentity(record), `${enabled ? "enabled" : "disabled"} ${id}`);
    return 0;
  });
}

export async function identityDeleteCommand(id: string, opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    if (!(await storage.identities.deleteIdentity(id))) throw identityNotFound(id);
    await audit(storage, { type: "admin.identity.delete", subject: id });
    out(opts.json, { id, deleted: true }, `deleted ${id}`);
    return 0;
  });
}

export async function identityRotateSecretCommand(id: string, opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    const { record, clientSecret } = await rotateIdentitySecret(storage.identities, id);
    await audit(storage, { type: "admin.identity.rotate_secret", subject: id });
    out(
      opts.json,
      { ...presentIdentity(record), clientSecret },
      `new client secret for ${record.binding.clientId}: ${clientSecret}\n(shown only now; the old one no longer works)`,
    );
    return 0;
  });
}

export async function settingsLegacyCommand(enabled: boolean, opts: Common): Promise<number> {
  return withConfiguredStorage(opts.config, async (storage) => {
    await writeLegacySettings(storage.kv, enabled);
    await audit(storage, {
      type: "admin.settings.update",
      subject: "legacyMethodsEnabled",
      data: { value: enabled },
    });
    out(
      opts.json,
      { legacyMethodsEnabled: enabled },
      `legacy methods (client_secret, certificate) ${enabled ? "enabled" : "disabled"}`,
    );
    return 0;
  });
}

/**
 * `certfleet identity create --method certificate --issue-client-cert`: the client certificate comes
 * from the embedded CA (the one the server uses, from the same storage) and the record is bound to it.
 * Files are created, never overwritten (the key with mode 0600); without them the PEMs are printed once.
 */
export async function identityCreateWithClientCertCommand(
  opts: Common & {
    name: string;
    grant?: string[];
    admin?: boolean;
    disabled?: boolean;
    validity?: string;
    publicKey?: string;
    certOut?: string;
    keyOut?: string;
  },
): Promise<number> {
  const validityDays = opts.validity === undefined ? undefined : Number(opts.validity);
  if (validityDays !== undefined && !Number.isFinite(validityDays))
    throw new ValidationError("validity_invalid", "--validity takes a number of days");
  if (opts.publicKey !== undefined && opts.keyOut !== undefined)
    throw new ValidationError(
      "request_invalid",
      "--key-out makes no sense with --public-key: no key is made",
    );
  const publicKeyPem = opts.publicKey === undefined ? undefined : await readFile(opts.publicKey, "utf8");
  return withConfiguredStorage(opts.config, async (storage, config) => {
    const embedded = config.issuers.find((i) => i.type === "embedded");
    const ca = await createEmbeddedCa({
      store: storage.kv,
      clock: systemClock,
      logger: createLogger({ level: "warn" }),
      options: {
        id: embedded?.id,
        name: embedded?.type === "embedded" ? embedded.commonName : undefined,
      },
    });
    if (!config.auth.clientCertificates.enabled || config.auth.clientCertificates.caBundleFile) {
      process.stderr.write(
        "warning: the server does not trust the embedded CA for client certificates " +
          "(auth.clientCertificates is disabled or names its own caBundleFile)\n",
      );
    }
    // Claim the output files first (never overwriting), so a new key is never made with nowhere to go.
    const claimed: { path: string; handle: FileHandle }[] = [];
    try {
      if (opts.certOut) claimed.push({ path: opts.certOut, handle: await open(opts.certOut, "wx", 0o644) });
      if (opts.keyOut) claimed.push({ path: opts.keyOut, handle: await open(opts.keyOut, "wx", 0o600) });
    } catch (e) {
      for (const c of claimed) await c.handle.close().then(() => unlink(c.path));
      throw new ValidationError("output_exists", `cannot create the output file: ${(e as Error).message}`);
    }
    let created: Awaited<ReturnType<typeof createCertificateIdentity>>;
    try {
      created = await createCertificateIdentity(
        { store: storage.identities, ca },
        {
          name: opts.name,
          grants: opts.grant ?? [],
          enabled: !opts.disabled,
          admin: opts.admin ?? false,
          validityDays,
          publicKeyPem,
        },
      );
    } catch (e) {
      for (const c of claimed) await c.handle.close().then(() => unlink(c.path));
      throw e;
    }
    const { record, certificate } = created;
    const certFile = certificate.certPem + certificate.chainPem;
    for (const c of claimed) {
      const data = c.path === opts.certOut ? certFile : (certificate.privateKeyPem ?? "");
      await c.handle.writeFile(data);
      await c.handle.sync();
      await c.handle.close();
    }
    await audit(storage, {
      type: "admin.identity.create",
      subject: record.id,
      data: { method: record.method, name: record.name, clientCertificate: true },
    });
    const printed = {
      ...(opts.certOut ? {} : { certificate: certificate.certPem, chain: certificate.chainPem }),
      ...(opts.keyOut || !certificate.privateKeyPem ? {} : { privateKey: certificate.privateKeyPem }),
    };
    out(
      opts.json,
      { ...presentIdentity(record), clientCertificate: printed },
      [
        `created identity ${record.id} (certificate, ${record.name}), bound to sha256=${record.binding.fingerprint}`,
        opts.certOut ? `certificate and chain: ${opts.certOut}` : certFile.trim(),
        ...(certificate.privateKeyPem
          ? [
              opts.keyOut
                ? `private key: ${opts.keyOut}`
                : certificate.privateKeyPem.trim() + "\n(shown only now)",
            ]
          : []),
      ].join("\n"),
    );
    return 0;
  });
}
