// Benchmark (issue 15): 100 distinct new names requested at once from `certfleet serve` (embedded CA,
// SQLite, its default workers — the available cores) against the same 100-name batch requested one
// after the other, each request POST /api/certificate for one new name (the server makes the key,
// the certificate and the records). Rounds alternate the two sides with fresh names. Prints each side's
// median wall time, the server CPU per certificate, and `ratio=` (at once / sequential; goal <= 0.2),
// plus the bound: with C cores the batch cannot finish faster than (server CPU per certificate x N) / C
// — when "at once" sits near that figure, the CPU of issuing is what bounds it, not waiting.
//   npm run build && node bench/names-100.js [--names 100] [--rounds 3] [--workers N] [--profile DIR]
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { startServe, treeCpuMs } from "./lib/serve.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const NAMES = arg("names", 100);
const ROUNDS = arg("rounds", 3);
const WORKERS = arg("workers", availableParallelism());
const CORES = availableParallelism();
/** --profile DIR: certfleet's processes write V8 CPU profiles there (bench/profile-summary.js reads them). */
const PROFILE_DIR = process.argv.includes("--profile")
  ? process.argv[process.argv.indexOf("--profile") + 1]
  : undefined;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs, d = 0) => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;

const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-names-"));
let cf;
try {
  cf = await startServe({ dir, workers: WORKERS, profileDir: PROFILE_DIR });
  const dispatcher = new Agent({ connections: NAMES, connect: { ca: cf.caPem } });
  let errors = 0;
  const obtain = async (domain) => {
    const res = await request(`${cf.url}/api/certificate`, {
      method: "POST",
      dispatcher,
      headers: { authorization: `APIKey ${cf.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ domain }),
    });
    const body = await res.body.json();
    if (res.statusCode !== 200 || body.cached !== false) {
      if (++errors === 1) console.error(`${domain}: ${res.statusCode} ${JSON.stringify(body).slice(0, 200)}`);
    }
  };
  let batch = 0;
  const names = () => {
    batch += 1;
    return Array.from({ length: NAMES }, (_, i) => `n${i}.b${batch}.names.bench.test`);
  };
  const sides = {
    sequential: async (ns) => {
      for (const n of ns) await obtain(n);
    },
    atOnce: async (ns) => {
      await Promise.all(ns.map(obtain));
    },
  };
  async function run(side) {
    const ns = names();
    const cpu = treeCpuMs(cf.child.pid);
    const started = process.hrtime.bigint();
    await sides[side](ns);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    return { ms, cpuPerCert: (treeCpuMs(cf.child.pid) - cpu) / NAMES };
  }

  // warm-up: connections, JIT, the CA's keys loaded
  await Promise.all(Array.from({ length: 8 }, (_, i) => obtain(`warm${i}.names.bench.test`)));
  const results = { sequential: [], atOnce: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? ["atOnce", "sequential"] : ["sequential", "atOnce"])
      results[side].push(await run(side));
  }
  await dispatcher.close();

  console.log(
    `${NAMES} new names on the embedded CA: at once vs one after another, ${ROUNDS} rounds, ` +
      `certfleet workers ${WORKERS}, cores ${CORES}, errors ${errors}`,
  );
  for (const side of ["sequential", "atOnce"]) {
    const ms = results[side].map((r) => r.ms);
    const cpu = results[side].map((r) => r.cpuPerCert);
    console.log(
      `  ${side.padEnd(10)} median ${median(ms).toFixed(0).padStart(6)} ms (spread ${spread(ms)}), ` +
        `${(median(ms) / NAMES).toFixed(1)} ms/certificate, server CPU ${median(cpu).toFixed(1)} ms/certificate`,
    );
  }
  const floor = (median(results.atOnce.map((r) => r.cpuPerCert)) * NAMES) / CORES;
  console.log(
    `  bound: server CPU x ${NAMES} / ${CORES} cores = ${floor.toFixed(0)} ms; at once took ` +
      `${((100 * median(results.atOnce.map((r) => r.ms))) / floor).toFixed(0)}% of that`,
  );
  const ratios = results.atOnce.map((r, i) => r.ms / results.sequential[i].ms);
  console.log(
    `ratio=${median(ratios).toFixed(2)} names-100 wall time at once/sequential (per-round spread ${spread(ratios, 2)}; goal <= 0.2)`,
  );
  if (errors > 0) process.exitCode = 1;
} finally {
  await cf?.stop();
  await rm(dir, { recursive: true, force: true });
}
