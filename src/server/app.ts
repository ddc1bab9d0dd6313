import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "../core/logger.js";
import { edgeErrorHandlers, type EdgeErrorDialect } from "./edge-errors.js";
import type { CertificateManager } from "../issuance/manager.js";
import type { StorageAdmin } from "../storage/storage.js";
import type { AuditSink } from "./audit.js";
import type { Authenticate, AuthorizeNames } from "./auth-hook.js";
import { installErrorHandler } from "./error-handler.js";
import { certificateRoutes } from "./routes/certificate.js";
import { healthRoutes } from "./routes/health.js";

/**
 * Builds the API application. It never listens by itself: the caller (cli/serve, or a test) decides
 * where. `https` absent means plain HTTP, which only an explicit `server.insecureHttp` asks for.
 */
export interface AppDeps {
  logger: Logger;
  storage: Pick<StorageAdmin, "ping">;
  manager: CertificateManager;
  authenticate: Authenticate;
  authorizeNames: AuthorizeNames;
  audit: AuditSink;
  /** `clientCa`: ask clients for a certificate and verify it against these CAs (mTLS identities). */
  https?: { key: string; cert: string; clientCa?: string };
  bodyLimit: number;
  trustProxy: string[];
  /**
   * Milliseconds (server.requestTimeout, headersTimeout, keepAliveTimeout, connectionTimeout): a
   * request must arrive whole within `request` and its headers within `headers`; idle keep-alive
   * connections close after `keepAlive`; a connection with no traffic at all after `connection`.
   */
  timeouts: { request: number; headers: number; keepAlive: number; connection: number };
  /**
   * How errors found before routing (an unparsable request, a bad URL, a timeout) are answered under
   * a path prefix that speaks its own error format (the ACME server's problem documents). Elsewhere
   * they get the API's `{ error: { code, message }, requestId }`.
   */
  edgeDialects?: EdgeErrorDialect[];
  /** Request counts and latency by route (Prometheus), observed on every response. */
  observeResponse?: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Extra route plugins (admin API, ACME server, ...) registered after the core routes. */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const edge = edgeErrorHandlers(deps.edgeDialects ?? [], deps.logger);
  // Node checks the request and header deadlines on this interval (30 s by default): a fraction of
  // the shortest deadline keeps the cut-off close to the configured time.
  const nodeServerOptions = {
    headersTimeout: deps.timeouts.headers,
    requestTimeout: deps.timeouts.request,
    connectionsCheckingInterval: Math.max(
      250,
      Math.min(1_000, Math.floor(Math.min(deps.timeouts.headers, deps.timeouts.request || Infinity) / 4)),
    ),
  };
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    trustProxy: deps.trustProxy.length > 0 ? deps.trustProxy : false,
    return503OnClosing: true,
    connectionTimeout: deps.timeouts.connection,
    requestTimeout: deps.timeouts.request,
    keepAliveTimeout: deps.timeouts.keepAlive,
    clientErrorHandler: edge.clientError,
    frameworkErrors: edge.frameworkError,
    http: nodeServerOptions,
    ...(deps.https
      ? {
          https: {
            ...nodeServerOptions,
            key: deps.https.key,
            cert: deps.https.cert,
            minVersion: "TLSv1.2" as const,
            // a client certificate is optional at the TLS layer; the authenticator decides what it proves
            ...(deps.https.clientCa
              ? { ca: deps.https.clientCa, requestCert: true, rejectUnauthorized: false }
              : {}),
          },
        }
      : {}),
  }) as unknown as FastifyInstance;
  installErrorHandler(app);
  app.addHook("onRequest", edge.onRequest);
  // Group commit: no response leaves before every audit record appended so far is stored, its own
  // included (the auth chain appends `auth.allow` without waiting; server/audit.ts writes in order).
  app.addHook("onSend", async () => {
    await deps.audit.committed();
  });
  app.addHook("onResponse", async (request, reply) => {
    if (reply.statusCode >= 400 || request.url.startsWith("/api/")) {
      request.log.debug(
        {
          method: request.method,
          url: request.url,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        "request",
      );
    }
  });
  if (deps.observeResponse) app.addHook("onResponse", deps.observeResponse);
  await app.register(healthRoutes({ storage: deps.storage }));
  await app.register(
    certificateRoutes({
      manager: deps.manager,
      authenticate: deps.authenticate,
      authorizeNames: deps.authorizeNames,
      audit: deps.audit,
    }),
  );
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
