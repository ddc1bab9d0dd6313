import type * as Grpc from "@grpc/grpc-js";
import { AgentAuthError } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import type { JwtSvidResponse, WorkloadApiClient } from "../spiffe/workload-api-definition.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { readTokenFile } from "./token-file.js";
import { createTokenSource } from "./token-source.js";

const CALL_TIMEOUT_MS = 30_000;

/**
 * SPIFFE: a JWT-SVID for `audience` from the SPIRE agent's Workload API (gRPC over its Unix socket,
 * `workload_api_socket`, else `$SPIFFE_ENDPOINT_SOCKET`), presented as a bearer token. With
 * `$SPIFFE_SVID_PATH` set, the JWT-SVID is read from that file instead (e.g. written by spiffe-helper).
 */
export function createSpiffeSource(
  config: AuthConfigOf<"spiffe">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const svidPath = deps.env.SPIFFE_SVID_PATH || undefined;
  const socket = config.workload_api_socket ?? (deps.env.SPIFFE_ENDPOINT_SOCKET || undefined);
  let client: WorkloadApiClient | undefined;

  // gRPC is loaded on first use: only this method needs it, and it is slow to import.
  async function connect(): Promise<{ c: WorkloadApiClient; grpc: typeof Grpc; metadataKey: string }> {
    if (!socket) {
      throw new AgentAuthError(
        "spiffe",
        "spiffe_socket_unset",
        "set workload_api_socket or SPIFFE_ENDPOINT_SOCKET",
      );
    }
    const grpc = await import("@grpc/grpc-js");
    const definition = await import("../spiffe/workload-api-definition.js");
    if (!client) {
      const api = definition.loadWorkloadApi();
      client = new api.Client(definition.grpcAddressOf(socket), grpc.credentials.createInsecure());
    }
    return { c: client, grpc, metadataKey: definition.WORKLOAD_METADATA_KEY };
  }

  async function fetchSvid(signal: AbortSignal): Promise<string> {
    const { c, grpc, metadataKey } = await connect();
    const metadata = new grpc.Metadata();
    metadata.set(metadataKey, "true");
    const request = {
      audience: [config.audience],
      ...(config.spiffe_id ? { spiffe_id: config.spiffe_id } : {}),
    };
    return new Promise<string>((resolve, reject) => {
      const call = c.FetchJWTSVID(
        request,
        metadata,
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error: Grpc.ServiceError | null, response?: JwtSvidResponse) => {
          signal.removeEventListener("abort", onAbort);
          if (error) {
            reject(
              new AgentAuthError(
                "spiffe",
                "spiffe_workload_api_failed",
                "the SPIFFE Workload API refused a JWT-SVID",
                {
                  internal: `${socket}: ${grpc.status[error.code] ?? error.code} ${error.details}`,
                  cause: error,
                },
              ),
            );
            return;
          }
          const svid = response?.svids.find(
            (s) => !config.spiffe_id || s.spiffe_id === config.spiffe_id,
          )?.svid;
          if (!svid) {
            reject(
              new AgentAuthError("spiffe", "spiffe_no_svid", "the SPIFFE Workload API returned no JWT-SVID"),
            );
            return;
          }
          resolve(svid);
        },
      );
      const onAbort = () => call.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  const source = createTokenSource({
    method: "spiffe",
    uuid,
    clock: deps.clock,
    cache: svidPath === undefined,
    fetchToken: (signal) => (svidPath ? readTokenFile("spiffe", svidPath, signal) : fetchSvid(signal)),
  });
  return {
    ...source,
    async close() {
      client?.close();
      client = undefined;
    },
  };
}
