import { randomBytes } from "node:crypto";
import {
  Violation,
  bearer,
  check,
  route,
  startLoopbackApi,
  type ApiReply,
  type LoopbackApi,
  type TxtChangeHook,
} from "./loopback-api.js";

/**
 * Cloudflare API v4 double: GET /zones?name=, GET/POST /zones/:id/dns_records, DELETE
 * /zones/:id/dns_records/:rid, with Bearer-token auth answered the way Cloudflare does (403 + code 10000
 * for an unknown token) and "identical record already exists" (81058) for duplicates.
 */
export interface CloudflareApi extends LoopbackApi {
  zoneId(zone: string): string;
  recordCount(): number;
}

interface Rec {
  id: string;
  zoneId: string;
  name: string;
  content: string;
  ttl: number;
}

export async function startCloudflareApi(options: {
  token: string;
  zones: string[];
  onChange?: TxtChangeHook;
}): Promise<CloudflareApi> {
  const zones = new Map(options.zones.map((z) => [randomBytes(16).toString("hex"), z]));
  const records = new Map<string, Rec>();
  const ok = (result: unknown, status = 200): ApiReply => ({
    status,
    json: { success: true, errors: [], messages: [], result },
  });
  const fail = (status: number, code: number, message: string): ApiReply => ({
    status,
    json: { success: false, errors: [{ code, message }], messages: [], result: null },
  });

  const api = await startLoopbackApi({
    name: "cloudflare",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      check(req.headers["x-auth-key"] === undefined, "a token request must not also send X-Auth-Key");
      const token = bearer(req) ?? "";
      if (!/^[A-Za-z0-9_-]{8,}$/.test(token)) {
        // What Cloudflare answers for a malformed token: 400, not 401/403.
        return {
          status: 400,
          json: {
            success: false,
            errors: [
              {
                code: 6003,
                message: "Invalid request headers",
                error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }],
              },
            ],
            messages: [],
            result: null,
          },
        };
      }
      if (token !== options.token) return fail(403, 10000, "Authentication error");
      check(req.path.startsWith("/client/v4/"), `path outside /client/v4: ${req.path}`);
      const path = req.path.slice("/client/v4".length);

      if (req.method === "GET" && path === "/zones") {
        const name = req.query.get("name");
        const result = [...zones]
          .filter(([, z]) => name === null || z === name)
          .map(([id, z]) => ({ id, name: z, status: "active" }));
        return {
          status: 200,
          json: { success: true, errors: [], result, result_info: { page: 1, total_pages: 1 } },
        };
      }

      const list = route<"zone">(path, "/zones/:zone/dns_records");
      if (list) {
        const zone = zones.get(list.zone);
        if (!zone)
          return fail(404, 7003, "Could not route to /zones/..., perhaps your object identifier is invalid?");
        if (req.method === "GET") {
          const type = req.query.get("type");
          const name = req.query.get("name");
          const content = req.query.get("content");
          const result = [...records.values()].filter(
            (r) =>
              r.zoneId === list.zone &&
              (type === null || type === "TXT") &&
              (name === null || r.name === name) &&
              (content === null || r.content === content),
          );
          return ok(result.map((r) => ({ ...r, type: "TXT", zone_id: r.zoneId, zone_name: zone })));
        }
        check(req.method === "POST", `unexpected ${req.method} on dns_records`);
        check(
          req.headers["content-type"]?.startsWith("application/json"),
          "POST without a JSON content type",
        );
        const body = json<{ type?: string; name?: string; content?: string; ttl?: number }>();
        check(body.type === "TXT", `type must be TXT, got ${body.type}`);
        check(
          typeof body.name === "string" && (body.name === zone || body.name.endsWith("." + zone)),
          `name ${body.name} outside ${zone}`,
        );
        check(typeof body.content === "string" && body.content.length > 0, "content missing");
        check(
          body.ttl === 1 || (typeof body.ttl === "number" && body.ttl >= 60 && body.ttl <= 86400),
          `bad ttl ${body.ttl}`,
        );
        const dup = [...records.values()].find(
          (r) => r.zoneId === list.zone && r.name === body.name && r.content === body.content,
        );
        if (dup) return fail(400, 81058, "An identical record already exists.");
        const rec: Rec = {
          id: randomBytes(16).toString("hex"),
          zoneId: list.zone,
          name: body.name,
          content: body.content,
          ttl: body.ttl,
        };
        records.set(rec.id, rec);
        await store.add(rec.name, rec.content);
        return ok({ ...rec, type: "TXT", zone_id: rec.zoneId, zone_name: zone });
      }

      const one = route<"zone" | "id">(path, "/zones/:zone/dns_records/:id");
      if (one) {
        check(req.method === "DELETE", `unexpected ${req.method} on a record`);
        const rec = records.get(one.id);
        if (!rec || rec.zoneId !== one.zone) return fail(404, 81044, "Record does not exist.");
        records.delete(rec.id);
        await store.remove(rec.name, rec.content);
        return ok({ id: rec.id });
      }
      throw new Violation("no such endpoint");
    },
  });
  return {
    ...api,
    url: `${api.url}/client/v4`,
    zoneId: (zone) => [...zones].find(([, z]) => z === zone)![0],
    recordCount: () => records.size,
  };
}
