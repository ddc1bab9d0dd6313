import { createServer, request as httpsRequest, type Server } from "node:https";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { PebbleServer } from "./pebble.js";

/**
 * An HTTPS reverse proxy in front of Pebble that adds what Pebble 2.4 lacks: an RFC 9773 renewalInfo
 * resource. It forwards everything else unchanged and keeps the client's Host header, so Pebble builds
 * every URL (directory, order, authz, JWS `url` checks) for the proxy's address. It also records the
 * payload of each newOrder (to see `replaces` / `profile`) and can answer the next newOrder with a
 * problem document instead of forwarding it (rate limits, alreadyReplaced).
 */
export interface RenewalInfoAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface InjectedProblem {
  status: number;
  type: string;
  detail: string;
  headers?: Record<string, string>;
}

export interface AriProxy {
  directoryUrl: string;
  /** Pebble's TLS CA; the proxy uses a certificate from the same CA. */
  caBundlePem: string;
  /** Decoded JWS payloads of every newOrder, in order. */
  newOrderPayloads: Record<string, unknown>[];
  /** Certificate ids requested from renewalInfo, in order. */
  renewalInfoRequests: string[];
  /** How GET <renewalInfo>/<certId> is answered (default: 404). */
  onRenewalInfo(answer: (certId: string) => RenewalInfoAnswer): void;
  /** Answer the next newOrder with this problem instead of forwarding it to Pebble. */
  failNextNewOrder(problem: InjectedProblem): void;
  /** Whether the directory lists `renewalInfo` (default true). */
  advertiseRenewalInfo(on: boolean): void;
  stop(): Promise<void>;
}

const RENEWAL_INFO_PATH = "/renewal-info";

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startAriProxy(pebble: PebbleServer): Promise<AriProxy> {
  const upstream = new URL(pebble.directoryUrl);
  const newOrderPayloads: Record<string, unknown>[] = [];
  const renewalInfoRequests: string[] = [];
  let renewalInfo: (certId: string) => RenewalInfoAnswer = () => ({ status: 404 });
  const injected: InjectedProblem[] = [];
  let advertise = true;

  function forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const out = httpsRequest(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers, // Host stays the proxy's
          ca: pebble.caBundlePem,
        },
        (res) => {
          void readBody(res).then(
            (b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }),
            reject,
          );
        },
      );
      out.on("error", reject);
      out.end(body);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req);
    const path = req.url ?? "/";

    if (req.method === "GET" && path.startsWith(`${RENEWAL_INFO_PATH}/`)) {
      const certId = decodeURIComponent(path.slice(RENEWAL_INFO_PATH.length + 1));
      renewalInfoRequests.push(certId);
      const answer = renewalInfo(certId);
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
      return;
    }

    if (req.method === "POST" && path === "/order-plz") {
      const jws = JSON.parse(body.toString()) as { payload: string };
      newOrderPayloads.push(
        JSON.parse(Buffer.from(jws.payload, "base64url").toString()) as Record<string, unknown>,
      );
      const problem = injected.shift();
      if (problem) {
        res.writeHead(problem.status, { "content-type": "application/problem+json", ...problem.headers });
        res.end(JSON.stringify({ type: problem.type, detail: problem.detail, status: problem.status }));
        return;
      }
    }

    const answer = await forward(req, body);
    const headers = { ...answer.headers };
    let out = answer.body;
    if (req.method === "GET" && path === upstream.pathname && answer.status === 200) {
      const directory = JSON.parse(answer.body.toString()) as Record<string, unknown>;
      if (advertise) directory["renewalInfo"] = `https://${req.headers.host}${RENEWAL_INFO_PATH}`;
      out = Buffer.from(JSON.stringify(directory));
      headers["content-length"] = String(out.length);
    }
    delete headers["transfer-encoding"];
    res.writeHead(answer.status, headers);
    res.end(out);
  }

  const server: Server = createServer(
    { cert: pebble.serverCertPem, key: pebble.serverKeyPem },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        res.writeHead(502, { "content-type": "text/plain" }).end(String(e));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    directoryUrl: `https://127.0.0.1:${port}${upstream.pathname}`,
    caBundlePem: pebble.caBundlePem,
    newOrderPayloads,
    renewalInfoRequests,
    onRenewalInfo(answer) {
      renewalInfo = answer;
    },
    failNextNewOrder(problem) {
      injected.push(problem);
    },
    advertiseRenewalInfo(on) {
      advertise = on;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
