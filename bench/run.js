// Benchmark: POST /api/certificate for a cached certificate, against a bare node:https server returning
// the same bytes over the same TLS certificate, both measured in this run with the same load generator.
// Prints requests/s and p99 latency for each, and certfleet's ratio to the baseline.
//   node bench/run.js [--seconds 5] [--connections 16]
// Then runs the other bench/ scripts listed at the end (upstream-issuance.js: ACME issuer vs acme-client).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Pool } from "undici";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const seconds = arg("seconds", 5);
const connections = arg("connections", 16);
const here = new URL(".", import.meta.url).pathname;

async function startChild(mode, fixturePath) {
  const child = spawn(
    process.execPath,
    [join(here, "server-under-test.js"), mode, ...(fixturePath ? [fixturePath] : [])],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { child, info: JSON.parse(line) };
}

async function stopChild(child) {
  child.kill("SIGTERM");
  await once(child, "exit");
}

async function load({ port, ca, headers, body }) {
  const pool = new Pool(`https://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    connect: { ca, servername: "localhost" },
  });
  const latencies = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const warmEnd = Date.now() + 500;
  async function worker() {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      const res = await pool.request({ path: "/api/certificate", method: "POST", headers, body });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) errors++;
      if (Date.now() > warmEnd) latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  const started = Date.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (Date.now() - Math.max(started, warmEnd - 500) - 500) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
    errors,
    n: latencies.length,
  };
}

const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-fixture-"));
try {
  const cf = await startChild("certfleet");
  const headers = { "content-type": "application/json", authorization: `APIKey ${cf.info.apiKey}` };
  const reqBody = JSON.stringify({ domain: "bench.example.com" });
  // issue once, so every measured request is a cache hit; keep the exact bytes for the baseline
  const pool = new Pool(`https://127.0.0.1:${cf.info.port}`, {
    connect: { ca: cf.info.ca, servername: "localhost" },
  });
  await (
    await pool.request({ path: "/api/certificate", method: "POST", headers, body: reqBody })
  ).body.text();
  const cachedBody = await (
    await pool.request({ path: "/api/certificate", method: "POST", headers, body: reqBody })
  ).body.text();
  await pool.close();
  const fixture = join(dir, "fixture.json");
  await writeFile(fixture, JSON.stringify({ body: cachedBody, tls: cf.info.tls }));

  const certfleet = await load({ port: cf.info.port, ca: cf.info.ca, headers, body: reqBody });
  await stopChild(cf.child);
  const base = await startChild("baseline", fixture);
  const baseline = await load({ port: base.info.port, ca: cf.info.ca, headers, body: reqBody });
  await stopChild(base.child);

  const fmt = (r) =>
    `${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   errors ${r.errors}`;
  console.log(
    `POST /api/certificate (cached), ${connections} connections, ${seconds} s each, response ${cachedBody.length} bytes`,
  );
  console.log(`baseline node:https  ${fmt(baseline)}`);
  console.log(`certfleet            ${fmt(certfleet)}`);
  console.log(
    `ratio certfleet/baseline: throughput ${(certfleet.rps / baseline.rps).toFixed(2)}x, p99 ${(certfleet.p99 / baseline.p99).toFixed(2)}x`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}

// The other benchmarks, one child process each (they print their own `ratio=` lines).
for (const script of ["upstream-issuance.js"]) {
  console.log("");
  const child = spawn(process.execPath, [join(here, script)], { stdio: "inherit" });
  const [code] = await once(child, "exit");
  if (code !== 0) process.exitCode = 1;
}
