import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { ConfigError } from "../../src/core/errors.js";
import { fixtureYaml } from "./seed-support.js";

/**
 * The Akash provider chart's `letsEncrypt:` values (seeds/003), as written: `dns.providers: ["cf"]`
 * with `providers.cloudflare.apiToken`, and `gcloud` with `providers.googleCloud.serviceAccount.content`,
 * become DNS providers whose settings the provider's own schema validates.
 */
describe("Akash letsEncrypt values", () => {
  it("cf: a cloudflare provider with the token, DNS-01 preferred, on the Let's Encrypt directory", async () => {
    const c = resolveConfig(parseConfig(await fixtureYaml("akash/cloudflare.yaml")), "/srv");
    expect(c.dns.providers).toEqual([
      expect.objectContaining({
        type: "cf",
        config: { apiToken: "your-cloudflare-api-token" },
        configPath: "letsEncrypt.providers.cloudflare",
      }),
    ]);
    const le = c.issuers.find((i) => i.id === "letsencrypt");
    expect(le).toMatchObject({
      directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
      challenges: ["dns-01", "http-01"],
    });
  });

  it("gcloud: serviceAccount.content becomes the provider's serviceAccount key JSON", async () => {
    const c = resolveConfig(parseConfig(await fixtureYaml("akash/gcloud.yaml")), "/srv");
    const p = c.dns.providers[0]!;
    expect(p.type).toBe("gcloud");
    expect(JSON.parse(p.config.serviceAccount as string).client_email).toBe("[email protected]");
  });

  it("a provider listed without settings, or disabled, is an error naming the key", async () => {
    const raw = (await fixtureYaml("akash/cloudflare.yaml")) as { letsEncrypt: Record<string, any> };
    raw.letsEncrypt.providers.cloudflare.enabled = false;
    expect(() => resolveConfig(parseConfig(raw), "/srv")).toThrow(ConfigError);
    try {
      resolveConfig(parseConfig(raw), "/srv");
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual([
        "letsEncrypt.providers.cloudflare.enabled",
      ]);
    }
    delete raw.letsEncrypt.providers.cloudflare;
    try {
      resolveConfig(parseConfig(raw), "/srv");
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(["letsEncrypt.dns.providers.0"]);
    }
  });
});
