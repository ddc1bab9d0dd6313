import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { decodeProtectedHeader, jwtVerify } from "jose";
import {
  Violation,
  bearer,
  check,
  route,
  startLoopbackApi,
  type LoopbackApi,
  type TxtChangeHook,
} from "./loopback-api.js";

/**
 * Google OAuth token endpoint + Cloud DNS v1 double, in one loopback server:
 * - POST /token: RFC 7523 JWT-bearer grant; the assertion must be RS256, signed by a registered
 *   service-account key, iss = client_email, aud = this token endpoint, scope = Cloud DNS; otherwise
 *   400 invalid_grant like Google.
 * - /dns/v1/projects/:p/managedZones?dnsName=, …/rrsets?name=&type=TXT, POST …/changes (deletions
 *   must equal the current set → else 412 conditionNotMet; additions over an existing set → 409
 *   alreadyExists), GET …/changes/:id ("pending" once, then "done").
 */
export interface GoogleCloudApi extends LoopbackApi {
  /** A service-account key JSON the double accepts, with token_uri pointing at it. */
  serviceAccountJson(): string;
  /** Same shape, but signed by a key the double does not know. */
  unknownServiceAccountJson(): string;
  tokenRequests(): number;
}

interface RRSet {
  name: string;
  type: string;
  ttl: number;
  rrdatas: string[];
}

