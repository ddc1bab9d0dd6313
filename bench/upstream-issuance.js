// Benchmark (issue 15): upstream issuance through certfleet's ACME issuer against a bare acme-client
// script doing the same orders on the same Pebble (PEBBLE_VA_NOSLEEP=1, nonce rejection 0, no
// authorization reuse). Each round issues N single-name certificates one after the other over HTTP-01;
// rounds alternate between the two sides. Prints each side's median and spread (ms per order) and
// `ratio=` (certfleet / bare acme-client; goal <= 1.3). Key and CSR generation is outside the timing.
// certfleet runs with its default polling and connection settings; the bare script gets acme-client's
// tightest sensible backoff (50 ms first wait), so the baseline is a floor, not a strawman.
//   npm run build && node bench/upstream-issuance.js [--orders 10] [--rounds 5]
import { Agent as HttpsAgent } from "node:https";
import { createServer } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import acme from "acme-client";
import { startPebble } from "./lib/pebble.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ORDERS = arg("orders", 10);
const ROUNDS = arg("rounds", 5);

const { createAcmeIssuer } = await import("../dist/acme-client/acme-issuer.js");
const { createCsr, generatePrivateKey } = await import("../dist/core/keys.js");
const { silentLogger } = await import("../dist/core/logger.js");
const { systemClock } = await import("../dist/core/clock.js");

const stops = [];
const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-upstream-"));
const tokens = new Map();
const responder = createServer((req, res) => {
  const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "");
  const value = m && tokens.get(m[1]);
  if (value === undefined) res.writeHead(404).end();
  else res.writeHead(200).end(value);
});

try {
  await new Promise((resolve) => responder.listen(0, "127.0.0.1", resolve));
  const pebble = await startPebble({ dir, httpPort: responder.address().port });
  stops.push(pebble.stop);
  const { directoryUrl, caPem } = pebble;

  // --- the two sides
  const values = new Map();
  const certfleet = createAcmeIssuer({
    id: "bench",
    store: {
      getValue: async (ns, key) => values.get(`${ns}|${key}`),
      putValue: async (ns, key, value, opts) => {
        const k = `${ns}|${key}`;
        if (opts?.ifAbsent && values.has(k)) return values.get(k);
        values.set(k, value);
        return value;
      },
    },
    solvers: [
      {
        type: "http-01",
        present: async (c) => void tokens.set(c.token, c.keyAuthorization),
        cleanup: async (c) => void tokens.delete(c.token),
      },
    ],
    logger: silentLogger(),
    clock: systemClock,
    options: { directoryUrl, caBundlePem: caPem },
  });

  acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: caPem, keepAlive: true });
  const bare = new acme.Client({
    directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffAttempts: 20,
    backoffMin: 50,
    backoffMax: 2000,
  });
  await bare.createAccount({ termsOfServiceAgreed: true });

  let serial = 0;
  async function prepare() {
    serial += 1;
    const name = `b${process.pid}-${serial}.bench.test`;
    const key = await generatePrivateKey("ec256");
    return { name, csrPem: await createCsr(key, [name]) };
  }

  async function viaCertfleet({ name, csrPem }) {
    await certfleet.issue({ names: [name], csrPem, keyType: "ec256" }, AbortSignal.timeout(60_000));
  }

  async function viaBare({ name, csrPem }) {
    const order = await bare.createOrder({ identifiers: [{ type: "dns", value: name }] });
    const authorizations = await bare.getAuthorizations(order);
    for (const authz of authorizations) {
      const challenge = authz.challenges.find((c) => c.type === "http-01");
      tokens.set(challenge.token, await bare.getChallengeKeyAuthorization(challenge));
      try {
        await bare.completeChallenge(challenge);
        await bare.waitForValidStatus(challenge);
      } finally {
        tokens.delete(challenge.token);
      }
    }
    const finalized = await bare.finalizeOrder(order, csrPem);
    await bare.getCertificate(finalized);
  }

  async function round(side) {
    const work = [];
    for (let i = 0; i < ORDERS; i++) work.push(await prepare());
    const started = process.hrtime.bigint();
    for (const w of work) await side(w);
    return Number(process.hrtime.bigint() - started) / 1e6 / ORDERS;
  }

  // warm both (account registration, first connections, JIT)
  await round(viaCertfleet);
  await round(viaBare);

  const results = { certfleet: [], bare: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ["certfleet", "bare"] : ["bare", "certfleet"];
    for (const side of order) results[side].push(await round(side === "certfleet" ? viaCertfleet : viaBare));
  }
  await certfleet.close();

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const describe = (xs) =>
    `median ${median(xs).toFixed(1)} ms/order, spread ${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)} ms`;
  console.log(`upstream issuance against Pebble: ${ORDERS} orders x ${ROUNDS} rounds per side, alternating`);
  console.log(`bare acme-client   ${describe(results.bare)}`);
  console.log(`certfleet issuer   ${describe(results.certfleet)}`);
  const ratios = results.certfleet.map((c, i) => c / results.bare[i]);
  console.log(
    `ratio=${(median(results.certfleet) / median(results.bare)).toFixed(2)} upstream issuance wall time, certfleet/bare acme-client (goal <= 1.3; per-round ratios ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
  );
} finally {
  for (const stop of stops) stop();
  responder.close();
  await rm(dir, { recursive: true, force: true });
}
