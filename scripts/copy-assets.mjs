/**
 * Copies the files under src/ that tsc does not emit (shell shims, vendored .proto files, the
 * dashboard's index.html / app.js / app.css, …) into the build output at the same relative path, so code
 * that finds them next to its own module (`new URL("./shim.sh", import.meta.url)`) works from dist/ and
 * from the published package. Plain JavaScript is an asset too (the dashboard runs in the browser as it
 * is), so a .js file that would land where tsc writes a compiled module (a.js beside a.ts) is an error.
 *
 * Usage: node scripts/copy-assets.mjs [outDir]   (default: dist)
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src");
const outDir = resolve(root, process.argv[2] ?? "dist");

/** TypeScript sources are compiled, not copied. */
const isSource = (name) => /\.(c|m)?tsx?$/.test(name);

async function* assets(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* assets(path);
    else if (entry.isFile() && !isSource(entry.name)) yield path;
  }
}

/** The TypeScript sources tsc would compile to this path (a.js ← a.ts / a.tsx, a.mjs ← a.mts, …). */
const compiledFrom = (path) => {
  const m = /\.(c|m)?js$/.exec(path);
  if (!m) return [];
  const base = path.slice(0, -m[0].length);
  return m[1] ? [`${base}.${m[1]}ts`] : [`${base}.ts`, `${base}.tsx`];
};

let copied = 0;
for await (const from of assets(srcDir)) {
  const clash = compiledFrom(from).find((ts) => existsSync(ts));
  if (clash) {
    console.error(
      `copy-assets: ${relative(root, from)} would overwrite the output of ${relative(root, clash)}`,
    );
    process.exit(1);
  }
  const to = join(outDir, relative(srcDir, from));
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to); // keeps the content; mode follows the source on POSIX
  copied += 1;
}
console.log(`copy-assets: ${copied} file(s) from src/ to ${relative(root, outDir) || "."}/`);
