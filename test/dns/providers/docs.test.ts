import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { dnsProviderDefinitions } from "../../../src/dns/providers/index.js";
import {
  DNS_PROVIDER_DOCS_PATH,
  renderDnsProviderDocs,
  renderMarkdown,
  writeDnsProviderDocs,
} from "../../../scripts/gen-dns-docs.js";

describe("docs/dns-providers.md", () => {
  it("is exactly what scripts/gen-dns-docs.ts renders from the registry", async () => {
    if (process.env.CERTFLEET_UPDATE_DOCS === "1") await writeDnsProviderDocs();
    const committed = readFileSync(DNS_PROVIDER_DOCS_PATH, "utf8");
    expect(
      committed,
      "regenerate: CERTFLEET_UPDATE_DOCS=1 npx vitest run test/dns/providers/docs.test.ts",
    ).toBe(await renderDnsProviderDocs());
  });

  it("lists every provider with its ids, lego code and every config key; secrets are marked", () => {
    const page = renderMarkdown(dnsProviderDefinitions);
    for (const d of dnsProviderDefinitions) {
      expect(page).toContain(`## ${d.id}\n`);
      for (const alias of d.aliases) expect(page).toContain(`\`${alias}\``);
      if (d.legoCode) expect(page).toContain(`\`${d.legoCode}\``);
      for (const secret of d.secretFields)
        expect(page).toMatch(new RegExp(`\\| \`${secret}\` \\|[^\\n]*\\| yes \\|`));
    }
    expect(page).toMatch(
      /\| `apiToken` \| string \| optional \| yes \| `CF_DNS_API_TOKEN`, `CLOUDFLARE_DNS_API_TOKEN` \|/,
    );
  });
});
