import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { renderConfigReference } from "../../src/config/reference.js";

describe("docs/config.md", () => {
  it("is exactly what the schema generates (run `node bin/certfleet.js config reference > docs/config.md`)", async () => {
    const committed = await readFile(new URL("../../docs/config.md", import.meta.url), "utf8");
    expect(committed).toBe(renderConfigReference());
  });

  it("lists the le-cert-server keys and certfleet's own", () => {
    const doc = renderConfigReference();
    for (const key of [
      "server.tls.certPEM",
      "database.path",
      "auth.psk.key",
      "auth.jwt.issuerUrl",
      "letsEncrypt.renewalDays",
      "acme.caDirUrl",
      "issuers[].caDirUrl",
      "dns.providers[].type",
    ]) {
      expect(doc).toContain("`" + key + "`");
    }
    expect(doc).toContain("`CERTFLEET_ACME__CA_DIR_URL`");
  });
});
