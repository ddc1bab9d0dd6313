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
 * DigitalOcean v2 domains API double: GET/POST /v2/domains/:domain/records, DELETE
 * /v2/domains/:domain/records/:id, GET /v2/domains; Bearer auth answered with 401 "unauthorized".
 */
interface Rec {
  id: number;
  domain: string;
  name: string;
  data: string;
  ttl: number;
}

export async function startDigitalOceanApi(options: {
  token: string;
  domains: string[];
  onChange?: TxtChangeHook;
}): Promise<LoopbackApi & { recordCount(): number }> {
  const records = new Map<number, Rec>();
  let nextId = 1000;
  const fqdn = (r: Rec) => (r.name === "@" ? r.domain : `${r.name}.${r.domain}`);
  const view = (r: Rec) => ({
    id: r.id,
    type: "TXT",
    name: r.name,
    data: r.data,
    ttl: r.ttl,
    priority: null,
  });

  const api = await startLoopbackApi({
    name: "digitalocean",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      if (bearer(req) !== options.token) {
        return { status: 401, json: { id: "unauthorized", message: "Unable to authenticate you." } };
      }
      if (req.method === "GET" && req.path === "/v2/domains") {
        return {
          status: 200,
          json: {
            domains: options.domains.map((name) => ({ name, ttl: 1800 })),
            links: {},
            meta: { total: options.domains.length },
          },
        };
      }
      const list = route<"domain">(req.path, "/v2/domains/:domain/records");
      const one = route<"domain" | "id">(req.path, "/v2/domains/:domain/records/:id");
      const domain = list?.domain ?? one?.domain;
      if (domain === undefined) throw new Violation("no such endpoint");
      if (!options.domains.includes(domain)) {
        return {
          status: 404,
          json: { id: "not_found", message: "The resource you were accessing could not be found." },
        };
      }
      if (list && req.method === "GET") {
        const type = req.query.get("type");
        const name = req.query.get("name");
        check(name === null || name.endsWith(domain), `name filter must be a full name, got ${name}`);
        const found = [...records.values()].filter(
          (r) =>
            r.domain === domain && (type === null || type === "TXT") && (name === null || fqdn(r) === name),
        );
        return {
          status: 200,
          json: { domain_records: found.map(view), links: {}, meta: { total: found.length } },
        };
      }
      if (list) {
        check(req.method === "POST", `unexpected ${req.method}`);
        check(
          req.headers["content-type"]?.startsWith("application/json"),
          "POST without a JSON content type",
        );
        const body = json<{ type?: string; name?: string; data?: string; ttl?: number }>();
        check(body.type === "TXT", `type must be TXT, got ${body.type}`);
        check(
          typeof body.name === "string" && !body.name.endsWith("."),
          `name must be relative, got ${body.name}`,
        );
        check(!body.name.endsWith(domain), `name must be relative to the domain, got ${body.name}`);
        check(typeof body.data === "string" && body.data.length > 0, "data missing");
        check(typeof body.ttl === "number" && body.ttl >= 30, `bad ttl ${body.ttl}`);
        const rec: Rec = { id: nextId++, domain, name: body.name, data: body.data, ttl: body.ttl };
        records.set(rec.id, rec);
        await store.add(fqdn(rec), rec.data);
        return { status: 201, json: { domain_record: view(rec) } };
      }
      check(req.method === "DELETE", `unexpected ${req.method} on a record`);
      const rec = records.get(Number(one!.id));
      if (!rec || rec.domain !== domain)
        return { status: 404, json: { id: "not_found", message: "not found" } };
      records.delete(rec.id);
      await store.remove(fqdn(rec), rec.data);
      return { status: 204 };
    },
  });
  return { ...api, recordCount: () => records.size };
}
