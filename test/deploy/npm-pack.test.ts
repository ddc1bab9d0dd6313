import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The package as users get it: `npm pack`, then the tarball installed
 * into an empty project from the npm registry through the shared cache, and the installed `certfleet`
 * run. better-sqlite3 builds from source here (no prebuilt download), so this takes minutes.
 */
const exec = promisify(execFile);
const REPO = new URL("../../", import.meta.url).pathname;
const MINUTES = 60_000;

/** npm's own warnings ("npm warn …"), and Node's ("(node:123) Warning", "DeprecationWarning"). */
const warnings = (text: string) =>
  text.split("\n").filter((l) => /^npm warn|\(node:\d+\)|Warning:/i.test(l) && !/^npm warn config/.test(l));

describe("npm pack → npm install → certfleet", () => {
  let work: string;
  let tarball: string;
  let installed: string;
  let installOutput = "";

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "certfleet-pack-"));
    await exec("npm", ["pack", "--pack-destination", work], { cwd: REPO, timeout: 10 * MINUTES });
    tarball = join(
      work,
      (await readdir(work)).find((f) => f.endsWith(".tgz"))!,
    );
    installed = join(work, "project");
    await mkdir(installed);
    // A user's project, approving the install scripts certfleet's dependencies need (npm 11).
    await writeFile(
      join(installed, "package.json"),
      JSON.stringify({
        name: "uses-certfleet",
        private: true,
        allowScripts: { "better-sqlite3": true, protobufjs: true },
      }),
    );
    const result = await exec("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], {
      cwd: installed,
      timeout: 25 * MINUTES,
      maxBuffer: 16 * 1024 * 1024,
    });
    installOutput = result.stdout + result.stderr;
  }, 30 * MINUTES);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("installs without warnings (no EBADENGINE on Node 20)", async () => {
    expect(warnings(installOutput)).toEqual([]);
    const { stdout } = await exec("tar", ["tzf", tarball]);
    expect(stdout.split("\n")).toEqual(
      expect.arrayContaining(["package/LICENSE", "package/bin/certfleet.js"]),
    );
  });

  it(
    "runs --help and serves, printing no warnings",
    async () => {
      const bin = join(installed, "node_modules", ".bin", "certfleet");
      const help = await exec(bin, ["--help"], { cwd: installed, timeout: 2 * MINUTES });
      expect(help.stdout).toContain("Usage: certfleet");
      expect(help.stdout).toMatch(/\bserve\b/);
      expect(warnings(help.stderr)).toEqual([]);

      await writeFile(join(work, "certfleet.yaml"), "server: {bind: 127.0.0.1, port: 0}\ndataDir: ./data\n");
      const child = spawn(bin, ["serve", "--config", join(work, "certfleet.yaml")], {
        cwd: work,
        env: { PATH: process.env.PATH ?? "", HOME: work },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      try {
        const deadline = Date.now() + 2 * MINUTES;
        while (!/listening on https:\/\/localhost:(\d+)/.test(out)) {
          if (child.exitCode !== null || Date.now() > deadline)
            throw new Error(`serve did not start:\n${err}\n${out}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(out).toMatch(/API key \(generated now/);
        expect(warnings(out + err)).toEqual([]);
        // better-sqlite3 works: the database and migrations are there
        expect(err).toContain("storage migration applied");
      } finally {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    },
    5 * MINUTES,
  );
});
