import { randomBytes } from "node:crypto";
import {
  Violation,
  check,
  route,
  startLoopbackApi,
  type LoopbackApi,
  type TxtChangeHook,
} from "./loopback-api.js";

/**
 * Hetzner DNS Console API double (/api/v1): GET /zones?name=, GET /records?zone_id=, POST /records,
 * DELETE /records/:id; `Auth-API-Token` header answered with 401 on a wrong token.
 */
interface Rec {
  id: string;
  zone_id: string;
  name: string;
  value: string;
  ttl: number;
}

export async function startHetznerApi(options: {
  token: string;
  zones: string[];
  onChange?: TxtChangeHook;
}): Promise<LoopbackApi & { recordCount(): number }> {
  const zones = new Map(options.zones.map((z) => [randomBytes(11).toString("base64url"), z]));
  const records = new Map<string, Rec>();
  const fqdn = (r: Rec) => (r.name === "@" ? zones.get(r.zone_id)! : `${r.name}.${zones.get(r.zone_id)!}`);
  const view = (r: Rec) => ({ ...r, type: "TXT", created: "2026-01-01 00:00:00 +0000 UTC" });

  const api = await startLoopbackApi({
    name: "hetzner",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      check(req.headers.authorization === undefined, "Hetzner DNS does not use an Authorization header");
      if (req.headers["auth-api-token"] !== options.token) {
        return { status: 401, json: { message: "Invalid authentication credentials" } };
      }
      check(req.path.startsWith("/api/v1/"), `path outside /api/v1: ${req.path}`);
      const path = req.path.slice("/api/v1".length);
      if (req.method === "GET" && path === "/zones") {
        const name = req.query.get("name");
        const found = [...zones]
          .filter(([, z]) => name === null || z === name)
          .map(([id, z]) => ({ id, name: z, ttl: 86400 }));
        if (name !== null && found.length === 0) {
          return { status: 404, json: { zones: [], error: { message: "zone not found", code: 404 } } };
        }
        return {
          status: 200,
          json: { zones: found, meta: { pagination: { page: 1, per_page: 100, last_page: 1 } } },
        };
      }
      if (path === "/records" && req.method === "GET") {
        const zoneId = req.query.get("zone_id");
        check(zoneId !== null && zones.has(zoneId), `unknown zone_id ${zoneId}`);
        return {
          status: 200,
          json: { records: [...records.values()].filter((r) => r.zone_id === zoneId).map(view) },
        };
      }
      if (path === "/records") {
        check(req.method === "POST", `unexpected ${req.method}`);
        check(
          req.headers["content-type"]?.startsWith("application/json"),
          "POST without a JSON content type",
        );
        const body = json<Partial<Rec> & { type?: string }>();
        check(typeof body.zone_id === "string" && zones.has(body.zone_id), `unknown zone_id ${body.zone_id}`);
        check(body.type === "TXT", `type must be TXT, got ${body.type}`);
        check(
          typeof body.name === "string" &&
            !body.name.endsWith(".") &&
            !body.name.endsWith(zones.get(body.zone_id)!),
          `name must be relative, got ${body.name}`,
        );
        check(typeof body.value === "string" && body.value.length > 0, "value missing");
        check(
          body.ttl === undefined || (typeof body.ttl === "number" && body.ttl >= 60),
          `bad ttl ${body.ttl}`,
        );
        const rec: Rec = {
          id: randomBytes(16).toString("hex"),
          zone_id: body.zone_id,
          name: body.name,
          value: body.value,
          ttl: body.ttl ?? 86400,
        };
        records.set(rec.id, rec);
        await store.add(fqdn(rec), rec.value);
        return { status: 200, json: { record: view(rec) } };
      }
      const one = route<"id">(path, "/records/:id");
      if (!one) throw new Violation("no such endpoint");
      check(req.method === "DELETE", `unexpected ${req.method} on a record`);
      const rec = records.get(one.id);
      if (!rec)
        return { status: 404, json: { record: {}, error: { message: "record not found", code: 404 } } };
      records.delete(rec.id);
      await store.remove(fqdn(rec), rec.value);
      return { status: 200, text: "" };
    },
  });
  return { ...api, url: `${api.url}/api/v1`, recordCount: () => records.size };
}
