import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { readTokenFile } from "./token-file.js";
import { createTokenSource } from "./token-source.js";

/** Kubernetes: the projected service-account token file, re-read on every use (the kubelet rotates it). */
export function createKubernetesSource(
  config: AuthConfigOf<"kubernetes">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  return createTokenSource({
    method: "kubernetes",
    uuid,
    clock: deps.clock,
    cache: false,
    fetchToken: (signal) => readTokenFile("kubernetes", config.token_file, signal),
  });
}
