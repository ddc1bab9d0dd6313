import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { agentConfigSchema } from "../../src/agent/config/agent-config.js";
import { parseAgentConfig } from "../../src/agent/config/load-agent-config.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig, type ResolvedConfig } from "../../src/config/resolve.js";
import { configSchema } from "../../src/config/schema.js";
import { objectShape } from "../../src/config/schema-walk.js";
import { patternMatches } from "../../src/core/names.js";
import { prepareDocConfig, runCertfleetCli, startDocServer, type DocServer } from "./doc-server.js";
import {
  codeBlocks,
  flagName,
  inlineCode,
  optionsInHelp,
  readPage,
  shellCommands,
  type CodeBlock,
  type ShellCommand,
} from "./markdown.js";

/**
 * The integration pages and the metrics page cannot drift from the software they configure: every
 * snippet is parsed, certfleet's own snippets load with the real loaders and are started, and each
 * client snippet is held against that running server and, where the client is installed (Caddy, lego,
 * certbot), against the client itself. Placeholders (`eab_…`, `<kid>`, `certfleet.example.com:8443`, …)
 * are replaced by real values: an EAB key made by the page's own `certfleet acme eab create` command
 * (the real CLI), the server's address and its CA file.
 */
const exec = promisify(execFile);

const INTEGRATIONS = ["traefik", "caddy", "cert-manager", "certbot-lego", "nginx"].map(
  (p) => `docs/integrations/${p}.md`,
);
const METRICS = "docs/metrics.md";
const PAGES = [...INTEGRATIONS, METRICS];

// ---------------------------------------------------------------- what a YAML block is

type Kind =
  | "certfleet"
  | "agent"
  | "traefik-static"
  | "traefik-dynamic"
  | "compose"
  | "prometheus"
  | "prometheus-rules"
  | "kubernetes";

const SERVER_KEYS = new Set(Object.keys(configSchema.shape));
const AGENT_KEYS = new Set(Object.keys(agentConfigSchema.shape));

/** What a block configures; undefined = nothing this test knows, which fails (a new snippet needs a check). */
function kindOf(docs: unknown[]): Kind | undefined {
  const objects = docs.filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null);
  if (objects.length !== docs.length || objects.length === 0) return undefined;
  if (objects.every((d) => typeof d["apiVersion"] === "string" && typeof d["kind"] === "string"))
    return "kubernetes";
  if (objects.length > 1) return undefined;
  const keys = Object.keys(objects[0]!);
  const only = (...allowed: string[]) => keys.every((k) => allowed.includes(k));
  if (keys.includes("certificatesResolvers")) return "traefik-static";
  if (only("http", "tcp", "tls") && keys.length > 0) return "traefik-dynamic";
  if (only("environment", "volumes", "services")) return "compose";
  if (keys.includes("scrape_configs")) return "prometheus";
  if (only("groups")) return "prometheus-rules";
  if (keys.includes("api") && keys.every((k) => AGENT_KEYS.has(k))) return "agent";
  if (keys.every((k) => SERVER_KEYS.has(k))) return "certfleet";
  return undefined;
}

interface YamlBlock extends CodeBlock {
  docs: unknown[];
  kind: Kind | undefined;
}

function yamlBlocks(blocks: CodeBlock[]): YamlBlock[] {
  return blocks
    .filter((b) => b.lang === "yaml")
    .map((b) => {
      const docs = parseAllDocuments(b.text, { uniqueKeys: true });
      const list = Array.isArray(docs) ? docs : [docs];
      const values = list.map((d) => d.toJS() as unknown);
      return { ...b, docs: values, kind: kindOf(values) };
    });
}

/** Every ${VAR} a text uses, set to a value that satisfies any secret's minimum length. */
function envFor(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g))
    env[m[1]!] = "doc-value-0123456789abcdef-0123";
  return env;
}

const where = (b: CodeBlock) => `${b.page}:${b.line}`;

// ---------------------------------------------------------------- the pages

interface Page {
  path: string;
  markdown: string;
  blocks: CodeBlock[];
  yaml: YamlBlock[];
  shell: ShellCommand[];
}

const pages = new Map<string, Page>();
const page = (path: string) => pages.get(path)!;

