import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import type { KeyType } from "../../src/core/key-types.js";
import { systemClock } from "../../src/core/clock.js";
import { createLogger, silentLogger, type Logger } from "../../src/core/logger.js";
import type { ChallengeTokenStore, KeyValueStore } from "../../src/storage/storage.js";
import type { ChallengeSolver, SolverChallenge } from "../../src/acme-client/challenge-solver.js";
import {
  createAcmeIssuer,
  type AcmeIssuer,
  type AcmeIssuerOptions,
} from "../../src/acme-client/acme-issuer.js";
import { dns01TxtValue } from "../../src/dns/dns01-solver.js";
import type { ChallTestSrv } from "../harness/pebble.js";

export type TestStore = Pick<KeyValueStore, "getValue" | "putValue"> &
  ChallengeTokenStore & {
    values: Map<string, string>;
    tokens: Map<string, string>;
    /** Every token ever stored, in order. */
    tokenHistory: string[];
  };

/** A Map-backed fake of the storage roles (kv, challenge tokens) the ACME issuer and HTTP-01 solver use. */
export function createTestStore(): TestStore {
  const values = new Map<string, string>();
  const tokens = new Map<string, string>();
  const tokenHistory: string[] = [];
  return {
    values,
    tokens,
    tokenHistory,
    async getValue(namespace, key) {
      return values.get(`${namespace}|${key}`);
    },
    async putValue(namespace, key, value, options) {
      const k = `${namespace}|${key}`;
      const existing = values.get(k);
      if (options?.ifAbsent && existing !== undefined) return existing;
      values.set(k, value);
      return value;
    },
    async putChallengeToken(token, keyAuthorization) {
      tokens.set(token, keyAuthorization);
      tokenHistory.push(token);
    },
    async getChallengeToken(token) {
      return tokens.get(token);
    },
    async deleteChallengeToken(token) {
      tokens.delete(token);
    },
  };
}

export interface ChallengeResponder {
  port: number;
  /** token → number of requests the CA made for it. */
  hits: Map<string, number>;
  stop(): Promise<void>;
}

/** A loopback HTTP server answering /.well-known/acme-challenge/<token> from the store. */
export async function startChallengeResponder(
  store: Pick<ChallengeTokenStore, "getChallengeToken">,
): Promise<ChallengeResponder> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const match = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "");
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const token = match[1]!;
    hits.set(token, (hits.get(token) ?? 0) + 1);
    void store.getChallengeToken(token).then((value) => {
      if (value === undefined) res.writeHead(404).end();
      else res.writeHead(200, { "content-type": "application/octet-stream" }).end(value);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** DNS-01 through pebble-challtestsrv's management API. */
export function createChallTestDnsSolver(
  dns: ChallTestSrv,
): ChallengeSolver & { cleaned: SolverChallenge[] } {
  const cleaned: SolverChallenge[] = [];
  return {
    type: "dns-01",
    cleaned,
    async present(challenge) {
      await dns.setTxt(`_acme-challenge.${challenge.domain}`, dns01TxtValue(challenge.keyAuthorization));
    },
    async cleanup(challenge) {
      cleaned.push(challenge);
      await dns.clearTxt(`_acme-challenge.${challenge.domain}`);
    },
  };
}

/** Wraps a solver and records every call. */
export function recordingSolver(
  inner: ChallengeSolver,
  hooks: { waitReady?: (c: SolverChallenge, signal: AbortSignal) => Promise<void> } = {},
): ChallengeSolver & { presented: SolverChallenge[]; cleaned: SolverChallenge[] } {
  const presented: SolverChallenge[] = [];
  const cleaned: SolverChallenge[] = [];
  return {
    type: inner.type,
    presented,
    cleaned,
    async present(c, signal) {
      presented.push(c);
      await inner.present(c, signal);
    },
    async waitReady(c, signal) {
      await inner.waitReady?.(c, signal);
      await hooks.waitReady?.(c, signal);
    },
    async cleanup(c) {
      cleaned.push(c);
      await inner.cleanup(c);
    },
  };
}

export async function keyAndCsr(names: string[], keyType: KeyType = "ec256") {
  const keyPem = await generatePrivateKey(keyType);
  return { keyPem, csrPem: await createCsr(keyPem, names), keyType };
}

export function makeIssuer(
  store: Pick<KeyValueStore, "getValue" | "putValue">,
  solvers: ChallengeSolver[],
  options: AcmeIssuerOptions,
  id = "test-acme",
  logger: Logger = silentLogger(),
): AcmeIssuer {
  return createAcmeIssuer({
    id,
    store,
    solvers,
    logger,
    clock: systemClock,
    options: { pollIntervalMs: 100, pollTimeoutMs: 20_000, ...options },
  });
}

let counter = 0;
/** A fresh name under `zone` (Pebble keeps authorizations per account; unique names keep tests independent). */
export function uniqueName(zone = "example.test"): string {
  counter += 1;
  return `h${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}.${zone}`;
}

export function signal(ms = 30_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** A debug-level logger that keeps every line it writes, parsed. */
export function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n"))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: "debug", destination }), lines };
}
