// Benchmark (issue 15): cached POST /api/certificate against a bare node:https server returning the same
// bytes over the same TLS certificate (ECDSA P-256), with an API key and with an ES256 JWT bearer, on
// SQLite and on PostgreSQL. certfleet is `certfleet serve` with its default workers (the available
// cores; --workers to change), the floor one node:https process. All servers run at once; each round measures the three sides one after the other
// (the order rotates every round) with the same undici load generator, so a busy machine slows every
// side alike. Prints each side's median req/s with its spread, and `ratio=` lines: the median of the
// per-round ratios certfleet/baseline (goals: API key >= 0.80, JWT >= 0.70).
//   npm run build && node bench/cached-api.js [--seconds 2] [--rounds 5] [--connections 16] [--workers N]
//     [--profile DIR]
//   CERTFLEET_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; "off" skips it)
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import pg from "pg";
import { Pool } from "undici";
import { startServe } from "./lib/serve.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg("seconds", 2);
const ROUNDS = arg("rounds", 5);
const CONNECTIONS = arg("connections", 16);
const PG_URL = process.env.CERTFLEET_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const here = new URL(".", import.meta.url).pathname;
const TRUST_DOMAIN = "bench.test";
const WORKERS = arg("workers", availableParallelism());
/** --profile DIR: certfleet's processes write V8 CPU profiles there (bench/profile-summary.js reads them). */
const PROFILE_DIR = process.argv.includes("--profile")
  ? process.argv[process.argv.indexOf("--profile") + 1]
  : undefined;
const run = promisify(execFile);

async function startBaseline(fixturePath) {
  const child = spawn(process.execPath, [join(here, "server-under-test.js"), "baseline", fixturePath], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`the baseline server exited (${code}) before it was ready`);
  });
  const [line] = await Promise.race([once(createInterface({ input: child.stdout }), "line"), exited]);
  return { child, info: JSON.parse(line) };
}

async function stopChild(child) {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  await once(child, "exit");
}