beforeAll(async () => {
  for (const path of PAGES) {
    const markdown = await readPage(path);
    const blocks = codeBlocks(markdown, path);
    const shell = blocks
      .filter((b) => ["sh", "bash", "shell"].includes(b.lang))
      .flatMap((b) => shellCommands(b.text));
    pages.set(path, { path, markdown, blocks, yaml: yamlBlocks(blocks), shell });
  }
});

/** The page's certfleet server configuration block (the first; a page documents one setup). */
function certfleetBlock(p: Page): YamlBlock {
  const block = p.yaml.find((b) => b.kind === "certfleet");
  expect(block, `${p.path} has a certfleet configuration block`).toBeDefined();
  return block!;
}

/** The page's `certfleet acme eab create …` command. */
function eabCreateCommand(p: Page): ShellCommand {
  const cmd = p.shell.find((c) => c.words.slice(0, 4).join(" ") === "certfleet acme eab create");
  expect(cmd, `${p.path} shows certfleet acme eab create`).toBeDefined();
  return cmd!;
}

const grantsOf = (cmd: ShellCommand) =>
  cmd.words.flatMap((w, i) =>
    w === "--grant" ? [cmd.words[i + 1]!] : w.startsWith("--grant=") ? [w.slice(8)] : [],
  );

interface EabKey {
  kid: string;
  hmacKey: string;
}

/**
 * A page's setup as a reader follows it: the certfleet block written to a config file, the page's own
 * `certfleet acme eab create` run with the real CLI against it, then the server started from the file.
 */
async function followPage(
  p: Page,
): Promise<{ server: DocServer; eab: EabKey; grants: string[]; config: ResolvedConfig }> {
  const block = certfleetBlock(p);
  const prepared = await prepareDocConfig(block.docs[0] as Record<string, unknown>, {
    env: envFor(block.text),
  });
  try {
    const cmd = eabCreateCommand(p);
    const args = cmd.words.slice(1).map((w, i, all) => (all[i - 1] === "--config" ? prepared.configPath : w));
    expect(args, "the command names the config file").toContain(prepared.configPath);
    const { stdout } = await runCertfleetCli(args, prepared.env);
    const eab = JSON.parse(stdout) as EabKey;
    // the output the page shows (`# {"kid":"eab_…","hmacKey":"…"}`) has the CLI's keys, and the kid its prefix
    const shown = /#\s*(\{"kid".*\})/.exec(p.markdown);
    if (shown) {
      const documented = JSON.parse(shown[1]!) as EabKey;
      expect(Object.keys(eab).sort()).toEqual(Object.keys(documented).sort());
      expect(eab.kid.startsWith(documented.kid.replace("…", ""))).toBe(true);
    }
    // "hmacKey is base64url" (without padding: what lego's --hmac and Traefik's hmacEncoded take)
    expect(eab.hmacKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(eab.hmacKey, "base64url")).toHaveLength(32);
    const server = await startDocServer(prepared);
    return { server, eab, grants: grantsOf(cmd), config: prepared.config };
  } catch (e) {
    await rm(prepared.dir, { recursive: true, force: true });
    throw e;
  }
}

const externalUrlOf = (config: ResolvedConfig) => config.acmeServer.externalUrl!;

/** GET an ACME directory URL's path at the running server; the profile it belongs to must agree. */
async function directoryAt(server: DocServer, config: ResolvedConfig, docUrl: string) {
  const url = new URL(docUrl);
  expect(url.origin, `${docUrl} is certfleet's externalUrl`).toBe(new URL(externalUrlOf(config)).origin);
  const res = await server.get(url.pathname);
  expect(res.status, `GET ${url.pathname}`).toBe(200);
  const dir = res.json<Record<string, any>>();
  for (const resource of ["newNonce", "newAccount", "newOrder"]) {
    expect(typeof dir[resource]).toBe("string");
    // clients are told the externalUrl, which is why JWS `url` headers must match it
    expect(dir[resource].startsWith(externalUrlOf(config) + "/acme/")).toBe(true);
  }
  const name = /^\/acme\/(?:([^/]+)\/)?directory$/.exec(url.pathname)?.[1];
  const profiles = config.acmeServer.profiles;
  const profile = name
    ? profiles.find((p) => p.name === name)
    : (profiles.find((p) => p.name === "default") ?? profiles[0]);
  expect(profile, `a profile serves ${url.pathname}`).toBeDefined();
  expect(dir["meta"]?.externalAccountRequired).toBe(profile!.mode === "eab");
  return { dir, profile: profile! };
}

