import type { IncomingMessage } from "node:http";
import { Agent, createServer, request as httpsRequest, type Server } from "node:https";
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import type { PebbleServer } from "./pebble.js";

/**
 * A keep-alive HTTPS proxy in front of Pebble that can reset the client's connection (TCP RST) on
 * chosen requests (a plain TCP relay in front of the TLS listener sends the RST, which a TLS socket
 * cannot), the way a loaded CA or middlebox drops a kept-alive socket. It keeps the client's
 * Host header, so Pebble builds every URL for the proxy's address. A reset is armed for the next
 * request(s) that match; `when` says whether the request reaches Pebble first ("after": its fate is
 * unknown to the client but it happened) or not ("before").
 */
export interface ResetRule {
  match: (method: string, path: string) => boolean;
  when: "before" | "after";
  /** How many matching requests to reset (default 1). */
  times?: number;
}

/** One request through the proxy and what the client got back (if it got anything). */
export interface Exchange {
  method: string;
  path: string;
  requestBody: Buffer;
  startedAt: number;
  /** Set once the answer was sent to the client. */
  answeredAt?: number;
  status?: number;
  location?: string;
  responseBody?: Buffer;
}

export interface ResetProxy {
  directoryUrl: string;
  caBundlePem: string;
  /** Requests seen, in order ("POST /order-plz"). */
  requests: string[];
  /** Every request with its answer, in arrival order. */
  exchanges: Exchange[];
  /** Requests held back by `delayMs` at this moment (e.g. certificate downloads in flight). */
  held(): number;
  /** Requests whose connection was reset. */
  resets: string[];
  /** TCP connections clients opened to the proxy. */
  connections(): number;
  resetNext(rule: ResetRule): void;
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startResetProxy(
  pebble: PebbleServer,
  options: {
    keepAliveTimeoutMs?: number;
    /** Hold a request this long before forwarding it (e.g. a CA slow to hand out certificates). */
    delayMs?: (method: string, path: string) => number;
  } = {},
): Promise<ResetProxy> {
  const upstream = new URL(pebble.directoryUrl);
  const upstreamAgent = new Agent({ keepAlive: true, ca: pebble.caBundlePem, maxSockets: 8 });
  const requests: string[] = [];
  const exchanges: Exchange[] = [];
  let held = 0;
  const resets: string[] = [];
  const rules: (ResetRule & { left: number })[] = [];
  let connections = 0;
  /** TLS listener's view of a relayed connection (its remote port) → the client's raw TCP socket. */
  const clients = new Map<number, Socket>();

  function armed(method: string, path: string, when: ResetRule["when"]): boolean {
    const rule = rules.find((r) => r.when === when && r.left > 0 && r.match(method, path));
    if (!rule) return false;
    rule.left -= 1;
    return true;
  }

  function reset(req: IncomingMessage, what: string): void {
    resets.push(what);
    const client = clients.get(req.socket.remotePort ?? -1);
    client?.resetAndDestroy();
    req.socket.destroy();
  }

  function forward(req: IncomingMessage, body: Buffer) {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        const out = httpsRequest(
          {
            hostname: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent: upstreamAgent,
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
      },
    );
  }

  const server: Server = createServer(
    { cert: pebble.serverCertPem, key: pebble.serverKeyPem },
    (req, res) => {
      const method = req.method ?? "GET";
      const path = req.url ?? "/";
      const what = `${method} ${path}`;
      requests.push(what);
      void (async () => {
        const body = await readBody(req);
        const exchange: Exchange = { method, path, requestBody: body, startedAt: Date.now() };
        exchanges.push(exchange);
        if (armed(method, path, "before")) return reset(req, what);
        const delay = options.delayMs?.(method, path) ?? 0;
        if (delay > 0) {
          held += 1;
          await new Promise((r) => setTimeout(r, delay));
          held -= 1;
        }
        const answer = await forward(req, body);
        if (armed(method, path, "after")) return reset(req, what);
        const headers = { ...answer.headers };
        delete headers["transfer-encoding"];
        delete headers["connection"];
        delete headers["keep-alive"];
        res.writeHead(answer.status, headers as Record<string, string>);
        res.end(answer.body, () => {
          // the client has it (as far as the socket can tell)
          exchange.answeredAt = Date.now();
        });
        exchange.status = answer.status;
        exchange.responseBody = answer.body;
        if (typeof answer.headers.location === "string") exchange.location = answer.headers.location;
      })().catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end(String(e));
      });
    },
  );
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const tlsPort = (server.address() as AddressInfo).port;

  const relay = createTcpServer((client) => {
    connections += 1;
    const inner = connect(tlsPort, "127.0.0.1", () => {
      clients.set(inner.localPort!, client);
      client.pipe(inner).pipe(client);
    });
    const drop = () => {
      if (inner.localPort) clients.delete(inner.localPort);
      inner.destroy();
      client.destroy();
    };
    client.on("error", drop).on("close", drop);
    inner.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const port = (relay.address() as AddressInfo).port;

  return {
    directoryUrl: `https://127.0.0.1:${port}${upstream.pathname}`,
    caBundlePem: pebble.caBundlePem,
    requests,
    exchanges,
    held: () => held,
    resets,
    connections: () => connections,
    resetNext(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        upstreamAgent.destroy();
        for (const client of clients.values()) client.destroy();
        server.closeAllConnections();
        relay.close(() => server.close(() => resolve()));
      }),
  };
}