export async function startGoogleCloudApi(options: {
  project: string;
  zones: string[];
  onChange?: TxtChangeHook;
  /** Delay every changes POST, to widen race windows. */
  changeDelayMs?: number;
}): Promise<GoogleCloudApi> {
  const email = `certfleet@${options.project}.iam.gserviceaccount.com`;
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyId = randomBytes(8).toString("hex");
  const keys = new Map<string, KeyObject>([[keyId, publicKey]]);
  const tokens = new Set<string>();
  const zones = new Map(options.zones.map((z, i) => [`zone-${i}`, `${z}.`]));
  const sets = new Map<string, RRSet>();
  const changes = new Map<string, { polled: number }>();
  let url = "";
  let tokenCount = 0;

  const unquote = (d: string) => (d.startsWith('"') && d.endsWith('"') ? d.slice(1, -1) : d);
  const oauthError = (description: string) => ({
    status: 400,
    json: { error: "invalid_grant", error_description: description },
  });
  const googleError = (status: number, reason: string, message: string) => ({
    status,
    json: { error: { code: status, message, errors: [{ domain: "global", reason, message }] } },
  });

  const api = await startLoopbackApi({
    name: "googlecloud",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      if (req.path === "/token") {
        tokenCount += 1;
        check(req.method === "POST", "token endpoint takes POST");
        check(
          req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded"),
          "token request must be form-encoded",
        );
        const form = new URLSearchParams(req.body);
        check(
          form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer",
          `grant_type ${form.get("grant_type")}`,
        );
        const assertion = form.get("assertion");
        check(assertion, "assertion missing");
        const header = decodeProtectedHeader(assertion);
        check(header.alg === "RS256", `assertion alg ${header.alg}`);
        const key = keys.get(String(header.kid));
        if (!key) return oauthError("Invalid JWT Signature.");
        try {
          const { payload } = await jwtVerify(assertion, key, {
            algorithms: ["RS256"],
            issuer: email,
            audience: `${url}/token`,
          });
          check(
            payload.scope === "https://www.googleapis.com/auth/ndev.clouddns.readwrite",
            `scope ${String(payload.scope)}`,
          );
          check(
            typeof payload.exp === "number" &&
              typeof payload.iat === "number" &&
              payload.exp - payload.iat <= 3600,
            "exp - iat over an hour",
          );
        } catch (e) {
          if (e instanceof Violation) throw e;
          return oauthError("Invalid JWT Signature.");
        }
        const token = `ya29.${randomBytes(24).toString("base64url")}`;
        tokens.add(token);
        return { status: 200, json: { access_token: token, expires_in: 3599, token_type: "Bearer" } };
      }

      const t = bearer(req);
      if (!t || !tokens.has(t))
        return googleError(401, "authError", "Request had invalid authentication credentials.");
      check(req.path.startsWith("/dns/v1/"), `path outside /dns/v1: ${req.path}`);
      const path = req.path.slice("/dns/v1".length);

      const list = route<"p">(path, "/projects/:p/managedZones");
      if (list) {
        check(req.method === "GET", `unexpected ${req.method}`);
        if (list.p !== options.project) return googleError(403, "forbidden", "Forbidden");
        const dnsName = req.query.get("dnsName");
        check(dnsName === null || dnsName.endsWith("."), `dnsName must end with a dot: ${dnsName}`);
        const managedZones = [...zones]
          .filter(([, d]) => dnsName === null || d === dnsName)
          .map(([name, d]) => ({ kind: "dns#managedZone", name, dnsName: d, visibility: "public" }));
        return { status: 200, json: { managedZones } };
      }

      const rr = route<"p" | "z">(path, "/projects/:p/managedZones/:z/rrsets");
      const ch = route<"p" | "z">(path, "/projects/:p/managedZones/:z/changes");
      const one = route<"p" | "z" | "id">(path, "/projects/:p/managedZones/:z/changes/:id");
      const target = rr ?? ch ?? one;
      if (!target) throw new Violation("no such endpoint");
      check(target.p === options.project, `project ${target.p}`);
      const zoneName = zones.get(target.z);
      if (!zoneName)
        return googleError(
          404,
          "notFound",
          `The 'parameters.managedZone' resource named '${target.z}' does not exist.`,
        );

      if (rr) {
        check(req.method === "GET", `unexpected ${req.method}`);
        const name = req.query.get("name");
        check(name !== null && name.endsWith("."), `rrsets name must be absolute with a dot: ${name}`);
        check(req.query.get("type") === "TXT", "rrsets type must be TXT");
        const set = sets.get(name);
        return {
          status: 200,
          json: {
            kind: "dns#resourceRecordSetsListResponse",
            rrsets: set ? [{ kind: "dns#resourceRecordSet", ...set }] : [],
          },
        };
      }

      if (one) {
        check(req.method === "GET", `unexpected ${req.method}`);
        const c = changes.get(one.id);
        if (!c) return googleError(404, "notFound", "change not found");
        c.polled += 1;
        return {
          status: 200,
          json: { kind: "dns#change", id: one.id, status: c.polled > 1 ? "done" : "pending" },
        };
      }

      check(req.method === "POST", `unexpected ${req.method} on changes`);
      check(req.headers["content-type"]?.startsWith("application/json"), "POST without a JSON content type");
      const body = json<{ additions?: RRSet[]; deletions?: RRSet[] }>();
      check((body.additions?.length ?? 0) + (body.deletions?.length ?? 0) > 0, "empty change");
      for (const s of [...(body.additions ?? []), ...(body.deletions ?? [])]) {
        check(s.type === "TXT", `type ${s.type}`);
        check(s.name.endsWith(zoneName) && s.name.endsWith("."), `name ${s.name} outside ${zoneName}`);
        check(Array.isArray(s.rrdatas) && s.rrdatas.length > 0, "rrdatas empty");
        check(
          s.rrdatas.every((d) => /^"[^"]*"$/.test(d)),
          `rrdatas must be quoted strings: ${JSON.stringify(s.rrdatas)}`,
        );
        check(typeof s.ttl === "number" && s.ttl > 0, `ttl ${s.ttl}`);
      }
      if (options.changeDelayMs) await new Promise((r) => setTimeout(r, options.changeDelayMs));
      // Validate the whole change against the current state, then apply it atomically.
      for (const d of body.deletions ?? []) {
        const cur = sets.get(d.name);
        if (!cur || cur.ttl !== d.ttl || JSON.stringify(cur.rrdatas) !== JSON.stringify(d.rrdatas)) {
          return googleError(
            412,
            "conditionNotMet",
            `Precondition not met for 'entity.change.deletions[${d.name}][TXT]'`,
          );
        }
      }
      const deleted = new Set((body.deletions ?? []).map((d) => d.name));
      for (const a of body.additions ?? []) {
        if (sets.has(a.name) && !deleted.has(a.name)) {
          return googleError(
            409,
            "alreadyExists",
            `The resource 'entity.change.additions[${a.name}][TXT]' named '${a.name} (TXT)' already exists`,
          );
        }
      }
      const touched = new Set<string>();
      for (const d of body.deletions ?? []) {
        sets.delete(d.name);
        touched.add(d.name);
      }
      for (const a of body.additions ?? []) {
        sets.set(a.name, { name: a.name, type: "TXT", ttl: a.ttl, rrdatas: [...a.rrdatas] });
        touched.add(a.name);
      }
      for (const n of touched) await store.set(n, (sets.get(n)?.rrdatas ?? []).map(unquote));
      const changeId = String(changes.size + 1);
      changes.set(changeId, { polled: 0 });
      return { status: 200, json: { kind: "dns#change", id: changeId, status: "pending", ...body } };
    },
  });
  url = api.url;

  const keyJson = (pem: string, kid: string) =>
    JSON.stringify({
      type: "service_account",
      project_id: options.project,
      private_key_id: kid,
      private_key: pem,
      client_email: email,
      client_id: "1234567890",
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: `${url}/token`,
    });
  return {
    ...api,
    url: `${api.url}/dns/v1`,
    serviceAccountJson: () => keyJson(privateKey.export({ type: "pkcs8", format: "pem" }).toString(), keyId),
    unknownServiceAccountJson: () =>
      keyJson(
        other.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        randomBytes(8).toString("hex"),
      ),
    tokenRequests: () => tokenCount,
  };
}