const covered = (grants: string[], name: string) => grants.some((g) => patternMatches(g, name));

// ---------------------------------------------------------------- 1, 2: every YAML block

describe("YAML blocks", () => {
  it("every block parses, and is something this test checks", () => {
    let count = 0;
    for (const p of pages.values()) {
      for (const b of p.yaml) {
        count++;
        const docs = parseAllDocuments(b.text, { uniqueKeys: true });
        for (const d of Array.isArray(docs) ? docs : [docs])
          expect(
            d.errors.map((e) => e.message),
            where(b),
          ).toEqual([]);
        expect(b.kind, `${where(b)}: unrecognised snippet`).toBeDefined();
      }
    }
    expect(count).toBeGreaterThanOrEqual(12);
  });

  it("certfleet blocks load with parseConfig and resolveConfig", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "cf-docs-load-"));
    try {
      const blocks = [...pages.values()].flatMap((p) => p.yaml.filter((b) => b.kind === "certfleet"));
      expect(blocks.length).toBeGreaterThanOrEqual(5);
      for (const b of blocks) {
        const raw = { ...(b.docs[0] as Record<string, unknown>), dataDir: join(cwd, "data") };
        expect(() => resolveConfig(parseConfig(raw, envFor(b.text)), cwd), where(b)).not.toThrow();
      }
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it("agent blocks load with the agent's loader", () => {
    const blocks = [...pages.values()].flatMap((p) => p.yaml.filter((b) => b.kind === "agent"));
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    for (const b of blocks) {
      const config = parseAgentConfig(b.docs[0], envFor(b.text), "/etc/certfleet");
      expect(config.certificates.length, where(b)).toBeGreaterThan(0);
    }
  });
});

// ---------------------------------------------------------------- 3: Traefik

// Traefik is not installed (no Debian package): its documented `certificatesResolvers.<name>.acme`
// options (v2/v3) are the reference the static configuration is held against.
const TRAEFIK_ACME_OPTIONS = new Set([
  "email",
  "caServer",
  "certificatesDuration",
  "preferredChain",
  "storage",
  "keyType",
  "eab",
  "httpChallenge",
  "tlsChallenge",
  "dnsChallenge",
  "caCertificates",
  "caSystemCertPool",
  "caServerName",
  "clientTimeout",
  "clientResponseHeaderTimeout",
  "profile",
  "emailAddresses",
  "disableCommonName",
]);
const TRAEFIK_KEY_TYPES = ["EC256", "EC384", "RSA2048", "RSA4096", "RSA8192"];

