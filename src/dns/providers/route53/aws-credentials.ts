import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../../../core/clock.js";
import { UpstreamError } from "../../../core/errors.js";
import { untilAborted, type ProviderHttp } from "../../http.js";
import { parseXml, textAt } from "./xml.js";

/**
 * Where Route 53 credentials come from, in this order:
 * 1. static keys in the config (optionally with a session token);
 * 2. web identity: a role ARN + a token file (Kubernetes IRSA, GitHub OIDC, …) exchanged at STS with
 *    AssumeRoleWithWebIdentity, re-read and re-exchanged before the temporary keys expire;
 * 3. a profile from the shared credentials file (`~/.aws/credentials`, re-read on every use so a
 *    rotated file is picked up).
 */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsCredentialSource {
  readonly kind: "static" | "web-identity" | "profile";
  get(zone: string, signal: AbortSignal): Promise<AwsCredentials>;
}

export interface AwsCredentialOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  roleArn?: string;
  webIdentityTokenFile?: string;
  roleSessionName: string;
  stsEndpoint: string;
  profile?: string;
  sharedCredentialsFile?: string;
}

const PROVIDER = "route53";
/** STS error codes that mean "these credentials are wrong", whatever the HTTP status. */
const STS_AUTH_CODES = [
  "InvalidIdentityToken",
  "ExpiredTokenException",
  "AccessDenied",
  "InvalidClientTokenId",
  "IDPRejectedClaim",
];

export function isAwsCredentialError(status: number, body: string): boolean {
  return status === 400 && STS_AUTH_CODES.some((c) => body.includes(`<Code>${c}</Code>`));
}

export function createAwsCredentialSource(
  options: AwsCredentialOptions,
  http: ProviderHttp,
  clock: Clock,
): AwsCredentialSource {
  if (options.accessKeyId !== undefined && options.secretAccessKey !== undefined) {
    const creds: AwsCredentials = {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
    };
    return { kind: "static", get: async () => creds };
  }
  if (options.roleArn !== undefined && options.webIdentityTokenFile !== undefined) {
    return webIdentitySource(options, options.roleArn, options.webIdentityTokenFile, http, clock);
  }
  return profileSource(
    options.profile ?? "default",
    options.sharedCredentialsFile ?? join(homedir(), ".aws", "credentials"),
  );
}

function webIdentitySource(
  options: AwsCredentialOptions,
  roleArn: string,
  tokenFile: string,
  http: ProviderHttp,
  clock: Clock,
): AwsCredentialSource {
  let cached: { creds: AwsCredentials; refreshAt: number } | undefined;
  let inFlight: Promise<AwsCredentials> | undefined;

  async function exchange(zone: string, signal: AbortSignal): Promise<AwsCredentials> {
    const token = (await readConfigFile(tokenFile, "web identity token file")).trim();
    const response = await http.request({
      method: "POST",
      url: options.stsEndpoint,
      form: {
        Action: "AssumeRoleWithWebIdentity",
        Version: "2011-06-15",
        RoleArn: roleArn,
        RoleSessionName: options.roleSessionName,
        WebIdentityToken: token,
        DurationSeconds: "3600",
      },
      headers: { accept: "text/xml" },
      zone,
      action: "assume the role with the web identity token",
      signal,
    });
    const doc = parseXmlOrFail(response.text, zone);
    const c = ["AssumeRoleWithWebIdentityResult", "Credentials"] as const;
    const accessKeyId = textAt(doc, ...c, "AccessKeyId");
    const secretAccessKey = textAt(doc, ...c, "SecretAccessKey");
    const sessionToken = textAt(doc, ...c, "SessionToken");
    const expiration = Date.parse(textAt(doc, ...c, "Expiration") ?? "");
    if (!accessKeyId || !secretAccessKey || !sessionToken) {
      throw new UpstreamError("dns_provider_error", `route53: STS returned no credentials (zone ${zone})`, {
        details: { provider: PROVIDER, zone },
      });
    }
    const now = clock.now().getTime();
    const expiresAt = Number.isNaN(expiration) ? now + 15 * 60_000 : expiration;
    // Refresh five minutes early (or half-way through a very short session).
    cached = {
      creds: { accessKeyId, secretAccessKey, sessionToken },
      refreshAt: expiresAt - Math.min(5 * 60_000, (expiresAt - now) / 2),
    };
    return cached.creds;
  }

  return {
    kind: "web-identity",
    async get(zone, signal) {
      if (cached && clock.now().getTime() < cached.refreshAt) return cached.creds;
      inFlight ??= exchange(zone, AbortSignal.timeout(60_000)).finally(() => {
        inFlight = undefined;
      });
      return untilAborted(inFlight, signal);
    },
  };
}

function profileSource(profile: string, file: string): AwsCredentialSource {
  return {
    kind: "profile",
    async get(zone) {
      const section = parseIni(await readConfigFile(file, "shared credentials file"))[profile];
      const accessKeyId = section?.aws_access_key_id;
      const secretAccessKey = section?.aws_secret_access_key;
      if (!accessKeyId || !secretAccessKey) {
        throw new UpstreamError(
          "dns_provider_auth",
          `route53: profile "${profile}" has no keys in ${file} (zone ${zone})`,
          {
            retryable: false,
            details: { provider: PROVIDER, zone, profile },
          },
        );
      }
      return {
        accessKeyId,
        secretAccessKey,
        ...(section.aws_session_token ? { sessionToken: section.aws_session_token } : {}),
      };
    },
  };
}

/** The INI dialect of ~/.aws/credentials: `[name]` sections, `key = value`, `#`/`;` comments. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = out[section[1]!] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && current) current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return out;
}

async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UpstreamError("dns_provider_config", `route53: cannot read the ${what} ${path}`, {
      retryable: false,
      cause: e,
      details: { provider: PROVIDER, path },
    });
  }
}

function parseXmlOrFail(text: string, zone: string) {
  try {
    return parseXml(text);
  } catch (e) {
    throw new UpstreamError("dns_provider_error", `route53: unreadable XML from AWS (zone ${zone})`, {
      cause: e,
      internal: text.slice(0, 512),
      details: { provider: PROVIDER, zone },
    });
  }
}