/** Closed-loop load for SECONDS (after 300 ms of warm-up): requests/s and p99, non-200s counted. */
async function load({ port, ca, headers, body, expected }) {
  const pool = new Pool(`https://127.0.0.1:${port}`, {
    connections: CONNECTIONS,
    pipelining: 1,
    connect: { ca, servername: "localhost" },
  });
  const latencies = [];
  let errors = 0;
  const warmEnd = Date.now() + 300;
  const end = warmEnd + SECONDS * 1000;
  async function worker() {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      const res = await pool.request({ path: "/api/certificate", method: "POST", headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 200 || text.length !== expected) errors++;
      const at = Date.now();
      if (at > warmEnd && at <= end) latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / SECONDS, p99: latencies[Math.floor(latencies.length * 0.99)], errors };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

async function postgresSchema() {
  if (PG_URL === "off") return undefined;
  const schema = `certfleet_bench_${process.pid}`;
  const client = new pg.Client({ connectionString: PG_URL });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (e) {
    console.log(`PostgreSQL at ${PG_URL} unreachable (${e.message}); skipping it`);
    return undefined;
  }
  return {
    url: `${PG_URL}?schema=${schema}`,
    drop: async () => {
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    },
  };
}

/** An ECDSA P-256 certificate for 127.0.0.1/localhost, served by both sides (same TLS work). */
async function tlsPair(dir) {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "tls-key.pem"),
    "-out",
    join(dir, "tls-cert.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  return {
    cert: await readFile(join(dir, "tls-cert.pem"), "utf8"),
    key: await readFile(join(dir, "tls-key.pem"), "utf8"),
  };
}

async function benchBackend(label, dir, databaseUrl) {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256", use: "jwt-svid" };
  const bundle = join(dir, `bundle-${label}.json`);
  await writeFile(bundle, JSON.stringify({ keys: [jwk] }));
  const tls = await tlsPair(dir);
  const key = randomBytes(24).toString("base64url");
  const serveDir = join(dir, label);
  await mkdir(serveDir);
  const cf = await startServe({
    dir: serveDir,
    workers: WORKERS,
    profileDir: PROFILE_DIR,
    extra: {
      server: { bind: "127.0.0.1", port: 0, workers: WORKERS, tls: { certPEM: tls.cert, keyPEM: tls.key } },
      ...(databaseUrl ? { database: { url: databaseUrl } } : {}),
      auth: {
        apiKeys: [{ name: "bench", key, grants: ["bench.example.com"] }],
        issuers: [
          {
            kind: "spiffe",
            trustDomain: TRUST_DOMAIN,
            bundleFile: bundle,
            audience: "certfleet",
            algorithms: ["ES256"],
            grantAllNames: true,
          },
        ],
      },
    },
  });
  const port = Number(new URL(cf.url).port);
  const ca = tls.cert;
  let base;
  try {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: "bench" })
      .setSubject(`spiffe://${TRUST_DOMAIN}/bench-agent`)
      .setAudience("certfleet")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(privateKey);
    const body = JSON.stringify({ domain: "bench.example.com" });
    const apiKey = { "content-type": "application/json", authorization: `APIKey ${key}` };
    const jwt = { "content-type": "application/json", authorization: `Bearer ${token}` };
    // issue once, so every measured request is a cache hit; keep the exact bytes for the baseline
    const pool = new Pool(`https://127.0.0.1:${port}`, { connect: { ca, servername: "localhost" } });
    const first = await pool.request({ path: "/api/certificate", method: "POST", headers: apiKey, body });
    if (first.statusCode !== 200)
      throw new Error(`first request: ${first.statusCode} ${await first.body.text()}`);
    await first.body.text();
    const cached = await (
      await pool.request({ path: "/api/certificate", method: "POST", headers: apiKey, body })
    ).body.text();
    const viaJwt = await pool.request({ path: "/api/certificate", method: "POST", headers: jwt, body });
    const jwtText = await viaJwt.body.text();
    await pool.close();
    if (viaJwt.statusCode !== 200) throw new Error(`JWT request: ${viaJwt.statusCode} ${jwtText}`);
    if (!JSON.parse(cached).cached) throw new Error("the second response was not a cache hit");
    const fixture = join(dir, `fixture-${label}.json`);
    await writeFile(fixture, JSON.stringify({ body: cached, tls }));
    base = await startBaseline(fixture);

    const sides = {
      baseline: { port: base.info.port, headers: apiKey },
      apikey: { port, headers: apiKey },
      jwt: { port, headers: jwt },
    };
    const names = Object.keys(sides);
    const results = Object.fromEntries(names.map((n) => [n, []]));
    let errors = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length];
        const r = await load({ ...sides[name], ca, body, expected: cached.length });
        results[name].push(r);
        errors += r.errors;
      }
    }
    const rps = (n) => results[n].map((r) => r.rps);
    const p99 = (n) => results[n].map((r) => r.p99);
    console.log(
      `cached POST /api/certificate on ${label}: certfleet workers ${WORKERS}, ${CONNECTIONS} connections, ${ROUNDS} rounds x ${SECONDS} s per side, ` +
        `response ${cached.length} bytes, errors ${errors}`,
    );
    for (const n of names) {
      console.log(
        `  ${n.padEnd(9)} median ${median(rps(n)).toFixed(0).padStart(6)} req/s (spread ${spread(rps(n))}), ` +
          `p99 median ${median(p99(n)).toFixed(1)} ms`,
      );
    }
    for (const [n, goal] of [
      ["apikey", 0.8],
      ["jwt", 0.7],
    ]) {
      const ratios = results[n].map((r, i) => r.rps / results.baseline[i].rps);
      console.log(
        `ratio=${median(ratios).toFixed(2)} cached-api ${label} ${n} (per-round spread ${spread(ratios)}; goal >= ${goal})`,
      );
    }
    if (errors > 0) process.exitCode = 1;
  } finally {
    await cf.stop();
    if (base) await stopChild(base.child);
  }
}

const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-cached-"));
try {
  await benchBackend("sqlite", dir, undefined);
  const pgSchema = await postgresSchema();
  if (pgSchema) {
    try {
      await benchBackend("postgres", dir, pgSchema.url);
    } finally {
      await pgSchema.drop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
