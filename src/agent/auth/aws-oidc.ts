import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { readTokenFile } from "./token-file.js";
import { createTokenSource } from "./token-source.js";

export const DEFAULT_AWS_WEB_IDENTITY_TOKEN_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/**
 * AWS IAM OIDC: the web identity token from `token_file`, else `$AWS_WEB_IDENTITY_TOKEN_FILE`, else the
 * EKS default path, presented as a bearer token. The role ARN and region travel with it
 * (`X-Certfleet-Aws-Role-Arn`, `X-Certfleet-Aws-Region`) for the server to check against the token.
 */
export function createAwsOidcSource(
  config: AuthConfigOf<"aws_oidc">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const path =
    config.token_file ?? (deps.env.AWS_WEB_IDENTITY_TOKEN_FILE || DEFAULT_AWS_WEB_IDENTITY_TOKEN_FILE);
  return createTokenSource({
    method: "aws_oidc",
    uuid,
    clock: deps.clock,
    cache: false,
    extraHeaders: { "X-Certfleet-Aws-Role-Arn": config.role_arn, "X-Certfleet-Aws-Region": config.region },
    fetchToken: (signal) => readTokenFile("aws_oidc", path, signal),
  });
}
