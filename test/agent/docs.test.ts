import { readdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import * as exitCodes from "../../src/agent/exit-codes.js";
import { AUTH_METHODS } from "../../src/agent/config/auth-config.js";
import { parseAgentConfig } from "../../src/agent/config/load-agent-config.js";
import { resolveIssuers } from "../../src/auth/jwt/trusted-issuer.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";

/**
 * The agent docs cannot drift from the code: every method has a page, every page's agent configuration
 * loads with the real loader (as that method, UUID where the table says), every server-side snippet
 * loads with the server's, and the exit code table is the one in src/agent/exit-codes.ts.
 */
const DOCS = new URL("../../docs/agent/", import.meta.url);

function yamlBlocks(markdown: string): { section: string; text: string }[] {
  const blocks: { section: string; text: string }[] = [];
  let section = "";
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith("## ")) section = lines[i]!.slice(3).trim();
    if (lines[i] === "```yaml") {
      const end = lines.indexOf("```", i + 1);
      blocks.push({ section, text: lines.slice(i + 1, end).join("\n") });
      i = end;
    }
  }
  return blocks;
}

/** Every ${VAR} a text uses, set to a plausible value. */
function envFor(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g))
    env[m[1]!] = m[1] === "ZAITA_CLIENT_ID" ? "cour_0123456789abcdef" : "value";
  return env;
}

describe("agent documentation", () => {
  it("has one page per auth method", async () => {
    const pages = (await readdir(new URL("methods/", DOCS))).map((f) => f.replace(/\.md$/, ""));
    expect(pages.sort()).toEqual([...AUTH_METHODS].sort());
  });

  it.each([...AUTH_METHODS])("%s: the page's agent configuration loads as that method", async (method) => {
    const page = await readFile(new URL(`methods/${method}.md`, DOCS), "utf8");
    const agent = yamlBlocks(page).filter((b) => b.section === "Agent configuration");
    expect(agent.length).toBeGreaterThan(0);
    const config = parseAgentConfig(parse(agent[0]!.text), envFor(agent[0]!.text), "/etc/certfleet");
    expect(config.auth.method).toBe(method);
    expect(config.certificates.length).toBeGreaterThan(0);
  });

  it.each([...AUTH_METHODS])(
    "%s: the page's server-side snippets load with the server's loader",
    async (method) => {
      const page = await readFile(new URL(`methods/${method}.md`, DOCS), "utf8");
      for (const block of yamlBlocks(page).filter((b) => b.section === "Server side")) {
        const resolved = resolveConfig(parseConfig(parse(block.text)));
        expect(() => resolveIssuers(resolved.auth.jwtIssuers)).not.toThrow();
      }
    },
  );

  it("the README's configuration example loads, and its exit code table is the code's", async () => {
    const readme = await readFile(new URL("README.md", DOCS), "utf8");
    const example = yamlBlocks(readme).find((b) => b.section === "Configuration")!;
    const withUuidRemoved = example.text.replace(/^ {2}uuid: .*$/m, "");
    expect(
      parseAgentConfig(parse(withUuidRemoved), envFor(example.text), "/etc/certfleet").certificates,
    ).toHaveLength(1);

    const table = readme.slice(readme.indexOf("## Exit codes"), readme.indexOf("## Configuration"));
    const documented = [...table.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1])).sort();
    const defined = Object.entries(exitCodes)
      .filter(([name]) => name.startsWith("EXIT_"))
      .map(([, value]) => value as number)
      .sort();
    expect(documented).toEqual(defined);
  });
});
