// A "browser" for interactive-login tests: started by the agent with the authorization URL as its last
// argument, it follows redirects with a cookie jar and submits every HTML form it meets (login name
// from FAKE_BROWSER_LOGIN), until it reaches the agent's loopback callback. Each step is appended to
// FAKE_BROWSER_LOG.
import { appendFileSync } from "node:fs";
import { URL, URLSearchParams } from "node:url";

const log = (line) =>
  process.env.FAKE_BROWSER_LOG && appendFileSync(process.env.FAKE_BROWSER_LOG, line + "\n");
const cookies = new Map();
let url = process.argv.at(-1);
let method = "GET";
let body;
log(`open ${url}`);
for (let step = 0; step < 20; step++) {
  const res = await fetch(url, {
    method,
    body,
    redirect: "manual",
    headers: {
      cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; "),
      ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
    },
  });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const eq = pair.indexOf("=");
    cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const target = new URL(url);
  if (target.pathname === "/callback") {
    log(`callback ${res.status} ${target.origin}`);
    process.exit(res.status === 200 ? 0 : 1);
  }
  if (res.status >= 300 && res.status < 400) {
    url = new URL(res.headers.get("location"), url).href;
    method = "GET";
    body = undefined;
    continue;
  }
  const html = await res.text();
  const form = /<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) {
    log(`stuck at ${url}: ${res.status}`);
    process.exit(1);
  }
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*name="([^"]+)"[^>]*>/g)) {
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? "";
    fields.set(
      input[1],
      input[1] === "login"
        ? (process.env.FAKE_BROWSER_LOGIN ?? "alice")
        : input[1] === "password"
          ? "pw"
          : value,
    );
  }
  log(`submit ${new URL(form[1], url).pathname} prompt=${fields.get("prompt")}`);
  url = new URL(form[1].replace(/&amp;/g, "&"), url).href;
  method = "POST";
  body = fields.toString();
}
log("too many steps");
process.exit(1);
