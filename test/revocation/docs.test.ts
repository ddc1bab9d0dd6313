import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configSchema } from "../../src/config/schema.js";
import { REVOCATION_REASON_NAMES } from "../../src/issuance/issuer.js";

const doc = await readFile(new URL("../../docs/revocation.md", import.meta.url), "utf8");

/** docs/revocation.md against the code: its reasons, its config snippet, its routes and CLI flags. */
describe("docs/revocation.md", () => {
  it("lists exactly the reasons the API and CLI accept", () => {
    const section = doc.slice(doc.indexOf("## Reasons"), doc.indexOf("Public CAs accept"));
    const listed = [...section.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]);
    expect(listed.slice(1)).toEqual(REVOCATION_REASON_NAMES); // the first is the default
  });

  it("its crlUrl example is a valid configuration", () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const parsed = configSchema.safeParse(parse(yaml));
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });

  it("names the routes and CLI flags that exist", async () => {
    const main = await readFile(new URL("../../src/cli/main.ts", import.meta.url), "utf8");
    for (const flag of ["--domain", "--reason", "--no-replace", "--json"]) {
      expect(doc).toContain(flag);
      expect(main).toContain(`"${flag}`);
    }
    const openapi = await readFile(new URL("../../docs/openapi.yaml", import.meta.url), "utf8");
    for (const path of ["/api/certificate/revoke", "/ca/intermediate.crl", "/ca/root.pem"]) {
      expect(doc).toContain(path);
      expect(openapi).toContain(`${path}:`);
    }
  });
});
