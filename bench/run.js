// `npm run bench`: every issue-15 benchmark, one child process each; each prints its own `ratio=` lines
// (certfleet against a floor measured in the same run). Needs `npm run build` first.
//   cached-api.js         cached POST /api/certificate vs a bare node:https server (API key, JWT; SQLite, PostgreSQL)
//   upstream-issuance.js  certfleet's ACME issuer vs a bare acme-client script against Pebble
//   acme-server.js        certfleet's ACME server (all workers) vs Pebble, same client, concurrency 8
//   names-100.js          100 new names at once vs one after another on the embedded CA
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
for (const script of ["cached-api.js", "upstream-issuance.js", "acme-server.js", "names-100.js"]) {
  const child = spawn(process.execPath, [join(here, script)], { stdio: "inherit" });
  const [code] = await once(child, "exit");
  if (code !== 0) process.exitCode = 1;
  console.log("");
}
