import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";

/**
 * deploy/docker/Dockerfile cannot be built here (no registry to pull the base image from), so it is
 * parsed and held to the rules in docs/operations.md; its HEALTHCHECK script runs against a real server.
 */
const run = promisify(execFile);
const REPO = new URL("../../", import.meta.url).pathname;
const DOCKERFILE = join(REPO, "deploy/docker/Dockerfile");

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  steps: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), grouped into stages by FROM. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw)) continue; // comments, also between continuation lines
    const line = raw.replace(/\s+$/, "");
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    if (full !== "") logical.push(full);
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, rest] = /^(\S+)\s+([\s\S]*)$/.exec(line) ?? [];
    const upper = op!.toUpperCase();
    if (upper === "FROM") {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest!.trim()) ?? [];
      stages.push({
        from: image!.replace(/\$\{(\w+)\}/g, (_, v: string) => args[v] ?? ""),
        name,
        steps: [],
      });
    } else if (upper === "ARG" && stages.length === 0) {
      const [k, v = ""] = rest!.split("=");
      args[k!.trim()] = v.trim();
    } else {
      expect(stages.length, `${upper} before FROM`).toBeGreaterThan(0);
      stages.at(-1)!.steps.push({ op: upper, args: rest!.trim() });
    }
  }
  return { args, stages };
}

const BUILD_TOOLS = /\b(apt-get|apt|apk|gcc|g\+\+|make|python3?|build-essential|node-gyp)\b/;

describe("Dockerfile", () => {
  let stages: Stage[];
  let final: Stage;
  beforeAll(async () => {
    ({ stages } = parseDockerfile(await readFile(DOCKERFILE, "utf8")));
    final = stages.at(-1)!;
  });

  it("is multi-stage on a Node 20 slim base", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.from).toMatch(/^node:20(\.\d+)*-[a-z]+-slim$|^node:20(\.\d+)*-slim$/);
  });

  it("installs production dependencies with npm ci --omit=dev and builds the native addon where the toolchain is", () => {
    const deps = stages.find((s) => s.steps.some((i) => i.op === "RUN" && /npm ci --omit=dev/.test(i.args)));
    expect(deps).toBeDefined();
    expect(deps).not.toBe(final);
    const runs = deps!.steps.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs.join("\n")).toMatch(/apt-get install[^\n]*\bg\+\+/);
    expect(runs.join("\n")).toMatch(/npm rebuild better-sqlite3/);
    // the final stage takes node_modules from that stage, never from a stage with dev dependencies
    const copy = final.steps.find((i) => i.op === "COPY" && /node_modules/.test(i.args));
    expect(copy?.args).toMatch(new RegExp(`--from=${deps!.name}\\b`));
  });

  it("the final stage has no build tools, runs unprivileged, keeps its state in /data and checks /healthz", () => {
    for (const step of final.steps.filter((i) => i.op === "RUN"))
      expect(step.args, "a RUN in the final stage").not.toMatch(BUILD_TOOLS);
    const user = final.steps.filter((i) => i.op === "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(user!.split(":")[0]).not.toMatch(/^(root|0)$/);
    expect(final.steps.find((i) => i.op === "VOLUME")?.args).toMatch(/"\/data"/);
    expect(final.steps.find((i) => i.op === "ENV")?.args).toMatch(/CERTFLEET_DATA_DIR=\/data/);
    const health = final.steps.find((i) => i.op === "HEALTHCHECK")?.args;
    expect(health).toMatch(/CMD \["node", "\/app\/deploy\/docker\/healthcheck\.mjs"\]/);
    expect(final.steps.find((i) => i.op === "ENTRYPOINT")?.args).toBe('["node", "/app/bin/certfleet.js"]');
  });

  it("copies only files that exist and that .dockerignore lets through", async () => {
    const ignored = (await readFile(join(REPO, ".dockerignore"), "utf8"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const stage of stages)
      for (const step of stage.steps.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
        const sources = step.args.split(/\s+/).slice(0, -1);
        for (const source of sources) {
          expect(existsSync(join(REPO, source)), source).toBe(true);
          expect(ignored, source).not.toContain(source.split("/")[0]);
        }
      }
    // never local state or secrets in the context
    expect(ignored).toEqual(expect.arrayContaining(["node_modules", "data", "*.key", ".git"]));
  });
});

describe("the HEALTHCHECK script", () => {
  let server: CertfleetProcess;
  beforeAll(async () => {
    server = await startCertfleet();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const healthcheck = (env: Record<string, string>) =>
    run(process.execPath, [join(REPO, "deploy/docker/healthcheck.mjs")], {
      env: { PATH: process.env.PATH ?? "", ...env },
      timeout: 20_000,
    }).then(
      () => 0,
      (e: { code: number }) => e.code,
    );

  it("exits 0 while the server answers /healthz and 1 when nothing listens", async () => {
    const port = new URL(server.url).port;
    expect(await healthcheck({ CERTFLEET_SERVER__PORT: port })).toBe(0);
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    expect(await healthcheck({ CERTFLEET_SERVER__PORT: String(closed) })).toBe(1);
    // a 404 is not healthy
    expect(await healthcheck({ HEALTHCHECK_URL: `https://127.0.0.1:${port}/nothing-here` })).toBe(1);
    // it never probes another host
    expect(await healthcheck({ HEALTHCHECK_URL: `https://192.0.2.1:${port}/healthz` })).toBe(1);
  });
});
