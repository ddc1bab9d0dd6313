import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAcmeServer } from "../../src/acme-server/index.js";
import { systemClock } from "../../src/core/clock.js";
import { createLogger } from "../../src/core/logger.js";
import { buildApp } from "../../src/server/app.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { Storage } from "../../src/storage/storage.js";

/**
 * The server's edge, spoken to over raw sockets (Node's and undici's clients refuse to send most of
 * this): timeouts cut off a client that stalls, and every request refused before routing gets
 * certfleet's error shape — or, under /acme, an RFC 8555 problem document with a Replay-Nonce.
 */
let app: FastifyInstance;
let storage: Storage;
let dir: string;
let port: number;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "certfleet-edge-"));
  const logStream = new PassThrough();
  logStream.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n").filter(Boolean))
      logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = createLogger({ level: "debug", destination: logStream });
  storage = createStorage({
    url: `sqlite:${join(dir, "certfleet.db")}`,
    encryptionKey: randomBytes(32),
  });
  await storage.migrate();
  const acme = createAcmeServer({
    config: { profiles: [{ name: "default", mode: "eab" }] },
    acme: storage.acme,
    kv: storage.kv,
    identities: storage.identities,
    locks: storage.locks,
    // no certificate is issued here: the issuer only has to exist
    issuers: { get: (id) => (id === "embedded" ? ({ id } as never) : undefined) },
    logger,
    clock: systemClock,
  });
  const unused = () => {
    throw new Error("not called");
  };
  app = await buildApp({
    logger,
    storage,
    manager: { obtain: unused, renew: unused, renewDue: unused, revoke: unused },
    authenticate: unused,
    authorizeNames: unused,
    audit: Object.assign(async () => undefined, {
      flush: async () => undefined,
      committed: async () => undefined,
    }),
    bodyLimit: 64 * 1024,
    trustProxy: [],
    timeouts: { request: 1_500, headers: 1_000, keepAlive: 5_000, connection: 20_000 },
    edgeDialects: [acme.edgeDialect],
    plugins: [
      acme.plugin,
      async (scope) => {
        // a route that reads its body, for the client that gives up half-way through sending it
        scope.post("/api/test-echo", async (request) => ({ length: String(request.body).length }));
      },
    ],
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  port = (app.server.address() as { port: number }).port;
}, 30_000);
afterAll(async () => {
  await app?.close();
  await storage?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: () => Record<string, unknown>;
}

/** Write `chunks` to a fresh connection and read until the server closes it (bounded by 10 s). */
function raw(chunks: (string | Buffer)[], opts: { keepOpen?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer; got ${Buffer.concat(received).toString("latin1").slice(0, 200)}`));
    }, 10_000);
    socket.on("data", (d) => received.push(d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(guard);
      resolve(parse(Buffer.concat(received).toString("latin1")));
    });
    socket.on("connect", () => {
      for (const c of chunks) socket.write(c);
      if (!opts.keepOpen) socket.end();
    });
  });
}

function parse(text: string): RawResponse {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = rest.join("\r\n\r\n");
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body,
    json: () => JSON.parse(body) as Record<string, unknown>,
  };
}

function apiShape(res: RawResponse, status: number, code: string): void {
  expect(res.status, res.body).toBe(status);
  expect(res.headers["content-type"]).toContain("application/json");
  const body = res.json() as { error: { code: string; message: string }; requestId: string };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.requestId).toMatch(/\S/);
}

function acmeShape(res: RawResponse, status: number): void {
  expect(res.status, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.headers["replay-nonce"]).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  const body = res.json();
  expect(body.type).toBe("urn:ietf:params:acme:error:malformed");
  expect(body.status).toBe(status);
}

describe("timeouts", () => {
  test("headers, then a stalled body: cut off with 408 in the API's shape", async () => {
    const res = await raw(
      [
        "POST /api/test-echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
      ],
      { keepOpen: true },
    );
    apiShape(res, 408, "request_timeout");
  });

  test("half the headers, then nothing: cut off with 408", async () => {
    const res = await raw(["GET /healthz HTTP/1.1\r\nHost: x\r\n"], { keepOpen: true });
    apiShape(res, 408, "request_timeout");
  });

  test("a stalled body under /acme is an ACME problem with a nonce", async () => {
    const res = await raw(
      [
        "POST /acme/default/new-order HTTP/1.1\r\nHost: x\r\nContent-Type: application/jose+json\r\nContent-Length: 100\r\n\r\n{",
      ],
      { keepOpen: true },
    );
    acmeShape(res, 408);
  });
});

describe("requests refused before routing", () => {
  const longId = "a".repeat(3000);

  test("bad percent-encoding", async () => {
    apiShape(await raw(["GET /api/certificate/%zz%ff HTTP/1.1\r\nHost: x\r\n\r\n"]), 400, "url_invalid");
    acmeShape(await raw(["GET /acme/default/cert/%zz%ff HTTP/1.1\r\nHost: x\r\n\r\n"]), 400);
  });

  test("an over-long URL parameter", async () => {
    acmeShape(await raw([`POST /acme/default/cert/${longId} HTTP/1.1\r\nHost: x\r\n\r\n`]), 414);
    acmeShape(await raw([`GET /acme/default/order/${longId} HTTP/1.1\r\nHost: x\r\n\r\n`]), 414);
  });

  test("CR, LF or NUL inside a header", async () => {
    apiShape(await raw(["GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"]), 400, "request_invalid");
    apiShape(await raw(["GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"]), 400, "request_invalid");
    acmeShape(await raw(["GET /acme/directory HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"]), 400);
  });

  test("duplicate Content-Length", async () => {
    apiShape(
      await raw([
        "POST /api/test-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
      ]),
      400,
      "request_invalid",
    );
    acmeShape(
      await raw([
        "POST /acme/default/new-order HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
      ]),
      400,
    );
  });

  test("an unknown method", async () => {
    apiShape(await raw(["BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]), 501, "method_not_implemented");
    acmeShape(await raw(["BREW /acme/directory HTTP/1.1\r\nHost: x\r\n\r\n"]), 501);
  });

  test("headers too large: 431", async () => {
    const big = `X-Big: ${"b".repeat(20_000)}\r\n`;
    apiShape(await raw([`GET /healthz HTTP/1.1\r\nHost: x\r\n${big}\r\n`]), 431, "headers_too_large");
    acmeShape(await raw([`GET /acme/directory HTTP/1.1\r\nHost: x\r\n${big}\r\n`]), 431);
  });
});

test("a client that gives up half-way through its body is logged as an aborted request, not an error", async () => {
  const before = logLines.length;
  await new Promise<void>((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        'POST /api/test-echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a":',
      );
      setTimeout(() => socket.destroy(), 100);
    });
    socket.on("close", () => resolve());
  });
  // the server notices the reset on its own schedule: wait until it has logged the request
  for (
    let i = 0;
    i < 100 && !logLines.slice(before).some((l) => l.msg === "request aborted by the client");
    i++
  )
    await new Promise((r) => setTimeout(r, 50));
  const lines = logLines.slice(before);
  expect(lines.map((l) => l.msg)).toContain("request aborted by the client");
  const aborted = lines.find((l) => l.msg === "request aborted by the client")!;
  expect(aborted.level).toBe(30); // info
  expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
});
