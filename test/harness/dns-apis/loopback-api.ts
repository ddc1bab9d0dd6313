import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The shared frame of every loopback DNS-API double: a node:http server on 127.0.0.1:0 that records
 * each request, lets a test inject faults (429 / 5xx / 401 …) ahead of the real handler, keeps TXT
 * values in a store (so a conformance `lookup` reads what the "provider" holds), and turns any broken
 * expectation about a request (path, method, header, auth, body) into a 400 plus an entry in
 * `violations` — a test asserts that list is empty, so a provider that sends the wrong request fails
 * even when it happens to ignore the 400.
 */
export interface RecordedRequest {
  method: string;
  path: string;
  /** Path and query exactly as sent. */
  rawUrl: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  /** Status the double answered with. */
  status: number;
}

export interface ApiReply {
  status: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
}

export interface Fault {
  status: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
  /** How many matching requests get this fault (default 1). */
  times?: number;
  /** Only requests this returns true for (default: every request). */
  match?(req: RecordedRequest): boolean;
}

/** Called after every change of the TXT values at one name, e.g. to push them into a DNS server. */
export type TxtChangeHook = (name: string, values: readonly string[]) => void | Promise<void>;

export class TxtStore {
  private readonly values = new Map<string, string[]>();
  constructor(private readonly onChange?: TxtChangeHook) {}

  get(name: string): string[] {
    return [...(this.values.get(normalise(name)) ?? [])];
  }

  async set(name: string, values: readonly string[]): Promise<void> {
    const key = normalise(name);
    if (values.length === 0) this.values.delete(key);
    else this.values.set(key, [...values]);
    await this.onChange?.(key, this.get(key));
  }

  async add(name: string, value: string): Promise<void> {
    await this.set(name, [...this.get(name), value]);
  }

  /** Remove one occurrence of `value`; true when it was there. */
  async remove(name: string, value: string): Promise<boolean> {
    const current = this.get(name);
    const i = current.indexOf(value);
    if (i < 0) return false;
    current.splice(i, 1);
    await this.set(name, current);
    return true;
  }

  names(): string[] {
    return [...this.values.keys()];
  }
}

export function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** Thrown by a handler's `check` when a request is not what the documented API expects. */
export class Violation extends Error {}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Violation(message);
}

export interface HandlerContext {
  req: RecordedRequest;
  store: TxtStore;
  /** A JSON body, or a violation. */
  json<T = Record<string, unknown>>(): T;
}

export interface LoopbackApi {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  store: TxtStore;
  requests: RecordedRequest[];
  violations: string[];
  inject(fault: Fault): void;
  clearFaults(): void;
  /** Requests whose method and path match. */
  count(method: string, path: string | RegExp): number;
  /** Throw if any request broke the documented API. */
  assertClean(): void;
  close(): Promise<void>;
}

const MAX_BODY = 256 * 1024;
const MAX_REQUESTS = 5_000;

export async function startLoopbackApi(options: {
  name: string;
  handle(ctx: HandlerContext): ApiReply | Promise<ApiReply>;
  onChange?: TxtChangeHook;
}): Promise<LoopbackApi> {
  const store = new TxtStore(options.onChange);
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const faults: (Fault & { left: number })[] = [];

  const server = createServer((incoming, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    incoming.on("end", () => {
      const url = new URL(incoming.url ?? "/", "http://loopback");
      const req: RecordedRequest = {
        method: incoming.method ?? "GET",
        path: url.pathname,
        rawUrl: incoming.url ?? "/",
        query: url.searchParams,
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        status: 0,
      };
      if (requests.length >= MAX_REQUESTS) {
        violations.push(`${options.name}: more than ${MAX_REQUESTS} requests (retry storm?)`);
        return send(res, req, { status: 503, text: "too many requests in this test" });
      }
      requests.push(req);
      if (size > MAX_BODY) {
        violations.push(`${options.name}: body over ${MAX_BODY} bytes on ${req.method} ${req.path}`);
        return send(res, req, { status: 413, text: "too large" });
      }
      const fault = faults.find((f) => f.left > 0 && (f.match?.(req) ?? true));
      if (fault) {
        fault.left -= 1;
        return send(res, req, fault);
      }
      const ctx: HandlerContext = {
        req,
        store,
        json<T>() {
          try {
            return JSON.parse(req.body) as T;
          } catch {
            throw new Violation(`body of ${req.method} ${req.path} is not JSON: ${req.body.slice(0, 200)}`);
          }
        },
      };
      Promise.resolve()
        .then(() => options.handle(ctx))
        .then(
          (reply) => send(res, req, reply),
          (e: unknown) => {
            if (e instanceof Violation) {
              violations.push(`${options.name}: ${req.method} ${req.path}${url.search}: ${e.message}`);
              send(res, req, { status: 400, json: { error: "violation", message: e.message } });
            } else {
              violations.push(`${options.name}: handler crashed: ${(e as Error).stack ?? String(e)}`);
              send(res, req, { status: 500, text: "handler crashed" });
            }
          },
        );
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    store,
    requests,
    violations,
    inject(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    count(method, path) {
      return requests.filter(
        (r) => r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path)),
      ).length;
    },
    assertClean() {
      if (violations.length > 0)
        throw new Error(`loopback ${options.name} API saw bad requests:\n${violations.join("\n")}`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, req: RecordedRequest, reply: ApiReply): void {
  req.status = reply.status;
  const headers: Record<string, string> = { ...reply.headers };
  let body = reply.text ?? "";
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    headers["content-type"] ??= "application/json";
  }
  res.writeHead(reply.status, headers);
  res.end(body);
}

/** The Bearer token of a request, or undefined. */
export function bearer(req: RecordedRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith("Bearer ") ? h.slice(7) : undefined;
}

/** Split a path like /zones/abc/dns_records/xyz against a pattern with :params. */
export function route<K extends string>(
  path: string,
  pattern: string,
  _keys?: K[],
): Record<K, string> | undefined {
  const a = path.split("/").filter(Boolean);
  const b = pattern.split("/").filter(Boolean);
  if (a.length !== b.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < b.length; i++) {
    const p = b[i]!;
    if (p.startsWith(":")) params[p.slice(1)] = decodeURIComponent(a[i]!);
    else if (p !== a[i]) return undefined;
  }
  return params as Record<K, string>;
}
