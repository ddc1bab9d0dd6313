import { z } from "zod";
import { UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord } from "../../dns-provider.js";
import {
  apiUrl,
  cleanupSignal,
  createKeyedMutex,
  createProviderHttp,
  isOAuthCredentialError,
  relativeName,
  requestTimeoutSchema,
  backOffAfterConflict,
} from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";
import { createAzureTokenSource, type AzureAuth } from "./azure-token.js";

/**
 * Azure DNS through Azure Resource Manager. A TXT record set holds every value at one name; it is
 * read, changed and written back with its ETag (`If-Match`, or `If-None-Match: *` when creating), so
 * a concurrent writer makes the write fail with 412 and we read again instead of dropping its value.
 * The last value removed deletes the set (also ETag-guarded).
 */
export const azureConfigSchema = z
  .strictObject({
    subscriptionId: z.string().min(1).describe("Azure subscription holding the DNS zone"),
    resourceGroup: z.string().min(1).describe("Resource group holding the DNS zone"),
    zoneName: z
      .string()
      .min(1)
      .optional()
      .describe("DNS zone resource name; defaults to the zone found for each record."),
    tenantId: z.string().min(1).optional().describe("Entra ID tenant (directory) id"),
    clientId: z
      .string()
      .min(1)
      .optional()
      .describe("App registration (client secret / workload identity) or user-assigned managed identity."),
    clientSecret: z.string().min(1).optional().describe("Client secret of the app registration"),
    federatedTokenFile: z
      .string()
      .min(1)
      .optional()
      .describe("Workload identity: file holding the federated token (AZURE_FEDERATED_TOKEN_FILE)."),
    authMethod: z
      .enum(["client_secret", "workload_identity", "managed_identity"])
      .optional()
      .describe(
        "Default: client_secret when clientSecret is set, workload_identity when federatedTokenFile is, else managed_identity.",
      ),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .describe("TTL of created TXT records in seconds (default: the challenge TTL)"),
    managementUrl: z
      .url()
      .default("https://management.azure.com")
      .describe("Azure Resource Manager endpoint"),
    loginUrl: z
      .url()
      .default("https://login.microsoftonline.com")
      .describe("Entra ID authority host (AZURE_AUTHORITY_HOST)."),
    imdsUrl: z
      .url()
      .default("http://169.254.169.254/metadata/identity/oauth2/token")
      .describe("Managed identity token endpoint (IMDS)"),
    resource: z
      .url()
      .default("https://management.azure.com/")
      .describe("Token audience for Resource Manager."),
    apiVersion: z.string().min(1).default("2018-05-01").describe("Resource Manager API version for DNS"),
    timeoutMs: requestTimeoutSchema,
  })
  .refine((c) => resolveAuthMethod(c) !== "client_secret" || (c.tenantId && c.clientId && c.clientSecret), {
    message: "client secret auth needs tenantId, clientId and clientSecret",
  })
  .refine(
    (c) => resolveAuthMethod(c) !== "workload_identity" || (c.tenantId && c.clientId && c.federatedTokenFile),
    {
      message: "workload identity needs tenantId, clientId and federatedTokenFile",
    },
  );

export type AzureConfig = z.infer<typeof azureConfigSchema>;

function resolveAuthMethod(c: {
  authMethod?: AzureAuth["method"];
  clientSecret?: string;
  federatedTokenFile?: string;
}): AzureAuth["method"] {
  return (
    c.authMethod ??
    (c.clientSecret ? "client_secret" : c.federatedTokenFile ? "workload_identity" : "managed_identity")
  );
}

function authFromConfig(c: AzureConfig): AzureAuth {
  switch (resolveAuthMethod(c)) {
    case "client_secret":
      return {
        method: "client_secret",
        tenantId: c.tenantId!,
        clientId: c.clientId!,
        clientSecret: c.clientSecret!,
        loginUrl: c.loginUrl,
      };
    case "workload_identity":
      return {
        method: "workload_identity",
        tenantId: c.tenantId!,
        clientId: c.clientId!,
        federatedTokenFile: c.federatedTokenFile!,
        loginUrl: c.loginUrl,
      };
    case "managed_identity":
      return { method: "managed_identity", clientId: c.clientId, imdsUrl: c.imdsUrl };
  }
}

interface RecordSet {
  etag?: string;
  properties?: { TTL?: number; TXTRecords?: { value: string[] }[] };
}

