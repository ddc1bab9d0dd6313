// Benchmark (issue 15): certfleet's ACME server against Pebble on this machine, with the same client
// (acme-client, one account per client, concurrency 8 by default). A flow is newOrder → authorizations
// (HTTP-01 answered by this script where the server asks; certfleet's eab profile grants the names at
// once) → finalize → certificate download. `certfleet serve` runs as a real process with its default
// workers (the available cores, --workers to change), SQLite storage and the embedded CA; Pebble with
// no validation sleep. Rounds alternate the two sides; each side's median flows/s and server CPU per
// flow (utime+stime of the server's whole process tree from /proc, over the round) are printed, with
// `ratio=` lines (goals: flows/s >= 5x Pebble, CPU per flow <= 2 ms).
// CSRs are made before the clock starts and reused, so the client's work is the same on both sides.
//   npm run build && node bench/acme-server.js [--seconds 4] [--rounds 3] [--concurrency 8] [--workers N]
//     [--profile DIR]
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import acme from "acme-client";
import { Agent, request } from "undici";
import { startPebble } from "./lib/pebble.js";
import { startServe, treeCpuMs } from "./lib/serve.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg("seconds", 4);
const ROUNDS = arg("rounds", 3);
const CONCURRENCY = arg("concurrency", 8);
const WORKERS = arg("workers", availableParallelism());
/** --profile DIR: certfleet's processes write V8 CPU profiles there (bench/profile-summary.js reads them). */
const PROFILE_DIR = process.argv.includes("--profile")
  ? process.argv[process.argv.indexOf("--profile") + 1]
  : undefined;

const tokens = new Map();
const responder = createServer((req, res) => {
  const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "");
  const value = m && tokens.get(m[1]);
  if (value === undefined) res.writeHead(404).end();
  else res.writeHead(200).end(value);
});

async function eabKey(cf) {
  const dispatcher = new Agent({ connect: { ca: cf.caPem } });
  const res = await request(`${cf.url}/api/acme/eab-keys`, {
    method: "POST",
    dispatcher,
    headers: { authorization: `APIKey ${cf.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ grants: ["*.bench.test"] }),
  });
  const body = await res.body.json();
  await dispatcher.close();
  if (res.statusCode !== 201) throw new Error(`EAB key: ${res.statusCode} ${JSON.stringify(body)}`);
  return { kid: body.kid, hmacKey: body.hmacKey };
}

/** One ACME flow with acme-client; HTTP-01 answered from `tokens` when an authorization is pending. */
async function flow(client, { name, csr }) {
  const order = await client.createOrder({ identifiers: [{ type: "dns", value: name }] });
  for (const authz of await client.getAuthorizations(order)) {
    if (authz.status === "valid") continue;
    const challenge = authz.challenges.find((c) => c.type === "http-01");
    tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      tokens.delete(challenge.token);
    }
  }
  const finalized = await client.finalizeOrder(order, csr);
  const pem = await client.getCertificate(finalized);
  if (!pem.includes("BEGIN CERTIFICATE")) throw new Error("no certificate");
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs, d = 1) => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;

const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-acme-"));
let pebble;
let cf;
try {
  await new Promise((resolve) => responder.listen(0, "127.0.0.1", resolve));
  pebble = await startPebble({ dir, httpPort: responder.address().port });
  cf = await startServe({
    dir,
    workers: WORKERS,
    profileDir: PROFILE_DIR,
    extra: {
      acmeServer: {
        profiles: [
          { name: "default", mode: "eab", ordersPerHour: 10_000_000, maxPendingAuthorizations: 100_000 },
        ],
      },
    },
  });
  acme.axios.defaults.httpsAgent = new HttpsAgent({
    ca: [pebble.caPem, cf.caPem],
    keepAlive: true,
    servername: "localhost",
  });
  acme.setLogger(() => undefined);

  // the same pool of CSRs for both sides (names under the EAB key's grant)
  const [key] = await acme.crypto.createCsr({ commonName: "x.bench.test" });
  const work = [];
  for (let i = 0; i < 32; i++) {
    const name = `f${i}.bench.test`;
    const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, key);
    work.push({ name, csr });
  }

  const backoff = { backoffAttempts: 50, backoffMin: 20, backoffMax: 500 };
  async function clients(side) {
    return Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        const client = new acme.Client({
          directoryUrl: side === "pebble" ? pebble.directoryUrl : `${cf.url}/acme/directory`,
          accountKey: await acme.crypto.createPrivateEcdsaKey(),
          ...(side === "certfleet" ? { externalAccountBinding: await eabKey(cf) } : {}),
          ...backoff,
        });
        await client.createAccount({ termsOfServiceAgreed: true });
        return client;
      }),
    );
  }
  const sides = {
    pebble: { clients: await clients("pebble"), pid: pebble.pid },
    certfleet: { clients: await clients("certfleet"), pid: cf.child.pid },
  };

  async function round(side, seconds) {
    const { clients: cs, pid } = sides[side];
    let flows = 0;
    let errors = 0;
    let next = 0;
    const cpuBefore = treeCpuMs(pid);
    const started = process.hrtime.bigint();
    const end = Date.now() + seconds * 1000;
    await Promise.all(
      cs.map(async (client) => {
        while (Date.now() < end) {
          try {
            await flow(client, work[next++ % work.length]);
            flows++;
          } catch (e) {
            if (++errors === 1) console.error(`${side}: ${e.message}`);
          }
        }
      }),
    );
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = treeCpuMs(pid) - cpuBefore;
    return { rate: flows / wall, cpuPerFlow: cpu / Math.max(flows, 1), errors };
  }

  await round("pebble", 1);
  await round("certfleet", 1);
  const results = { pebble: [], certfleet: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? ["certfleet", "pebble"] : ["pebble", "certfleet"])
      results[side].push(await round(side, SECONDS));
  }
  const errors = [...results.pebble, ...results.certfleet].reduce((a, r) => a + r.errors, 0);
  console.log(
    `ACME server flows (newOrder→authz→finalize→cert) at concurrency ${CONCURRENCY}, ${ROUNDS} rounds x ${SECONDS} s per side, ` +
      `certfleet workers ${WORKERS}, errors ${errors}`,
  );
  for (const side of ["pebble", "certfleet"]) {
    const rates = results[side].map((r) => r.rate);
    const cpus = results[side].map((r) => r.cpuPerFlow);
    console.log(
      `  ${side.padEnd(9)} median ${median(rates).toFixed(1).padStart(6)} flows/s (spread ${spread(rates)}), ` +
        `server CPU ${median(cpus).toFixed(2)} ms/flow (spread ${spread(cpus, 2)})`,
    );
  }
  const ratios = results.certfleet.map((r, i) => r.rate / results.pebble[i].rate);
  console.log(
    `ratio=${median(ratios).toFixed(2)} acme-server flows/s certfleet/Pebble (per-round spread ${spread(ratios, 2)}; goal >= 5)`,
  );
  const cpuRatios = results.certfleet.map((r, i) => r.cpuPerFlow / results.pebble[i].cpuPerFlow);
  console.log(
    `ratio=${median(cpuRatios).toFixed(2)} acme-server CPU per flow certfleet/Pebble ` +
      `(certfleet ${median(results.certfleet.map((r) => r.cpuPerFlow)).toFixed(2)} ms/flow; goal <= 2 ms)`,
  );
  if (errors > 0) process.exitCode = 1;
} finally {
  await cf?.stop();
  pebble?.stop();
  responder.close();
  await rm(dir, { recursive: true, force: true });
}
