import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { parseAgentConfig } from "../../src/agent/config/load-agent-config.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import {
  codeBlocks,
  flagName,
  inlineCode,
  optionsInHelp,
  readPage,
  REPO,
  shellCommands,
} from "../docs/markdown.js";

/**
 * docs/operations.md held against what it describes: every `certfleet` command it shows exists with
 * those options (asked from the built bin's --help), every file under deploy/ it names exists, its
 * configuration snippets load with the real loaders, and the Secrets it tells you to create are the
 * ones the Kubernetes manifests reference.
 */
const exec = promisify(execFile);
const BIN = new URL("bin/certfleet.js", REPO).pathname;
const PAGE = "docs/operations.md";

let page: string;
beforeAll(async () => {
  page = await readPage(PAGE);
});

const commandsOf = (program: string) =>
  codeBlocks(page, PAGE)
    .filter((b) => b.lang === "sh")
    .flatMap((b) => shellCommands(b.text))
    .map((c) => c.words)
    .filter((w) => w[0] === program);

describe("docs/operations.md", () => {
  it("every certfleet command it shows exists, with the options it uses", async () => {
    const commands = [
      ...commandsOf("certfleet"),
      // and the ones named in the prose
      ...inlineCode(page)
        .filter((c) => c.startsWith("certfleet "))
        .flatMap((c) => shellCommands(c).map((x) => x.words)),
    ];
    expect(commands.length).toBeGreaterThan(8);
    const helps = new Map<string, Set<string>>();
    for (const words of commands) {
      const path: string[] = [];
      for (const w of words.slice(1)) {
        if (w.startsWith("-")) break;
        path.push(w);
      }
      const key = path.join(" ");
      if (!helps.has(key)) {
        const { stdout } = await exec(process.execPath, [BIN, ...path, "--help"], { timeout: 60_000 });
        // commander prints the parent's help for an unknown subcommand: make sure it is this one
        expect(stdout, key).toContain(`Usage: certfleet ${key}`);
        helps.set(key, optionsInHelp(stdout));
      }
      for (const flag of words.filter((w) => w.startsWith("-")).map(flagName))
        expect(helps.get(key), `certfleet ${key} ${flag}`).toContain(flag);
    }
    // the ones this page is about
    expect([...helps.keys()]).toEqual(
      expect.arrayContaining(["storage backup", "storage restore", "storage migrate", "storage rotate-key"]),
    );
  }, 300_000);

  it("every file under deploy/ it names exists", () => {
    const named = new Set<string>();
    for (const m of page.matchAll(/(?<![\w/])deploy\/[A-Za-z0-9@._/-]+[A-Za-z0-9]/g)) named.add(m[0]);
    for (const code of inlineCode(page))
      if (/^(overlays|examples|components|base)\//.test(code)) named.add(`deploy/kubernetes/${code}`);
    expect(named.size).toBeGreaterThan(10);
    for (const path of named) expect(existsSync(new URL(path, REPO)), path).toBe(true);
  });

  it("its server configuration snippet loads, its secrets coming from the environment", () => {
    const yaml = codeBlocks(page, PAGE).filter(
      (b) => b.lang === "yaml" && b.section === "Configuration and secrets",
    );
    expect(yaml).toHaveLength(1);
    const config = resolveConfig(
      parseConfig(parse(yaml[0]!.text), {
        ACME_EMAIL: "ops@example.com",
        ADMIN_API_KEY_HASH: "sha256:" + "0".repeat(64),
      }),
    );
    expect(config.auth.apiKeys[0]).toMatchObject({ admin: true, keyHash: "sha256:" + "0".repeat(64) });
    expect(config.issuers.find((i) => i.type === "acme")).toMatchObject({ email: "ops@example.com" });
  });

  it("its agent configuration loads with the agent's loader and installs where the unit may write", () => {
    const yaml = codeBlocks(page, PAGE).filter(
      (b) => b.lang === "yaml" && b.section === "The agent on an edge machine",
    );
    expect(yaml).toHaveLength(1);
    const agent = parseAgentConfig(parse(yaml[0]!.text), {}, "/etc/certfleet");
    const outputs = JSON.stringify(agent.certificates);
    expect(outputs).toContain("/etc/certfleet/tls/nginx/fullchain.pem");
    // the path unit the page enables watches that file
    expect(page).toContain("certfleet-reload@nginx.path");
  });

  it("the Secrets it tells you to create are the ones the manifests reference", async () => {
    const created = new Set(
      commandsOf("kubectl")
        .filter((w) => w.includes("secret") && w.includes("generic"))
        .map((w) => w[w.indexOf("generic") + 1]!),
    );
    const referenced = new Set<string>();
    for (const dir of ["overlays/postgres", "examples/akash-cloudflare", "examples/akash-gcloud-staging"]) {
      const { stdout } = await exec(
        "kubectl",
        ["kustomize", new URL(`deploy/kubernetes/${dir}`, REPO).pathname],
        {
          timeout: 60_000,
        },
      );
      const text = JSON.stringify(parseAllDocuments(stdout).map((d) => d.toJSON()));
      for (const m of text.matchAll(/"secretKeyRef":\{[^}]*"name":"([^"]+)"[^}]*\}/g))
        if (!m[0].includes('"optional":true')) referenced.add(m[1]!);
      for (const m of text.matchAll(/"secretName":"([^"]+)"/g)) referenced.add(m[1]!);
    }
    expect(referenced.size).toBeGreaterThan(4);
    // gcloud's Secret is created from a file in the component's own comment; every other one is here
    for (const name of referenced) if (name !== "certfleet-dns-gcloud") expect(created, name).toContain(name);
    expect(page).toContain("certfleet-dns-gcloud");
  }, 120_000);
});
