import type { FastifyInstance } from "fastify";
import type { StorageAdmin } from "../../storage/storage.js";
import { CertfleetError } from "../../core/errors.js";

/** /healthz: the process answers. /readyz: and its storage answers within 2 s. */
export function healthRoutes(deps: { storage: Pick<StorageAdmin, "ping"> }) {
  return async (app: FastifyInstance) => {
    app.get("/healthz", async () => ({ status: "ok" }));
    app.get("/readyz", async () => {
      try {
        await deps.storage.ping(AbortSignal.timeout(2000));
      } catch (e) {
        throw new CertfleetError("not_ready", "storage is not reachable", {
          status: 503,
          expose: true,
          internal: String(e),
        });
      }
      return { status: "ready" };
    });
  };
}
