import { readFile } from "node:fs/promises";
import type { FastifyInstance, FastifyReply } from "fastify";

/**
 * The admin dashboard: three static files (no build step, no framework) under `/dashboard/`. They are
 * read once when the plugin registers; the page holds no data until the operator signs in, and then
 * reads everything from the admin API with the operator's own credential.
 *
 * Every dashboard response carries strict headers: the page runs only its own script and stylesheet,
 * cannot be framed, sends no referrer, and is never cached.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

const FILES = [
  { url: "/dashboard/", file: "index.html", type: "text/html; charset=utf-8" },
  { url: "/dashboard/app.js", file: "app.js", type: "text/javascript; charset=utf-8" },
  { url: "/dashboard/app.css", file: "app.css", type: "text/css; charset=utf-8" },
] as const;

export function dashboardRoutes() {
  return async (app: FastifyInstance) => {
    const withHeaders = (reply: FastifyReply) => reply.headers(DASHBOARD_HEADERS);
    for (const f of FILES) {
      const body = await readFile(new URL(`./${f.file}`, import.meta.url));
      app.get(f.url, async (_request, reply) => withHeaders(reply).type(f.type).send(body));
    }
    // relative URLs in the page (app.js, app.css) resolve against the directory
    app.get("/dashboard", async (_request, reply) => withHeaders(reply).redirect("/dashboard/", 302));
  };
}
