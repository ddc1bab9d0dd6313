import {
  createIdentityRecord,
  IDENTITY_METHODS,
  identityNotFound,
  presentIdentity,
  rotateIdentitySecret,
  updateIdentityRecord,
  type IdentityMethod,
} from "../auth/identity-service.js";
import { writeLegacySettings } from "../auth/legacy-switch.js";
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
  },
): Promise<number> {
  if (!(IDENTITY_METHODS as readonly string[]).includes(opts.method)) {
    throw new ValidationError("request_invalid", `--method must be one of ${IDENTITY_METHODS.join(", ")}`);
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
