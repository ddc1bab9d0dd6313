import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startCertfleet } from "../harness/certfleet-process.js";
import { messageLines, runToExit } from "./serve-process.js";

/**
 * Every start-up failure an operator can fix is one line naming the cause and the setting to change,
 * and no stack trace unless --debug. Each case runs the built `certfleet serve` to its exit.
 */
const NOBODY = 65534;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "certfleet-startup-"));
  await chmod(root, 0o755);
});
afterAll(async () => rm(root, { recursive: true, force: true }));

async function configDir(name: string, config: Record<string, unknown>): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "certfleet.yaml"),
    stringify({ server: { bind: "127.0.0.1", port: 0 }, logging: { level: "warn" }, ...config }),
  );
  return dir;
}

async function serveFails(dir: string, extra: { uid?: number; args?: string[] } = {}) {
  const result = await runToExit(["serve", "--config", join(dir, "certfleet.yaml"), ...(extra.args ?? [])], {
    cwd: dir,
    uid: extra.uid,
  });
  expect(result.code, result.stderr).toBe(1);
  expect(result.stdout).not.toMatch(/listening on/);
  return { ...result, lines: messageLines(result.stderr) };
}

function expectOneLine(lines: string[], setting: string): string {
  expect(lines, lines.join("\n")).toHaveLength(1);
  const line = lines[0]!;
  expect(line).toMatch(/^certfleet: /);
  expect(line).toContain(setting);
  expect(line).not.toMatch(/\n\s+at /);
  return line;
}

function freePortHolder(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    );
  });
}

describe("start-up errors", () => {
  it("port in use names server.port", async () => {
    const { server, port } = await freePortHolder();
    try {
      const dir = await configDir("in-use", { server: { bind: "127.0.0.1", port }, dataDir: "./data" });
      const { lines } = await serveFails(dir);
      const line = expectOneLine(lines, "server.port");
      expect(line).toContain(`127.0.0.1:${port}`);
      expect(line).toMatch(/already in use/);
    } finally {
      server.close();
    }
  });

  it("a privileged HTTP-01 port names server.http01.port and server.http01.enabled", async () => {
    const dir = await configDir("privileged", {
      dataDir: "./data",
      server: { bind: "127.0.0.1", port: 0, http01: { enabled: true, bind: "127.0.0.1", port: 80 } },
    });
    await chown(dir, NOBODY, NOBODY);
    const { lines } = await serveFails(dir, { uid: NOBODY });
    const line = expectOneLine(lines, "server.http01.port");
    expect(line).toContain("server.http01.enabled");
    expect(line).toContain("127.0.0.1:80");
    expect(line).toMatch(/CAP_NET_BIND_SERVICE/);
  });

  it("a data dir that is a file names dataDir", async () => {
    const dir = await configDir("file-data", { dataDir: "./data" });
    await writeFile(join(dir, "data"), "not a directory\n");
    const { lines } = await serveFails(dir);
    const line = expectOneLine(lines, "dataDir");
    expect(line).toContain(join(dir, "data"));
    expect(line).toMatch(/not a directory/);
  });

  it("a data dir this user cannot use names dataDir", async () => {
    const dir = await configDir("unreadable-data", { dataDir: "./data" });
    await mkdir(join(dir, "data"), { mode: 0o700 }); // root's; the server runs as nobody
    const { lines } = await serveFails(dir, { uid: NOBODY });
    const line = expectOneLine(lines, "dataDir");
    expect(line).toMatch(/permission denied/);
  });

  it("PostgreSQL unreachable: the driver's reason and database.url without its password", async () => {
    const { server, port } = await freePortHolder();
    server.close(); // nothing listens there now
    const dir = await configDir("pg-down", {
      dataDir: "./data",
      database: { url: `postgres://certfleet:s3cret-pw@127.0.0.1:${port}/test` },
    });
    const { lines, stderr } = await serveFails(dir);
    const line = expectOneLine(lines, "database.url");
    expect(line).toMatch(/ECONNREFUSED/);
    expect(line).toContain(`postgres://certfleet:***@127.0.0.1:${port}/test`);
    expect(stderr).not.toContain("s3cret-pw");
  });

  it("PostgreSQL database missing: the server's reason and database.url", async () => {
    const dir = await configDir("pg-missing", {
      dataDir: "./data",
      database: { url: "postgres://postgres:pw-not-needed@127.0.0.1:5432/certfleet_no_such_database" },
    });
    const { lines, stderr } = await serveFails(dir);
    const line = expectOneLine(lines, "database.url");
    expect(line).toMatch(/database "certfleet_no_such_database" does not exist/);
    expect(stderr).not.toContain("pw-not-needed");
  });

  it("a master key that does not decrypt the store names the key file and the data dir", async () => {
    const dir = join(root, "wrong-key");
    await mkdir(dir);
    const first = await startCertfleet({ dataDir: dir, config: { logging: { level: "warn" } } });
    await first.stop();
    const keyFile = join(dir, "data", "master.key");
    const original = await readFile(keyFile);
    await writeFile(keyFile, randomBytes(32));
    const { lines } = await serveFails(dir);
    const line = expectOneLine(lines, "database.encryptionKeyFile");
    expect(line).toContain(keyFile);
    expect(line).toContain(join(dir, "data"));
    expect(line).toMatch(/does not decrypt/);

    // --debug adds the stack trace; the first line stays the same
    const debug = await serveFails(dir, { args: ["--debug"] });
    expect(debug.lines[0]).toBe(line);
    expect(debug.stderr).toMatch(/\n\s+at /);

    // and with the right key back, it starts (nothing was changed by the failed starts)
    await writeFile(keyFile, original);
    const again = await startCertfleet({ dataDir: dir, config: { logging: { level: "warn" } } });
    expect(again.caPem).toBe(first.caPem);
    await again.stop();
  });
});
