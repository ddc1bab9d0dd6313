import { DnsProviderRegistry, type DnsProviderDefinition } from "../registry.js";
import { cloudflareProviderDefinition } from "./cloudflare/cloudflare-provider.js";
import { execProviderDefinition } from "./exec/exec-provider.js";
import { rfc2136ProviderDefinition } from "./rfc2136/rfc2136-provider.js";
import { digitalOceanProviderDefinition } from "./digitalocean/digitalocean-provider.js";
import { hetznerProviderDefinition } from "./hetzner/hetzner-provider.js";
import { googleCloudProviderDefinition } from "./googlecloud/googlecloud-provider.js";
import { route53ProviderDefinition } from "./route53/route53-provider.js";
import { azureProviderDefinition } from "./azure/azure-provider.js";
import { acmeDnsProviderDefinition } from "./acmedns/acmedns-provider.js";
import { acmeShProviderDefinition } from "./acmesh/acmesh-provider.js";

/**
 * Every DNS provider certfleet ships. Each entry is one provider's metadata + factory; add a provider by
 * importing its definition and adding one line to the list (keep it alphabetical).
 */
export const dnsProviderDefinitions: DnsProviderDefinition<never>[] = [
  acmeDnsProviderDefinition,
  acmeShProviderDefinition,
  azureProviderDefinition,
  cloudflareProviderDefinition,
  digitalOceanProviderDefinition,
  execProviderDefinition,
  googleCloudProviderDefinition,
  hetznerProviderDefinition,
  rfc2136ProviderDefinition,
  route53ProviderDefinition,
];

export function createDnsProviderRegistry(
  definitions: readonly DnsProviderDefinition<never>[] = dnsProviderDefinitions,
): DnsProviderRegistry {
  return new DnsProviderRegistry(definitions);
}