export function createAzureProvider(config: AzureConfig, deps: DnsProviderDeps): DnsProvider {
  const id = "azure";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
    isAuthFailure: isOAuthCredentialError,
  });
  const tokens = createAzureTokenSource({
    auth: authFromConfig(config),
    resource: config.resource,
    http,
    clock: deps.clock,
  });
  const exclusive = createKeyedMutex();

  function recordSetUrl(record: TxtRecord): URL {
    const zone = config.zoneName ?? record.zone;
    const path =
      `/subscriptions/${encodeURIComponent(config.subscriptionId)}/resourceGroups/${encodeURIComponent(config.resourceGroup)}` +
      `/providers/Microsoft.Network/dnsZones/${encodeURIComponent(zone)}/TXT/${encodeURIComponent(relativeName(record.name, zone))}`;
    return apiUrl(config.managementUrl, path, { "api-version": config.apiVersion });
  }

  async function update(
    record: TxtRecord,
    signal: AbortSignal,
    next: (values: string[]) => string[] | undefined,
  ): Promise<void> {
    const url = recordSetUrl(record);
    await exclusive(record.name, async () => {
      for (let attempt = 1; ; attempt++) {
        throwIfAborted(signal);
        const authorization = `Bearer ${await tokens.token(record.zone, signal)}`;
        const got = await http.request({
          method: "GET",
          url,
          headers: { authorization },
          accept: [404],
          zone: record.zone,
          action: "read the TXT record set",
          signal,
        });
        const current = got.status === 404 ? undefined : got.json<RecordSet>();
        const values = (current?.properties?.TXTRecords ?? []).map((r) => r.value.join(""));
        const wanted = next(values);
        if (wanted === undefined) return;

        const guard: Record<string, string> = current?.etag
          ? { "if-match": current.etag }
          : current
            ? {}
            : { "if-none-match": "*" };
        const response =
          wanted.length > 0
            ? await http.request({
                method: "PUT",
                url,
                headers: { authorization, ...guard },
                json: {
                  properties: {
                    TTL: config.ttl ?? record.ttl,
                    TXTRecords: wanted.map((v) => ({ value: [v] })),
                  },
                },
                accept: [404, 409, 412],
                zone: record.zone,
                action: "write the TXT record set",
                signal,
              })
            : await http.request({
                method: "DELETE",
                url,
                headers: { authorization, ...guard },
                accept: [404, 412],
                zone: record.zone,
                action: "delete the TXT record set",
                signal,
              });
        if (response.status === 404 && wanted.length > 0) {
          throw new UpstreamError(
            "dns_zone_not_found",
            `azure: DNS zone ${config.zoneName ?? record.zone} not found in resource group ${config.resourceGroup}`,
            {
              retryable: false,
              internal: response.text.slice(0, 1024),
              details: { provider: id, zone: record.zone },
            },
          );
        }
        if (response.status === 409 || response.status === 412) {
          await backOffAfterConflict(attempt, { provider: id, zone: record.zone, name: record.name }, signal);
          continue;
        }
        return;
      }
    });
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      await update(record, signal, (values) =>
        values.includes(record.value) ? undefined : [...values, record.value],
      );
    },
    async deleteTxt(record) {
      const signal = cleanupSignal(config.timeoutMs * 4);
      await update(record, signal, (values) =>
        values.includes(record.value) ? values.filter((v) => v !== record.value) : undefined,
      );
    },
  };
}

export const azureProviderDefinition = defineDnsProvider<AzureConfig>({
  id: "azure",
  aliases: ["azure-dns"],
  legoCode: "azuredns",
  legoEnv: {
    AZURE_CLIENT_ID: "clientId",
    AZURE_CLIENT_SECRET: "clientSecret",
    AZURE_TENANT_ID: "tenantId",
    AZURE_SUBSCRIPTION_ID: "subscriptionId",
    AZURE_RESOURCE_GROUP: "resourceGroup",
    AZURE_ZONE_NAME: "zoneName",
    AZURE_FEDERATED_TOKEN_FILE: "federatedTokenFile",
    AZURE_AUTHORITY_HOST: "loginUrl",
    AZURE_TTL: "ttl",
  },
  description:
    "Azure DNS via Resource Manager: client secret, workload identity (federated token file) or managed identity.",
  schema: azureConfigSchema,
  secretFields: ["clientSecret"],
  propagation: { timeoutMs: 180_000, intervalMs: 5_000 },
  create: (config, deps) => createAzureProvider(config, deps),
});
