import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { json, startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * The Azure Arc agent's HIMDS endpoint: `GET /metadata/identity/oauth2/token?api-version=2019-11-01&resource=…`
 * with `Metadata: true`. Without credentials it writes a fresh secret to `<tokenDir>/<random>.key` and
 * answers 401 with `WWW-Authenticate: Basic realm=<that file>`; with `Authorization: Basic <secret>` it
 * answers the token. `challengePath` replaces the announced path (a rogue listener naming another file).
 */
export interface Himds extends LoopbackHttp {
  tokenUrl: string;
  /** Files written so far. */
  challenges: string[];
  /** Announce this path instead of a real challenge file (hostile-listener tests); undefined = honest. */
  setChallengePath(path: string | undefined): void;
}

export async function startHimds(options: {
  tokenDir: string;
  mint: (request: { resource: string }) => Promise<string>;
}): Promise<Himds> {
  const secrets = new Map<string, string>();
  const state = { challengePath: undefined as string | undefined };
  const challenges: string[] = [];
  const http = await startLoopbackHttp(async (req, res) => {
    if (req.url.pathname !== "/metadata/identity/oauth2/token") return json(res, 404, { error: "not_found" });
    const resource = req.url.searchParams.get("resource");
    if (
      req.headers.metadata !== "true" ||
      req.url.searchParams.get("api-version") !== "2019-11-01" ||
      !resource
    ) {
      return json(res, 400, { error: "invalid_request" });
    }
    const auth = req.headers.authorization;
    if (!auth) {
      const secret = randomBytes(32).toString("hex");
      const file = join(options.tokenDir, `${randomBytes(8).toString("hex")}.key`);
      await writeFile(file, secret, { mode: 0o600 });
      secrets.set(secret, file);
      challenges.push(file);
      return json(
        res,
        401,
        { error: "unauthorized" },
        { "www-authenticate": `Basic realm=${state.challengePath ?? file}` },
      );
    }
    const presented = auth.replace(/^Basic\s+/i, "");
    const file = secrets.get(presented);
    if (!file) return json(res, 401, { error: "invalid_secret" });
    secrets.delete(presented);
    await rm(file, { force: true });
    json(res, 200, {
      access_token: await options.mint({ resource }),
      expires_in: "3599",
      token_type: "Bearer",
      resource,
    });
  });
  return {
    ...http,
    tokenUrl: `${http.origin}/metadata/identity/oauth2/token`,
    challenges,
    setChallengePath(path) {
      state.challengePath = path;
    },
  };
}
