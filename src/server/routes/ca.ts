import type { FastifyInstance } from "fastify";
import type { EmbeddedCa } from "../../internal-ca/embedded-ca.js";
import { requestSignal } from "../auth-hook.js";

/**
 * The embedded CA's public material, unauthenticated (relying parties and `openssl` fetch it):
 * GET /ca/root.pem — the root to trust; GET /ca/intermediate.crl — the intermediate's CRL (DER,
 * RFC 5280 §5), cacheable for five minutes so a new revocation shows up soon.
 */
export function caRoutes(deps: { ca: Pick<EmbeddedCa, "rootPem" | "crl"> }) {
  return async (app: FastifyInstance) => {
    app.get("/ca/root.pem", async (_request, reply) => {
      return reply
        .header("content-type", "application/x-pem-file")
        .header("cache-control", "public, max-age=3600")
        .send(deps.ca.rootPem);
    });
    app.get("/ca/intermediate.crl", async (_request, reply) => {
      const der = await deps.ca.crl(requestSignal(reply));
      return reply
        .header("content-type", "application/pkix-crl")
        .header("cache-control", "public, max-age=300")
        .send(Buffer.from(der));
    });
  };
}
