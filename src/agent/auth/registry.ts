import type { AuthConfig, AuthConfigOf, AuthMethod } from "../config/auth-config.js";
import { createApiKeySource } from "./api-key.js";
import { createAwsOidcSource } from "./aws-oidc.js";
import { createAzureArcSource } from "./azure-arc.js";
import { createAzureJwtSource } from "./azure-jwt.js";
import { createClientCertificateSource } from "./client-certificate.js";
import { createClientSecretSource } from "./client-secret.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { createExecSource } from "./exec-plugin.js";
import { createGcpSource } from "./gcp.js";
import { createKubernetesSource } from "./kubernetes.js";
import { createOidcJwtSource } from "./oidc-jwt.js";
import { createOidcLoginSource } from "./oidc-login.js";
import { createSpiffeSource } from "./spiffe.js";

type Factory<M extends AuthMethod> = (
  config: AuthConfigOf<M>,
  uuid: string | undefined,
  deps: CredentialDeps,
) => CredentialSource;

/** Every auth method the agent speaks, by its config name. Adding a method = one line here + its schema. */
export const CREDENTIAL_FACTORIES: { [M in AuthMethod]: Factory<M> } = {
  api_key: createApiKeySource,
  client_secret: createClientSecretSource,
  certificate: createClientCertificateSource,
  oidc_jwt: createOidcJwtSource,
  azure_jwt: createAzureJwtSource,
  azure_arc: createAzureArcSource,
  aws_oidc: createAwsOidcSource,
  gcp: createGcpSource,
  kubernetes: createKubernetesSource,
  spiffe: createSpiffeSource,
  exec: createExecSource,
  oidc: createOidcLoginSource,
};

export function createCredentialSource(
  config: AuthConfig,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const factory = CREDENTIAL_FACTORIES[config.method] as Factory<AuthMethod>;
  return factory(config, uuid, deps);
}
