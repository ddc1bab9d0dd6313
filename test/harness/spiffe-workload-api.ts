import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  loadWorkloadApi,
  WORKLOAD_METADATA_KEY,
  type JwtSvid,
  type JwtSvidRequest,
  type JwtSvidResponse,
} from "../../src/agent/spiffe/workload-api-definition.js";

/**
 * A SPIFFE Workload API server (what a SPIRE agent offers workloads) on a Unix socket in a fresh temp
 * directory, built on @grpc/grpc-js and the same workload.proto the agent uses. `FetchJWTSVID` refuses
 * calls without the `workload.spiffe.io: true` metadata (as SPIRE does) and asks `mint` for the SVIDs;
 * every call is recorded. The other RPCs answer UNIMPLEMENTED.
 */
export interface SpiffeWorkloadApi {
  socketPath: string;
  /** `unix:///…/api.sock`, the form an agent config or SPIFFE_ENDPOINT_SOCKET uses. */
  address: string;
  calls: { audience: string[]; spiffeId: string; hadSecurityHeader: boolean }[];
  close(): Promise<void>;
}

export async function startSpiffeWorkloadApi(
  mint: (request: { audience: string[]; spiffeId: string }) => Promise<JwtSvid[]>,
): Promise<SpiffeWorkloadApi> {
  const dir = await mkdtemp(join(tmpdir(), "spire-"));
  const socketPath = join(dir, "api.sock");
  const calls: SpiffeWorkloadApi["calls"] = [];
  const server = new grpc.Server();
  server.addService(loadWorkloadApi().service, {
    FetchJWTSVID: (
      call: grpc.ServerUnaryCall<JwtSvidRequest, JwtSvidResponse>,
      callback: grpc.sendUnaryData<JwtSvidResponse>,
    ) => {
      const hadSecurityHeader = call.metadata.get(WORKLOAD_METADATA_KEY)[0] === "true";
      const request = { audience: [...call.request.audience], spiffeId: call.request.spiffe_id ?? "" };
      calls.push({ ...request, hadSecurityHeader });
      if (!hadSecurityHeader) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: "security header missing from request" });
        return;
      }
      if (request.audience.length === 0) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: "audience must be specified" });
        return;
      }
      mint(request).then(
        (svids) => callback(null, { svids }),
        (e: unknown) => callback({ code: grpc.status.INTERNAL, details: String(e) }),
      );
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  return {
    socketPath,
    address: `unix://${socketPath}`,
    calls,
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
