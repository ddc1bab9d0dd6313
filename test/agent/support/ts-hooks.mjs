// Node module hooks that run certfleet's TypeScript sources directly in a child process (an agent
// started by a test), so process tests do not depend on a prior `npm run build`. `.js` specifiers
// resolve to the `.ts` file beside them when that exists; `.ts` files are transpiled with TypeScript's
// own transpileModule (no type checking), cached on disk by content hash.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cacheDir = join(tmpdir(), "certfleet-ts-hook-cache");
mkdirSync(cacheDir, { recursive: true });
let ts;

export async function resolve(specifier, context, nextResolve) {
  if (specifier.endsWith(".js") && /^(\.|\/|file:)/.test(specifier) && context.parentURL?.endsWith(".ts")) {
    const candidate = new URL(specifier.slice(0, -3) + ".ts", context.parentURL);
    if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = readFileSync(path, "utf8");
  const key = createHash("sha256").update(path).update("\0").update(source).digest("hex");
  const cached = join(cacheDir, key + ".js");
  let output;
  if (existsSync(cached)) {
    output = readFileSync(cached, "utf8");
  } else {
    ts ??= (await import("typescript")).default;
    output = ts.transpileModule(source, {
      fileName: path,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
        inlineSourceMap: true,
      },
    }).outputText;
    // Write then rename: concurrent processes never read a half-written cache entry.
    const tmp = `${cached}.${process.pid}`;
    writeFileSync(tmp, output);
    renameSync(tmp, cached);
  }
  return { format: "module", source: output, shortCircuit: true };
}
