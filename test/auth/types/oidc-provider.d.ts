// Minimal typings for the parts of oidc-provider v9 the test harness uses (the package ships none).
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  class OidcError extends Error {}
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    static errors: { InvalidTarget: new (description?: string) => OidcError };
  }
}
