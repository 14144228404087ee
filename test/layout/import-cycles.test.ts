/**
 * No import cycle in src/ or sim/: a cycle makes a module's exports undefined while the other half of the
 * cycle loads (in whichever order the bundle or the test happens to import them), and it ties modules together
 * that should be read, tested and changed one at a time. Type-only imports count too: they are the same
 * dependency, only erased at run time. Dynamic import() is a deliberate lazy load and does not count.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(import.meta.dirname, "..", "..");
/** `import … from "./x.ts"`, `export … from "./x.ts"` and `import "./x.ts"`, over several lines too. */
const STATIC_IMPORT = /^\s*(?:import|export)\s(?:[^;"']*?\sfrom\s)?\s*["'](\.{1,2}\/[^"']+)["']/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(ROOT, dir, f));
}

export function importsOf(file: string, text: string): string[] {
  return [...text.matchAll(STATIC_IMPORT)].map((m) => resolve(dirname(file), m[1] as string));
}

/** The first cycle found, as the files around it (the first repeated at the end), or undefined. */
export function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string): string[] | undefined => {
    if (onPath.has(file)) return [...path.slice(path.indexOf(file)), file];
    if (done.has(file)) return undefined;
    path.push(file);
    onPath.add(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
    return undefined;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

test("the cycle finder finds a cycle through type-only and multi-line imports", () => {
  const a = join(ROOT, "src", "a.ts");
  const b = join(ROOT, "src", "b.ts");
  const c = join(ROOT, "src", "c.ts");
  const graph = new Map([
    [a, importsOf(a, 'import type { B } from "./b.ts";\nconst x = await import("./c.ts");\n')],
    [b, importsOf(b, 'import {\n  type C,\n  c,\n} from "./c.ts";\n')],
    [c, importsOf(c, 'export { a } from "./a.ts";\n')],
  ]);
  assert.deepEqual(graph.get(a), [b], "a dynamic import() is not a dependency");
  assert.deepEqual(findCycle(graph), [a, b, c, a]);
  graph.set(c, importsOf(c, 'import "node:fs";\n'));
  assert.equal(findCycle(graph), undefined);
});

test("src/ and sim/ have no import cycle", () => {
  const graph = new Map<string, string[]>();
  for (const file of [...sourceFiles("src"), ...sourceFiles("sim")])
    graph.set(file, importsOf(file, readFileSync(file, "utf8")));
  const cycle = findCycle(graph);
  assert.equal(cycle?.map((f) => f.slice(ROOT.length + 1)).join(" → "), undefined);
});
