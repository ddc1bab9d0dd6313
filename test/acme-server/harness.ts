import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import { Agent, request } from "undici";
import { createAcmeServer, type AcmeServer } from "../../src/acme-server/index.js";
import type { AcmeProfileInput } from "../../src/acme-server/config.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { createIssuedKeys, isAcmeAccountKey, recordingIssuedKeys } from "../../src/issuance/issued-keys.js";
import type { Issuer } from "../../src/issuance/issuer.js";
import { installErrorHandler } from "../../src/server/error-handler.js";
import { createStorage } from "../../src/storage/create-storage.js";
import { openSqlDatabase } from "../../src/storage/dialect.js";
import type { Database } from "../../src/storage/schema.js";
import { parseStorageUrl } from "../../src/storage/storage-url.js";
import type { Storage } from "../../src/storage/storage.js";
import { freePort } from "../harness/pebble.js";

/**
 * certfleet's ACME server as the tests run it: the plugin on a Fastify app (with the API's own error
 * handler installed, as in production) over HTTPS on 127.0.0.1, its certificate from the embedded CA,
 * real SQLite storage in a temp directory.
 */
export interface AcmeTestServer {
  /** https://127.0.0.1:<port> */
  baseUrl: string;
  /** This replica's own address (differs from baseUrl when an externalUrl was given). */
  ownUrl: string;
  directoryUrl(profile?: string): string;
  /** The embedded CA's root: trust it for the listener and to verify issued chains. */
  caPem: string;
  /** caPem written to a file (for clients that take a path). */
  caFile: string;
  dir: string;
  ca: EmbeddedCa;
  acme: AcmeServer;
  storage: Storage;
  db: Kysely<Database>;
  app: FastifyInstance;
  agent: Agent;
  stop(): Promise<void>;
}

export interface AcmeTestServerOptions {
  profiles: AcmeProfileInput[];
  /** Issuers besides the embedded CA (id "embedded"). */
  issuers?: Issuer[];
  /** Issuers that need the server's storage (e.g. an ACME client issuer keeping its account there). */
  lateIssuers?: (storage: Storage) => Issuer[];
  dnsResolvers?: string[];
  validationTimeout?: number;
  /** Share a database with another replica (default: SQLite in the temp directory). */
  storage?: { url: string; encryptionKey: Buffer };
  /** The URL clients are told (default: this replica's own address), e.g. a load balancer's. */
  externalUrl?: string;
}

export async function startAcmeTestServer(options: AcmeTestServerOptions): Promise<AcmeTestServer> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-acme-"));
  const target = options.storage ?? {
    url: `sqlite:${join(dir, "certfleet.db")}`,
    encryptionKey: randomBytes(32),
  };
  const storage = createStorage(target);
  await storage.migrate();
  const logger = silentLogger();
  // the tests' own handle on the same database, to look at rows directly
  const db = openSqlDatabase(parseStorageUrl(target.url), logger).db;
  const ca = await createEmbeddedCa({ store: storage.kv, clock: systemClock, logger, options: {} });
  const tls = await ca.issueServerCertificate(["localhost"], ["127.0.0.1"]);
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, ca.rootPem);

  const port = await freePort();
  const ownUrl = `https://127.0.0.1:${port}`;
  const baseUrl = options.externalUrl ?? ownUrl;
  // wired as the composition root does: every CSR's key is noted, no account key is certified
  const guard = {
    issuedKeys: createIssuedKeys(storage.kv),
    isAccountKey: isAcmeAccountKey(
      storage.acme,
      options.profiles.map((p) => p.name ?? "default"),
    ),
  };
  const issuers = new Map<string, Issuer>(
    [ca, ...(options.issuers ?? []), ...(options.lateIssuers?.(storage) ?? [])].map(
      (i) => [i.id, recordingIssuedKeys(i, guard)] as const,
    ),
  );
  const acme = createAcmeServer({
    config: {
      externalUrl: baseUrl,
      profiles: options.profiles,
      dnsResolvers: options.dnsResolvers ?? [],
      ...(options.validationTimeout ? { validationTimeout: options.validationTimeout } : {}),
    },
    acme: storage.acme,
    kv: storage.kv,
    identities: storage.identities,
    locks: storage.locks,
    issuers: { get: (id) => issuers.get(id) },
    audit: (event) => storage.audit.appendAudit(event),
    logger,
    clock: systemClock,
  });
  const app = Fastify({
    https: { key: tls.privateKeyPem, cert: tls.certPem + tls.chainPem },
  }) as unknown as FastifyInstance;
  installErrorHandler(app);
  await app.register(acme.plugin);
  await app.listen({ host: "127.0.0.1", port });
  const agent = new Agent({ connect: { ca: ca.rootPem } });

  return {
    baseUrl,
    ownUrl,
    directoryUrl: (profile) =>
      profile ? `${baseUrl}/acme/${profile}/directory` : `${baseUrl}/acme/directory`,
    caPem: ca.rootPem,
    caFile,
    dir,
    ca,
    acme,
    storage,
    db,
    app,
    agent,
    async stop() {
      await app.close();
      await agent.close();
      await storage.close();
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** GET a URL through the server's trusted agent. */
export async function httpGet(server: AcmeTestServer, url: string) {
  const res = await request(url, { dispatcher: server.agent });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  };
}
