import { readFile } from "node:fs/promises";
import { importFileSchema, importIdentities } from "../auth/identity-import.js";
import { presentIdentity } from "../auth/identity-service.js";
import { parseYaml, zodIssues } from "../config/load.js";
import { ConfigError } from "../core/errors.js";
import { withConfiguredStorage } from "./open-storage.js";

/**
 * `certfleet identity import FILE`: identities from another system (YAML or JSON `identities:` list,
 * see docs/migrating.md), keeping their UUIDs and, for client_secret, their client id and secret, so
 * the agents' configs stay as they are. Every entry is checked before the first is written. Audited
 * with actor "cli".
 */
export async function identityImportCommand(
  file: string,
  opts: { config?: string; json?: boolean },
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError([
      { path: "(file)", message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` },
    ]);
  }
  const parsed = importFileSchema.safeParse(parseYaml(text, file));
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error));

  return withConfiguredStorage(opts.config, async (storage) => {
    const records = await importIdentities(storage.identities, parsed.data.identities);
    await storage.audit.appendAudit({
      type: "admin.identity.import",
      actor: "cli",
      method: "cli",
      outcome: "success",
      subject: null,
      data: { ids: records.map((r) => r.id) },
    });
    const views = records.map(presentIdentity);
    process.stdout.write(
      opts.json
        ? JSON.stringify(views) + "\n"
        : views.map((v) => `imported ${v.id} (${v.method}, ${v.name})`).join("\n") + "\n",
    );
    return 0;
  });
}
