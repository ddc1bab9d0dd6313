import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The loopback redirect receiver of a native-app login (RFC 8252 §7.3): an HTTP listener on 127.0.0.1
 * at a port chosen at run time (or the configured one), waiting for exactly one authorization response
 * on `/callback` whose `state` matches. Anything else gets 404 and is ignored.
 */
export interface AuthorizationResponse {
  code: string;
}

export interface LoopbackRedirect {
  redirectUri: string;
  /** Resolves with the code; rejects on an error response, timeout or abort. */
  response: Promise<AuthorizationResponse>;
  close(): Promise<void>;
}

const PAGE = (title: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><p>${title}. You can close this window.</p>`;

export async function startLoopbackRedirect(options: {
  port: number;
  state: string;
  timeoutMs: number;
  signal: AbortSignal;
}): Promise<LoopbackRedirect> {
  let settle: { resolve: (r: AuthorizationResponse) => void; reject: (e: Error) => void } | undefined;
  const response = new Promise<AuthorizationResponse>((resolve, reject) => {
    settle = { resolve, reject };
  });
  response.catch(() => undefined);
  let done = false;
  const finish = (fn: () => void) => {
    if (done) return;
    done = true;
    fn();
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (
      req.method !== "GET" ||
      url.pathname !== "/callback" ||
      url.searchParams.get("state") !== options.state
    ) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const error = url.searchParams.get("error");
    const code = url.searchParams.get("code");
    if (error || !code) {
      res.writeHead(400, { "content-type": "text/html" }).end(PAGE("Login failed"));
      const description = url.searchParams.get("error_description") ?? "";
      finish(() =>
        settle!.reject(new Error(`authorization failed: ${error ?? "no code"} ${description}`.trim())),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/html", connection: "close" }).end(PAGE("Login complete"));
    finish(() => settle!.resolve({ code }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const timer = setTimeout(
    () =>
      finish(() => settle!.reject(new Error(`no login within ${Math.round(options.timeoutMs / 1000)} s`))),
    options.timeoutMs,
  );
  const onAbort = () => finish(() => settle!.reject(new Error("cancelled")));
  options.signal.addEventListener("abort", onAbort, { once: true });

  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    response,
    async close() {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
