import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCertfleet, type Certfleet } from "../../../src/composition.js";
import { parseConfig } from "../../../src/config/load.js";
import { resolveConfig } from "../../../src/config/resolve.js";
import { systemClock } from "../../../src/core/clock.js";
import { silentLogger } from "../../../src/core/logger.js";

/**
 * The real certfleet server, in-process (composition root), on 127.0.0.1:<free port> with its embedded
 * CA, for the agent's end-to-end tests. An admin API key creates identity records through the admin
 * API; `fleetKey` is an ordinary API key granted every name under example.com.
 */
export const ADMIN_KEY = "agent-test-admin-key-0123456789abcdef";
export const FLEET_KEY = "agent-test-fleet-key-0123456789abcdef";

export interface TestServer {
  url: string;
  /** PEM of the embedded CA's root: what the agent trusts (api.ca_bundle). */
  caPem: string;
  caFile: string;
  dir: string;
  cf: Certfleet;
  /** POST /api/admin/identities; returns the created record (id = the identity UUID). */
  createIdentity(
    body: Record<string, unknown>,
  ): Promise<{ id: string; clientSecret?: string; binding: Record<string, string> }>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  issuers?: Record<string, unknown>[];
  /** Embedded CA leaf lifetime, e.g. "30s" for renewal tests. */
  leafValidity?: string;
  checkInterval?: string;
  /** `auth.clientCertificates` as in the config file (e.g. a root-only caBundleFile). */
  clientCertificates?: Record<string, unknown>;
}

export async function startTestServer(options: StartServerOptions = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "cf-agent-server-"));
  const config = resolveConfig(
    parseConfig({
      dataDir: dir,
      server: { bind: "127.0.0.1", port: 0 },
      auth: {
        apiKeys: [
          { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
          { name: "fleet", key: FLEET_KEY, grants: [".example.com"] },
        ],
        issuers: options.issuers ?? [],
        ...(options.clientCertificates ? { clientCertificates: options.clientCertificates } : {}),
      },
      ...(options.leafValidity
        ? { issuers: [{ id: "embedded", type: "embedded", leafValidity: options.leafValidity }] }
        : {}),
      certificates: { ...(options.checkInterval ? { checkInterval: options.checkInterval } : {}) },
    }),
  );
  const cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  const url = (await cf.start()).url.replace("localhost", "127.0.0.1");
  const caPem = cf.embeddedCa.rootPem;
  const caFile = join(dir, "agent-ca.pem");
  await writeFile(caFile, caPem);
  const port = new URL(url).port;

  const admin = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port,
          path,
          method,
          servername: "localhost",
          ca: caPem,
          headers: {
            authorization: `APIKey ${ADMIN_KEY}`,
            ...(body !== undefined ? { "content-type": "application/json" } : {}),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () =>
            resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }),
          );
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  return {
    url,
    caPem,
    caFile,
    dir,
    cf,
    admin,
    async createIdentity(body) {
      const res = await admin("POST", "/api/admin/identities", body);
      if (res.status !== 201)
        throw new Error(`identity not created: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async stop() {
      await cf.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
