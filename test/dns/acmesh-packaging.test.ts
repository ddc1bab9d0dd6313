import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const SHIM = "dns/providers/acmesh/shim.sh";

/**
 * The acme.sh bridge sources shim.sh from next to its own module, so the build must put it beside the
 * compiled module in dist/ (which package.json `files` publishes); tsc alone copies nothing but .ts.
 */
describe("acme.sh shim packaging", () => {
  it("copy-assets puts every non-TypeScript file of src/ at the same path in the output", async () => {
    const out = await mkdtemp(join(tmpdir(), "cf-assets-"));
    try {
      await run(process.execPath, [join(root, "scripts/copy-assets.mjs"), out]);
      const source = join(root, "src", SHIM);
      expect(await readFile(join(out, SHIM), "utf8")).toBe(await readFile(source, "utf8"));
      expect((await stat(join(out, SHIM))).mode).toBe((await stat(source)).mode);
      expect(existsSync(join(out, "dns/providers/acmesh/acmesh-provider.ts"))).toBe(false);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("the build script runs copy-assets and dist/ is published", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
      files: string[];
    };
    for (const script of ["build", "prepack"])
      expect(pkg.scripts[script]).toContain("scripts/copy-assets.mjs");
    expect(pkg.files).toContain("dist");
  });

  it("the built module resolves its shim inside dist/ (needs `npm run build`)", async () => {
    const built = join(root, "dist", "dns/providers/acmesh/acmesh-provider.js");
    expect(existsSync(built), "dist is missing: run `npm run build` first").toBe(true);
    const mod = (await import(pathToFileURL(built).href)) as { acmeShShimPath(): string };
    const shim = mod.acmeShShimPath();
    expect(shim).toBe(join(root, "dist", SHIM));
    expect(existsSync(shim), "dist has no shim.sh: run `npm run build`").toBe(true);
  });
});