describe("docs/integrations/traefik.md", () => {
  let setup: Awaited<ReturnType<typeof followPage>>;
  beforeAll(async () => {
    setup = await followPage(page(INTEGRATIONS[0]!));
  });
  afterAll(async () => setup?.server.stop());

  it("the resolver's caServer is an ACME directory the doc's certfleet serves, with EAB in Traefik's names", async () => {
    const p = page(INTEGRATIONS[0]!);
    const statics = p.yaml.filter((b) => b.kind === "traefik-static");
    expect(statics).toHaveLength(1);
    const resolvers = (statics[0]!.docs[0] as any).certificatesResolvers as Record<string, any>;
    for (const [name, resolver] of Object.entries(resolvers)) {
      const acme = resolver.acme as Record<string, any>;
      expect(
        Object.keys(acme).filter((k) => !TRAEFIK_ACME_OPTIONS.has(k)),
        name,
      ).toEqual([]);
      expect(TRAEFIK_KEY_TYPES).toContain(acme["keyType"]);
      expect(
        ["httpChallenge", "tlsChallenge", "dnsChallenge"].some((c) => c in acme),
        "Traefik needs a challenge",
      ).toBe(true);
      const { profile } = await directoryAt(setup.server, setup.config, acme["caServer"]);
      expect(profile.mode).toBe("eab");
      expect(Object.keys(acme["eab"]).sort()).toEqual(["hmacEncoded", "kid"]);
      // the placeholders stand for what `certfleet acme eab create` prints
      expect(setup.eab.kid.startsWith(String(acme["eab"].kid).replace("…", ""))).toBe(true);
      expect(String(acme["eab"].hmacEncoded)).toBe("…");
    }
  });

  it("every router's resolver exists and its Host names are within the EAB key's grants", () => {
    const p = page(INTEGRATIONS[0]!);
    const resolvers = Object.keys(
      (p.yaml.find((b) => b.kind === "traefik-static")!.docs[0] as any).certificatesResolvers,
    );
    const dynamic = p.yaml.filter((b) => b.kind === "traefik-dynamic");
    expect(dynamic.length).toBeGreaterThan(0);
    for (const b of dynamic) {
      for (const [name, router] of Object.entries((b.docs[0] as any).http.routers as Record<string, any>)) {
        expect(resolvers, name).toContain(router.tls.certResolver);
        const hosts = [...String(router.rule).matchAll(/Host\(`([^`]+)`\)/g)].map((m) => m[1]!);
        expect(hosts.length).toBeGreaterThan(0);
        for (const host of hosts) expect(covered(setup.grants, host), host).toBe(true);
      }
    }
  });

  it("the compose snippet hands lego (inside Traefik) the CA file it mounts", async () => {
    const compose = page(INTEGRATIONS[0]!).yaml.filter((b) => b.kind === "compose");
    expect(compose).toHaveLength(1);
    const { environment, volumes } = compose[0]!.docs[0] as {
      environment: Record<string, string>;
      volumes: string[];
    };
    const variables = Object.keys(environment);
    expect(variables).toEqual(["LEGO_CA_CERTIFICATES"]);
    expect(await legoKnowsVariable("LEGO_CA_CERTIFICATES")).toBe(true);
    const mounted = volumes.map((v) => v.split(":")[1]);
    expect(mounted).toContain(environment["LEGO_CA_CERTIFICATES"]);
  });
});

// ---------------------------------------------------------------- 4: Caddy

describe("docs/integrations/caddy.md", () => {
  let setup: Awaited<ReturnType<typeof followPage>>;
  let dir: string;
  beforeAll(async () => {
    setup = await followPage(page(INTEGRATIONS[1]!));
    dir = await mkdtemp(join(tmpdir(), "cf-docs-caddy-"));
  });
  afterAll(async () => {
    await setup?.server.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the Caddyfile, with real values, adapts and validates in the installed Caddy", async () => {
    const blocks = page(INTEGRATIONS[1]!).blocks.filter((b) => b.lang === "caddyfile");
    expect(blocks).toHaveLength(1);
    const text = blocks[0]!.text;
    const docDir = /^\s*dir (\S+)$/m.exec(text)![1]!;
    await directoryAt(setup.server, setup.config, docDir);
    const directoryUrl = setup.server.url + new URL(docDir).pathname;
    const caddyfile = text
      .replace(docDir, directoryUrl)
      .replace(/trusted_roots \S+/, `trusted_roots ${setup.server.cf.caPath}`)
      .replace("<kid>", setup.eab.kid)
      .replace("<hmacKey>", setup.eab.hmacKey);
    expect(caddyfile).not.toMatch(/<kid>|<hmacKey>|certfleet\.example\.com/);
    const file = join(dir, "Caddyfile");
    await writeFile(file, caddyfile);
    const home = { HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
    // --validate provisions the modules (loads trusted_roots, checks the issuer) without listening
    const { stdout } = await exec(
      "caddy",
      ["adapt", "--adapter", "caddyfile", "--config", file, "--validate"],
      {
        env: { PATH: process.env["PATH"], ...home },
        timeout: 15_000,
      },
    );
    const adapted = JSON.parse(stdout);
    const policies = adapted.apps.tls.automation.policies as any[];
    const issuers = policies.flatMap((p) => p.issuers ?? []).filter((i: any) => i.module === "acme");
    expect(issuers).toHaveLength(1);
    expect(issuers[0]).toMatchObject({
      ca: directoryUrl,
      external_account: { key_id: setup.eab.kid, mac_key: setup.eab.hmacKey },
      trusted_roots_pem_files: [setup.server.cf.caPath],
    });
    // and the site is within the key's grants
    const sites = policies.flatMap((p) => p.subjects ?? []) as string[];
    expect(sites.length).toBeGreaterThan(0);
    for (const site of sites) expect(covered(setup.grants, site), site).toBe(true);
  });
});

// ---------------------------------------------------------------- 5: cert-manager

// No Kubernetes here: cert-manager's manifests are checked structurally against its documented
// cert-manager.io/v1 API (ACMEIssuer, ACMEExternalAccountBinding, Certificate), and their URLs, secret
// references and names against the running certfleet and the EAB key's grants.
const CERT_MANAGER_ACME_FIELDS = new Set([
  "server",
  "email",
  "caBundle",
  "skipTLSVerify",
  "privateKeySecretRef",
  "externalAccountBinding",
  "solvers",
  "preferredChain",
  "disableAccountKeyGeneration",
  "enableDurationFeature",
  "profile",
]);
/** Where cert-manager looks up secrets a ClusterIssuer references (its default --cluster-resource-namespace). */
const CLUSTER_RESOURCE_NAMESPACE = "cert-manager";

describe("docs/integrations/cert-manager.md", () => {
  let setup: Awaited<ReturnType<typeof followPage>>;
  let manifests: any[];
  beforeAll(async () => {
    const p = page(INTEGRATIONS[2]!);
    setup = await followPage(p);
    manifests = p.yaml.filter((b) => b.kind === "kubernetes").flatMap((b) => b.docs);
  });
  afterAll(async () => setup?.server.stop());

  it("the issuer points at a directory certfleet serves, and binds an EAB key a Secret provides", async () => {
    const issuers = manifests.filter((m) => m.kind === "ClusterIssuer" || m.kind === "Issuer");
    expect(issuers.length).toBeGreaterThan(0);
    for (const issuer of issuers) {
      expect(issuer.apiVersion).toBe("cert-manager.io/v1");
      const acme = issuer.spec.acme;
      expect(Object.keys(acme).filter((k) => !CERT_MANAGER_ACME_FIELDS.has(k))).toEqual([]);
      const { profile } = await directoryAt(setup.server, setup.config, acme.server);
      expect(acme.privateKeySecretRef?.name).toEqual(expect.any(String));
      expect(Array.isArray(acme.solvers) && acme.solvers.length > 0, "cert-manager needs a solver").toBe(
        true,
      );
      // caBundle stands for certfleet's ca.pem, the file every request of this test trusts (and nothing else)
      expect(acme.caBundle).toMatch(/^<base64 of certfleet's ca\.pem>$/);

      const eab = acme.externalAccountBinding;
      expect(eab !== undefined).toBe(profile.mode === "eab");
      expect(Object.keys(eab).sort()).toEqual(["keyID", "keySecretRef"]);
      expect(eab.keyID).toBe("<kid>");
      expect(Object.keys(eab.keySecretRef).sort()).toEqual(["key", "name"]);
      const namespace =
        issuer.kind === "ClusterIssuer" ? CLUSTER_RESOURCE_NAMESPACE : issuer.metadata.namespace;
      const secret = manifests.find(
        (m) =>
          m.kind === "Secret" &&
          m.metadata.name === eab.keySecretRef.name &&
          m.metadata.namespace === namespace,
      );
      expect(secret, `a Secret ${namespace}/${eab.keySecretRef.name}`).toBeDefined();
      expect(secret.apiVersion).toBe("v1");
      const value = (secret.stringData ?? {})[eab.keySecretRef.key];
      expect(value, `the Secret has key ${eab.keySecretRef.key}`).toBe("<hmacKey>");
    }
  });

  it("certificates reference the issuer and ask only for granted names", () => {
    const certificates = manifests.filter((m) => m.kind === "Certificate");
    expect(certificates.length).toBeGreaterThan(0);
    for (const c of certificates) {
      expect(c.apiVersion).toBe("cert-manager.io/v1");
      const issuer = manifests.find(
        (m) => m.kind === c.spec.issuerRef.kind && m.metadata.name === c.spec.issuerRef.name,
      );
      expect(issuer, `issuerRef ${c.spec.issuerRef.kind}/${c.spec.issuerRef.name}`).toBeDefined();
      expect(c.spec.secretName).toEqual(expect.any(String));
      for (const name of c.spec.dnsNames as string[]) expect(covered(setup.grants, name), name).toBe(true);
      const key = c.spec.privateKey;
      if (key) expect(["RSA", "ECDSA", "Ed25519"]).toContain(key.algorithm);
      if (key?.algorithm === "ECDSA") expect([256, 384, 521]).toContain(key.size);
    }
  });
});

// ---------------------------------------------------------------- 6: lego and certbot

const LEGO_SUBCOMMANDS = ["run", "renew", "revoke", "list", "dnshelp"];

interface ClientHelp {
  legoGlobal: Set<string>;
  legoSub: Map<string, Set<string>>;
  certbot: Set<string>;
}

async function clientHelp(): Promise<ClientHelp> {
  const help = async (cmd: string, args: string[]) => (await exec(cmd, args, { timeout: 15_000 })).stdout;
  const [global, run, renew, certbot] = await Promise.all([
    help("lego", ["--help"]),
    help("lego", ["run", "--help"]),
    help("lego", ["renew", "--help"]),
    help("certbot", ["--help", "all"]),
  ]);
  return {
    legoGlobal: optionsInHelp(global),
    legoSub: new Map([
      ["run", optionsInHelp(run)],
      ["renew", optionsInHelp(renew)],
    ]),
    certbot: optionsInHelp(certbot),
  };
}

let legoBinary: Buffer | undefined;
async function legoKnowsVariable(name: string): Promise<boolean> {
  const path = (await exec("sh", ["-c", "command -v lego"])).stdout.trim();
  legoBinary ??= await readFile(path);
  return legoBinary.includes(name);
}

/** `lego` or `certbot` commands in every shell block of every page under docs/. */
async function clientCommands(): Promise<{ page: string; cmd: ShellCommand }[]> {
  const all = (await readdir(new URL("../../docs/", import.meta.url), { recursive: true }))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const out: { page: string; cmd: ShellCommand }[] = [];
  for (const path of all) {
    for (const b of codeBlocks(await readPage(path), path)) {
      if (!["sh", "bash", "shell", "console"].includes(b.lang)) continue;
      for (const cmd of shellCommands(b.text))
        if (["lego", "certbot"].includes(cmd.words[0] ?? "")) out.push({ page: path, cmd });
    }
  }
  return out;
}

describe("docs/integrations/certbot-lego.md", () => {
  let setup: Awaited<ReturnType<typeof followPage>>;
  let help: ClientHelp;
  let commands: { page: string; cmd: ShellCommand }[];
  beforeAll(async () => {
    [setup, help, commands] = await Promise.all([
      followPage(page(INTEGRATIONS[3]!)),
      clientHelp(),
      clientCommands(),
    ]);
  });
  afterAll(async () => setup?.server.stop());

  it("every flag of every lego and certbot command is one the installed client knows, where it is given", async () => {
    expect(commands.filter((c) => c.cmd.words[0] === "lego").length).toBeGreaterThanOrEqual(4);
    expect(commands.filter((c) => c.cmd.words[0] === "certbot").length).toBeGreaterThanOrEqual(1);
    const unknown: string[] = [];
    for (const { page: path, cmd } of commands) {
      const [client, ...rest] = cmd.words;
      if (client === "certbot") {
        for (const w of rest)
          if (w.startsWith("-") && !help.certbot.has(flagName(w))) unknown.push(`${path}: certbot ${w}`);
        continue;
      }
      // lego: global options before the command, the command's own after it
      const at = rest.findIndex((w) => LEGO_SUBCOMMANDS.includes(w));
      expect(at, `${path}: lego … ${cmd.words.join(" ")} names a command`).toBeGreaterThanOrEqual(0);
      const sub = help.legoSub.get(rest[at]!) ?? new Set<string>();
      rest.forEach((w, i) => {
        if (!w.startsWith("-")) return;
        const known = i < at ? help.legoGlobal : sub;
        if (!known.has(flagName(w))) unknown.push(`${path}: lego ${i < at ? "" : rest[at] + " "}${w}`);
      });
      // the environment it is given: lego's own variables, or the chosen DNS provider's
      const dns = rest[rest.indexOf("--dns") + 1];
      const providerVars =
        dns && rest.includes("--dns") ? (await exec("lego", ["dnshelp", "-c", dns])).stdout : "";
      for (const name of Object.keys(cmd.env)) {
        const ok = name.startsWith("LEGO_")
          ? await legoKnowsVariable(name)
          : providerVars.includes(`"${name}"`);
        if (!ok) unknown.push(`${path}: lego environment ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it("flags the page mentions in prose exist in lego or certbot", () => {
    const p = page(INTEGRATIONS[3]!);
    const mentioned = inlineCode(p.markdown).flatMap((span) =>
      [...span.matchAll(/(?:^|\s)(--[a-z][\w.-]*)/g)].map((m) => m[1]!),
    );
    expect(mentioned.length).toBeGreaterThan(5);
    const all = new Set([
      ...help.legoGlobal,
      ...[...help.legoSub.values()].flatMap((s) => [...s]),
      ...help.certbot,
    ]);
    expect(mentioned.filter((f) => !all.has(f))).toEqual([]);
  });

  it("every --server is a directory the page's certfleet serves; EAB flags exactly for eab profiles, on granted names", async () => {
    const p = page(INTEGRATIONS[3]!);
    const withServer = p.shell.filter(
      (c) => ["lego", "certbot"].includes(c.words[0]!) && c.words.includes("--server"),
    );
    expect(withServer.length).toBeGreaterThanOrEqual(3);
    const seenModes = new Set<string>();
    for (const cmd of withServer) {
      const w = cmd.words;
      const { profile } = await directoryAt(setup.server, setup.config, w[w.indexOf("--server") + 1]!);
      seenModes.add(profile.mode);
      const usesEab = w.some((x) => ["--eab", "--kid", "--eab-kid"].includes(flagName(x)));
      expect(usesEab, w.join(" ")).toBe(profile.mode === "eab");
      if (!usesEab) continue;
      const names = w.flatMap((x, i) => (["--domains", "-d"].includes(x) ? [w[i + 1]!] : []));
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(covered(setup.grants, name), name).toBe(true);
    }
    expect([...seenModes].sort()).toEqual(["challenge", "eab"]);
  });
});

// ---------------------------------------------------------------- nginx (agent)

describe("docs/integrations/nginx.md", () => {
  it("the agent's outputs are the files nginx reads, for names the server-side key grants", () => {
    const p = page(INTEGRATIONS[4]!);
    const agentBlock = p.yaml.find((b) => b.kind === "agent")!;
    const agent = parseAgentConfig(agentBlock.docs[0], envFor(agentBlock.text), "/etc/certfleet");
    const cert = agent.certificates[0]!;

    const nginx = p.blocks.find((b) => b.lang === "nginx")!.text;
    const directive = (name: string) => new RegExp(`^\\s*${name}\\s+([^;]+);`, "m").exec(nginx)?.[1]?.trim();
    const pem = (agentBlock.docs[0] as any).certificates[0].outputs.pem;
    expect(directive("ssl_certificate")).toBe(pem.fullchain);
    expect(directive("ssl_certificate_key")).toBe(pem.key);
    expect(directive("server_name")?.split(/\s+/)).toEqual(cert.domains);

    const span = inlineCode(p.markdown).find((s) => s.startsWith("auth.apiKeys:"));
    expect(span).toBeDefined();
    const keyHash = `sha256:${createHash("sha256").update(randomBytes(24)).digest("hex")}`;
    const apiKeys = parse(span!.slice("auth.apiKeys:".length).replace("sha256:…", keyHash));
    const server = resolveConfig(parseConfig({ auth: { apiKeys } }));
    const grants = server.auth.apiKeys[0]!.grants!;
    for (const name of cert.domains) expect(covered(grants, name), name).toBe(true);
  });
});

// ---------------------------------------------------------------- 7: metrics

const ADMIN_KEY = "docs-admin-key-0123456789abcdef-0123";
const ISSUER_KEY = "docs-issuer-key-0123456789abcdef-012";

interface Family {
  type: string;
  labels: Set<string>;
}

/** Metric families of a Prometheus text exposition: declared type and every label seen on a sample. */
function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, { type: m[2]!, labels: new Set() });
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line) continue;
    const name = /^[A-Za-z_:][\w:]*/.exec(line)![0];
    const family =
      out.get(name) ??
      out.get(name.replace(/_(bucket|sum|count)$/, "")) ??
      out.get(name.replace(/_total$/, ""));
    for (const l of (/\{(.*)\}/.exec(line)?.[1] ?? "").matchAll(/(\w+)="/g)) family?.labels.add(l[1]!);
  }
  return out;
}

describe("docs/metrics.md", () => {
  let server: DocServer;
  let scrape: string;
  beforeAll(async () => {
    const block = certfleetBlock(page(METRICS));
    const env = envFor(block.text);
    const prepared = await prepareDocConfig(block.docs[0] as Record<string, unknown>, {
      env,
      apiKeys: [
        { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
        { name: "issuer", key: ISSUER_KEY, grants: ["*.metrics.example.com"] },
      ],
    });
    server = await startDocServer(prepared);
    const issued = await server.post(
      "/api/certificate",
      { domain: "web.metrics.example.com" },
      { authorization: `APIKey ${ISSUER_KEY}` },
    );
    expect(issued.status, issued.text).toBe(200);
    const admin = await server.get("/metrics", { authorization: `APIKey ${ADMIN_KEY}` });
    expect(admin.status).toBe(200);
    scrape = admin.text;
    // the scrape token from the doc's block works too
    const token = Object.values(env)[0]!;
    expect((await server.get("/metrics", { authorization: `Bearer ${token}` })).status).toBe(200);
  });
  afterAll(async () => server?.stop());

  it("every series in the table is scraped, with its type and labels", () => {
    const markdown = page(METRICS).markdown;
    const rows = [...markdown.matchAll(/^\| `(certfleet_[a-z_]+)` \| (\w+) \| ([^|]*) \|/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(7);
    const scraped = families(scrape);
    for (const [, name, type, labelCell] of rows) {
      const family = scraped.get(name!);
      expect(family, name).toBeDefined();
      expect(family!.type, name).toBe(type);
      // per-certificate families (¹) have no samples while every certificate is healthy
      if (new RegExp(`^\\| \`${name}\` \\|.*¹ \\|$`, "m").test(markdown)) continue;
      const labels = [...labelCell!.matchAll(/`(\w+)`/g)].map((m) => m[1]!);
      expect(
        labels.filter((l) => !family!.labels.has(l)),
        name,
      ).toEqual([]);
    }
    // the wildcard row: Node's process metrics under their standard names
    expect([...scraped.keys()].some((n) => n.startsWith("process_"))).toBe(true);
    expect([...scraped.keys()].some((n) => n.startsWith("nodejs_"))).toBe(true);
  });

  it("every metric name the page uses (alert rules included) exists", () => {
    const scraped = families(scrape);
    const used = new Set(
      [...page(METRICS).markdown.matchAll(/\b(certfleet_[a-z_]+)\b(?!\*)/g)].map((m) => m[1]!),
    );
    const missing = [...used].filter((n) => !n.endsWith("_") && !scraped.has(n));
    expect(missing).toEqual([]);
    const rules = page(METRICS).yaml.filter((b) => b.kind === "prometheus-rules");
    expect(rules.length).toBe(1);
    for (const rule of (rules[0]!.docs[0] as any).groups.flatMap((g: any) => g.rules))
      expect(rule.expr, rule.alert).toMatch(/certfleet_/);
  });

  it("the configuration keys and variables the page names exist", async () => {
    const markdown = page(METRICS).markdown;
    const metricsKeys = Object.keys(objectShape(configSchema.shape.metrics)!);
    const keys = [...markdown.matchAll(/(?<![\w/.-])metrics\.([A-Za-z_]+)/g)].map((m) => m[1]!);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !metricsKeys.includes(k))).toEqual([]);

    const dir = await mkdtemp(join(tmpdir(), "cf-docs-env-"));
    try {
      const token = "doc-token-0123456789abcdef";
      await writeFile(join(dir, "token"), token + "\n");
      const variables = new Set([...markdown.matchAll(/\bCERTFLEET_[A-Z0-9_]+/g)].map((m) => m[0]));
      for (const name of variables) {
        const env = { [name]: name.endsWith("_FILE") ? join(dir, "token") : token };
        expect(() => parseConfig({}, env), name).not.toThrow();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
