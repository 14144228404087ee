/**
 * Builds dist/: the `chatnode` bin (dist/cli/main.js) and the scenario child process (dist/scenarios/child-node.js),
 * bundled as ES modules with commander inside: the two small entry files and the chunks they share in dist/chunks/.
 * Start-up time is the reason: Node otherwise resolves, reads and compiles some 60 small modules one by one, and
 * imports commander through the CommonJS interop, about 70 ms of every start. better-sqlite3 and sodium-native
 * (native addons) stay in node_modules. The banner gives commander's bundled CommonJS code the `require` that ES
 * modules lack. Type checking is `npm run typecheck`'s job; esbuild only strips types.
 * Plain JavaScript so that `npm ci` (prepare) can run it with nothing but esbuild installed.
 */
import { rmSync } from "node:fs";
import { build } from "esbuild";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: [
    { in: "src/cli/bin.ts", out: "cli/main" },
    { in: "src/scenarios/child-node.ts", out: "scenarios/child-node" },
  ],
  outdir: "dist",
  bundle: true,
  // dist/cli/main.js starts the key unlock, then imports the rest, which must be in other files to load while
  // scrypt runs (src/cli/bin.ts); chunks sit one level below dist/ as the entries do, for relative paths.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  external: ["better-sqlite3", "sodium-native"],
  banner: {
    js: 'import { createRequire as bundleRequire } from "node:module"; const require = bundleRequire(import.meta.url);',
  },
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
});
