import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch } from "undici";
import { createCertfleet, type Certfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";

/**
 * certfleet in-process on 127.0.0.1:<free port> with SSH grants on its API keys:
 * `alice` may get user certificates for the principal alice; `ops` host certificates under
 * .hosts.test; `admin` is an admin without SSH grants. Extra `auth` settings (JWT issuers) merge in.
 */
export const KEYS = {
  admin: "ssh-test-admin-key-0123456789abcdef",
  alice: "ssh-test-alice-key-0123456789abcdef",
  ops: "ssh-test-ops-key-0123456789abcdef0",
} as const;

export interface SshTestServer {
  url: string;
  caPem: string;
  dir: string;
  cf: Certfleet;
  request(
    method: string,
    path: string,
    options?: { key?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; text: string; body: any; bytes: Buffer }>;
  stop(): Promise<void>;
}

export async function startSshTestServer(
  extra: {
    issuers?: Record<string, unknown>[];
    ssh?: Record<string, unknown>;
    apiKeys?: Record<string, unknown>[];
  } = {},
): Promise<SshTestServer> {
  const dir = await mkdtemp(join(tmpdir(), "cf-ssh-server-"));
  const config = resolveConfig(
    parseConfig({
      dataDir: dir,
      server: { bind: "127.0.0.1", port: 0 },
      auth: {
        apiKeys: [
          { name: "admin", key: KEYS.admin, admin: true, grants: [] },
          {
            name: "alice",
            key: KEYS.alice,
            grants: [],
            sshPrincipals: ["alice"],
            sshExtensions: ["permit-pty"],
          },
          {
            name: "ops",
            key: KEYS.ops,
            grants: [],
            sshPrincipals: [".hosts.test"],
            sshCertificateTypes: ["host"],
          },
          ...(extra.apiKeys ?? []),
        ],
        issuers: extra.issuers ?? [],
      },
      ...(extra.ssh ? { ssh: extra.ssh } : {}),
    }),
  );
  const cf = await createCertfleet(config, {
    logger: silentLogger(),
    clock: systemClock,
    fetch: globalThis.fetch,
    env: {},
  });
  const url = (await cf.start()).url.replace("localhost", "127.0.0.1");
  const caPem = cf.embeddedCa.rootPem;
  const dispatcher = new Agent({ connect: { ca: caPem, servername: "localhost" } });
  return {
    url,
    caPem,
    dir,
    cf,
    async request(method, path, options = {}) {
      const res = await fetch(url + path, {
        method,
        dispatcher,
        headers: {
          ...(options.key ? { authorization: `APIKey ${options.key}` } : {}),
          ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
          ...options.headers,
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      const text = bytes.toString("utf8");
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, text, body, bytes };
    },
    async stop() {
      await cf.stop();
      await dispatcher.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
