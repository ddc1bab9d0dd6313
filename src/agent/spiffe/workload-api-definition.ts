import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * The SPIFFE Workload API service definition, loaded from `src/agent/proto/workload.proto` (data, not
 * generated code). Both the agent's client and the test harness's server use this one definition.
 */
export const WORKLOAD_PROTO_PATH = findProto();

/** Next to the sources (`src/agent/proto/`); from a build in `dist/`, the copy the build made, else the source. */
function findProto(): string {
  const candidates = ["../proto/workload.proto", "../../../src/agent/proto/workload.proto"].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/** Metadata every Workload API call must carry; servers refuse calls without it. */
export const WORKLOAD_METADATA_KEY = "workload.spiffe.io";

export interface JwtSvidRequest {
  audience: string[];
  spiffe_id?: string;
}
export interface JwtSvid {
  spiffe_id: string;
  svid: string;
}
export interface JwtSvidResponse {
  svids: JwtSvid[];
}

export type WorkloadApiClient = grpc.Client & {
  FetchJWTSVID(
    request: JwtSvidRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: JwtSvidResponse) => void,
  ): grpc.ClientUnaryCall;
};

export interface WorkloadApiDefinition {
  /** The client constructor for `SpiffeWorkloadAPI`. */
  Client: new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ChannelOptions,
  ) => WorkloadApiClient;
  service: grpc.ServiceDefinition;
}

export function loadWorkloadApi(): WorkloadApiDefinition {
  const definition = protoLoader.loadSync(WORKLOAD_PROTO_PATH, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    SpiffeWorkloadAPI: WorkloadApiDefinition["Client"] & { service: grpc.ServiceDefinition };
  };
  return { Client: pkg.SpiffeWorkloadAPI, service: pkg.SpiffeWorkloadAPI.service };
}

/** `unix:///path` and plain absolute paths both name a Unix socket; gRPC wants `unix:/path`. */
export function grpcAddressOf(socket: string): string {
  if (socket.startsWith("unix://")) return `unix:${socket.slice("unix://".length)}`;
  if (socket.startsWith("unix:")) return socket;
  if (socket.startsWith("/")) return `unix:${socket}`;
  return socket;
}
