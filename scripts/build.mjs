/**
 * Builds dist/: the `chatnode` bin (dist/cli/main.js) and the scenario child process (dist/scenarios/child-node.js),
 * each bundled into one ES module file. Start-up time is the reason: Node resolves, reads and compiles some 60 small
 * modules one by one otherwise, about 50 ms of every start. Packages (better-sqlite3, commander) stay external, so
 * they load from node_modules as usual. Type checking is `npm run typecheck`'s job; esbuild only strips types.
 * Plain JavaScript so that `npm ci` (prepare) can run it with nothing but esbuild installed.
 */
import { rmSync } from "node:fs";
import { build } from "esbuild";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: ["src/cli/main.ts", "src/scenarios/child-node.ts"],
  outbase: "src",
  outdir: "dist",
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
});
