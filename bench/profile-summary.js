// Summarise V8 CPU profiles (node --cpu-prof; bench/acme-server.js --profile DIR writes them): busy time
// by self time per package or file, and inclusive time per certfleet function (dist/…), so the
// expensive steps of a request show up by name.
//   node bench/profile-summary.js DIR/*.cpuprofile [--top 25]
import { readFileSync } from "node:fs";

const top = process.argv.includes("--top") ? Number(process.argv[process.argv.indexOf("--top") + 1]) : 25;
const files = process.argv
  .slice(2)
  .filter((a, i, all) => a.endsWith(".cpuprofile") && all[i - 1] !== "--top");
const self = new Map();
const inclusive = new Map();
let busy = 0;
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
const where = (f) => f.url.replace(/^.*node_modules\//, "").replace(/^.*\/dist\//, "dist/");
const pkg = (f) => {
  const u = where(f);
  if (u.startsWith("dist/") || u.startsWith("node:")) return u;
  if (u === "") return f.functionName;
  return u.startsWith("@") ? u.split("/").slice(0, 2).join("/") : u.split("/")[0];
};

for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (let i = 0; i < p.samples.length; i++) {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(p.samples[i]);
    if (["(idle)", "(program)"].includes(leaf.callFrame.functionName)) continue;
    busy += ms;
    add(self, pkg(leaf.callFrame), ms);
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id).callFrame;
      if (!where(f).startsWith("dist/")) continue;
      const key = `${f.functionName || "(anonymous)"} ${where(f)}:${f.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, ms);
    }
  }
}
const show = (m) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n");
console.log(`busy ${busy.toFixed(0)} ms (idle excluded) in ${files.length} profile(s)`);
console.log(`--- self time by package / file\n${show(self)}`);
console.log(`--- inclusive time by certfleet function\n${show(inclusive)}`);
