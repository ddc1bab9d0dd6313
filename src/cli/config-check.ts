import { ConfigError } from "../core/errors.js";
import { loadResolvedConfig } from "./load-config.js";

/** `certfleet config check`: validate a file (and the environment) without starting anything. */
export async function configCheckCommand(options: { config?: string; json?: boolean }): Promise<number> {
  try {
    const c = await loadResolvedConfig(options.config);
    const summary = {
      ok: true,
      storage: c.storage.url.startsWith("sqlite:") ? "sqlite" : "postgresql",
      issuers: c.issuers.map((i) => ({
        id: i.id,
        type: i.type,
        ...(i.type === "acme" ? { directoryUrl: i.directoryUrl } : {}),
      })),
      defaultIssuer: c.routing.defaultIssuer,
      dnsProviders: c.dns.providers.map((p) => ({ id: p.id, type: p.type, zones: p.zones })),
      auth: {
        apiKeys: c.auth.apiKeys.map((k) => k.name),
        jwtIssuers: c.auth.jwtIssuers.map((i) => i.issuerUrl),
        bootstrap: c.auth.bootstrap,
      },
    };
    process.stdout.write(
      options.json
        ? JSON.stringify(summary) + "\n"
        : `configuration is valid\n${JSON.stringify(summary, null, 2)}\n`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (options.json)
      process.stdout.write(JSON.stringify({ ok: false, code: e.code, issues: e.issues }) + "\n");
    else process.stderr.write(e.message + "\n");
    return 2;
  }
}
