import { randomBytes } from "node:crypto";
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
 * A small record API for the fake acme.sh script the acmesh bridge test writes (dns_test.sh):
 * POST /records {name, value} (JSON, Bearer token) → {ok:true,id}; GET /records?name= → list;
 * DELETE /records/:id. It checks what the shim's _post/_get send: method, headers set through
 * _H1.._H5, content type, user agent, body.
 */
export async function startAcmeShTestApi(options: {
  token: string;
  onChange?: TxtChangeHook;
}): Promise<LoopbackApi> {
  const records = new Map<string, { name: string; value: string }>();
  return startLoopbackApi({
    name: "acmesh-test",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      check(
        req.headers["user-agent"]?.startsWith("certfleet-acmesh-bridge"),
        `user agent ${req.headers["user-agent"]}`,
      );
      if (bearer(req) !== options.token) return { status: 401, json: { ok: false, error: "bad token" } };
      if (req.path === "/records" && req.method === "POST") {
        check(
          req.headers["content-type"] === "application/json",
          `content type ${req.headers["content-type"]}`,
        );
        const body = json<{ name?: string; value?: string }>();
        check(
          typeof body.name === "string" && !body.name.endsWith(".") && body.name === body.name.toLowerCase(),
          `name ${body.name}`,
        );
        check(typeof body.value === "string" && body.value.length === 43, `value ${body.value}`);
        const id = randomBytes(6).toString("hex");
        records.set(id, { name: body.name, value: body.value });
        await store.add(body.name, body.value);
        return { status: 200, json: { ok: true, id } };
      }
      if (req.path === "/records" && req.method === "GET") {
        const name = req.query.get("name");
        check(name, "name query missing");
        const list = [...records].filter(([, r]) => r.name === name).map(([id, r]) => ({ id, ...r }));
        return { status: 200, json: { ok: true, records: list } };
      }
      const one = route<"id">(req.path, "/records/:id");
      if (!one) throw new Violation("no such endpoint");
      check(req.method === "DELETE", `unexpected ${req.method}`);
      const rec = records.get(one.id);
      if (!rec) return { status: 404, json: { ok: false } };
      records.delete(one.id);
      await store.remove(rec.name, rec.value);
      return { status: 200, json: { ok: true } };
    },
  });
}
