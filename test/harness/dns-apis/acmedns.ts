import { randomBytes, randomUUID } from "node:crypto";
import { Violation, check, startLoopbackApi, type LoopbackApi, type TxtChangeHook } from "./loopback-api.js";

/**
 * acme-dns double: POST /register (optional JSON body { allowfrom }) → 201 with a new account;
 * POST /update with X-Api-User / X-Api-Key and { subdomain, txt } → 200 { txt }. A value must be 43
 * characters (acme-dns rejects others with "bad_txt"); the two most recent values per account are
 * served at `<subdomain>.<domain>`, kept in the store under that full domain.
 */
export interface AcmeDnsApi extends LoopbackApi {
  domain: string;
  /** Add an account directly (e.g. one whose password the test then changes). */
  addAccount(account: { username: string; password: string; subdomain: string }): void;
}

export async function startAcmeDnsApi(
  options: { domain?: string; onChange?: TxtChangeHook } = {},
): Promise<AcmeDnsApi> {
  const domain = options.domain ?? "auth.acme-dns.test";
  const accounts = new Map<string, { password: string; subdomain: string }>();
  const values = new Map<string, string[]>();

  const api = await startLoopbackApi({
    name: "acmedns",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      check(req.method === "POST", `acme-dns only takes POST, got ${req.method}`);
      if (req.path === "/register") {
        let allowfrom: string[] = [];
        if (req.body.length > 0) {
          const body = json<{ allowfrom?: string[] }>();
          check(Array.isArray(body.allowfrom ?? []), "allowfrom must be a list");
          allowfrom = body.allowfrom ?? [];
        }
        const username = randomUUID();
        const password = randomBytes(30).toString("base64url").slice(0, 40);
        const subdomain = randomUUID();
        accounts.set(username, { password, subdomain });
        return {
          status: 201,
          json: { username, password, fulldomain: `${subdomain}.${domain}`, subdomain, allowfrom },
        };
      }
      if (req.path !== "/update") throw new Violation("no such endpoint");
      const user = req.headers["x-api-user"];
      const key = req.headers["x-api-key"];
      const account = typeof user === "string" ? accounts.get(user) : undefined;
      if (!account || account.password !== key) return { status: 401, json: { error: "forbidden" } };
      const body = json<{ subdomain?: string; txt?: string }>();
      if (body.subdomain !== account.subdomain) return { status: 401, json: { error: "forbidden" } };
      if (typeof body.txt !== "string" || body.txt.length !== 43)
        return { status: 400, json: { error: "bad_txt" } };
      const served = [...(values.get(account.subdomain) ?? []), body.txt].slice(-2);
      values.set(account.subdomain, served);
      await store.set(`${account.subdomain}.${domain}`, served);
      return { status: 200, json: { txt: body.txt } };
    },
  });
  return {
    ...api,
    domain,
    addAccount: (a) => accounts.set(a.username, { password: a.password, subdomain: a.subdomain }),
  };
}
