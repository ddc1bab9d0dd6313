import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createLogger } from "../../src/core/logger.js";
import { startCertfleet } from "../harness/certfleet-process.js";
import { BIN } from "./serve-process.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "certfleet-ops-"));
});
afterAll(async () => rm(root, { recursive: true, force: true }));

function capture(isTTY: boolean): { stream: NodeJS.WritableStream; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream: Object.assign(stream, { isTTY }), text: () => text };
}

describe("log format", () => {
  it("a terminal gets one readable line per event: ISO time, the level as a word, no JSON", () => {
    const out = capture(true);
    const logger = createLogger({ destination: out.stream });
    logger.info({ names: ["a.example"], token: "secret-token-value" }, "certificate.issued");
    logger.warn("propagation waiting");
    const lines = stripVTControlCharacters(out.text()).trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] INFO: certificate\.issued /);
    expect(lines[0]).toContain('{"names":["a.example"],"token":"[redacted]"}');
    expect(lines[1]).toMatch(/ WARN: propagation waiting$/);
    expect(out.text()).not.toContain("secret-token-value");
  });

  it("anything else gets JSON lines, and logging.format forces either", () => {
    const piped = capture(false);
    createLogger({ destination: piped.stream }).info({ token: "secret-token-value" }, "hello");
    const entry = JSON.parse(piped.text()) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 30, msg: "hello", token: "[redacted]" });

    const forcedJson = capture(true);
    createLogger({ destination: forcedJson.stream, format: "json" }).info("x");
    expect(JSON.parse(forcedJson.text())).toMatchObject({ msg: "x" });

    const forcedPretty = capture(false);
    createLogger({ destination: forcedPretty.stream, format: "pretty" }).error("y");
    expect(forcedPretty.text()).toMatch(/^\[[^\]]+Z\] ERROR: y\n$/);
  });

  it("certfleet serve with logging.format: pretty writes readable lines to a pipe", async () => {
    const dir = join(root, "pretty");
    await mkdir(dir);
    const cf = await startCertfleet({
      dataDir: dir,
      config: { logging: { level: "info", format: "pretty" } },
    });
    await cf.stop();
    const lines = cf.stderr().trim().split("\n");
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line).toMatch(/^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] (INFO|WARN|DEBUG): /);
    expect(cf.stderr()).toMatch(/INFO: shutting down/);
  });
});

describe("the bootstrap API key", () => {
  it("is printed once, when generated, and never again", async () => {
    const dir = join(root, "bootstrap");
    await mkdir(dir);
    const first = await startCertfleet({ dataDir: dir });
    expect(first.stdout()).toContain(first.apiKey!);
    expect(first.stdout()).toMatch(/generated now/);
    await first.stop();

    const second = await startCertfleet({ dataDir: dir });
    try {
      expect(second.apiKey).toBe(first.apiKey); // read from data/api-key by the harness
      expect(second.stdout()).not.toContain(first.apiKey!);
      expect(second.stderr()).not.toContain(first.apiKey!);
      expect(second.stdout()).toMatch(/API key: the one generated at first start, in .*api-key/);
      expect(second.stdout()).toContain('-H "Authorization: APIKey $(cat ');
      const res = await second.post("/api/certificate", { domain: "again.example.internal" });
      expect(res.status).toBe(200);
    } finally {
      await second.stop();
    }
  });
});

/** Start serve from `cwd`, wait until it listens, stop it; returns what it printed. */
async function serveOnceFrom(cwd: string, configPath: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, "serve", "--config", configPath], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: cwd },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise((r) => child.once("exit", r));
  const deadline = Date.now() + 30_000;
  while (!out.includes("listening on")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`serve did not start:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGTERM");
  await exited;
  return out;
}

describe("the data dir", () => {
  it("is relative to the config file, so another working directory never makes a second master key", async () => {
    const base = join(root, "relative");
    const etc = join(base, "etc");
    const elsewhere = join(base, "elsewhere");
    const other = join(base, "other");
    for (const d of [etc, elsewhere, other]) await mkdir(d, { recursive: true });
    const configPath = join(etc, "certfleet.yaml");
    await writeFile(
      configPath,
      stringify({ server: { bind: "127.0.0.1", port: 0 }, dataDir: "./state", logging: { level: "warn" } }),
    );

    const first = await serveOnceFrom(elsewhere, configPath);
    expect(first).toMatch(/generated now/);
    const key = await readFile(join(etc, "state", "master.key"));
    const ca = await readFile(join(etc, "state", "ca.pem"), "utf8");
    expect(await readdir(elsewhere)).toEqual([]);

    const second = await serveOnceFrom(other, configPath);
    expect(second).not.toMatch(/generated now/); // the same data dir, found again
    expect(await readFile(join(etc, "state", "master.key"))).toEqual(key);
    expect(await readFile(join(etc, "state", "ca.pem"), "utf8")).toBe(ca);
    expect(await readdir(other)).toEqual([]);
  });
});
