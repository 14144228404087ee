/**
 * Functions a reader can hold in their head (issue 18): no function in src/ is over MAX_LINES lines, whatever its
 * form (declaration, method, accessor, constructor, arrow function, function expression). One that grows past it
 * fails this test with its place, name and length: split it into named steps.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const MAX_LINES = 80;

/**
 * Functions allowed over the limit, as "path#name" → why (a reason a reviewer can weigh). Empty: every function
 * in src/ is within it. An entry that is no longer over the limit fails a test below, so the list cannot go stale.
 */
const ALLOWED_OVER: ReadonlyMap<string, string> = new Map<string, string>([]);

interface FunctionSize {
  /** "path#name", the allow-list's key. */
  key: string;
  path: string;
  line: number;
  /** "path:line name (N lines)", what a failure lists. */
  where: string;
  lines: number;
}

/** The name a reader would look for: a function's own, else what it is assigned to; methods under their owner. */
function nameOf(node: ts.FunctionLikeDeclaration): string {
  const own = node.name && !ts.isComputedPropertyName(node.name) ? node.name.getText() : undefined;
  const parent = node.parent;
  const assignedTo =
    (ts.isVariableDeclaration(parent) ||
      ts.isPropertyAssignment(parent) ||
      ts.isPropertyDeclaration(parent)) &&
    !ts.isComputedPropertyName(parent.name)
      ? parent.name.getText()
      : undefined;
  const name = ts.isConstructorDeclaration(node) ? "constructor" : (own ?? assignedTo ?? "(anonymous)");
  return ownerOf(node) ? `${ownerOf(node)}.${name}` : name;
}

/** For a method (or a function held in a property): the class or the object literal's variable it belongs to. */
function ownerOf(node: ts.FunctionLikeDeclaration): string | undefined {
  const holder =
    ts.isPropertyAssignment(node.parent) || ts.isPropertyDeclaration(node.parent) ? node.parent : node;
  const container = holder.parent;
  if (ts.isClassLike(container)) return container.name?.getText();
  if (ts.isObjectLiteralExpression(container)) {
    let up: ts.Node = container.parent;
    while (ts.isAsExpression(up) || ts.isSatisfiesExpression(up) || ts.isParenthesizedExpression(up))
      up = up.parent;
    if (ts.isVariableDeclaration(up) && ts.isIdentifier(up.name)) return up.name.text;
  }
  return undefined;
}

/** Every function in one file with its length, first line to last (its doc comment not counted). */
function functionSizes(path: string, text: string): FunctionSize[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const sizes: FunctionSize[] = [];
  const line = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = line(node.getStart(source));
      const lines = line(node.getEnd()) - first + 1;
      const name = nameOf(node as ts.FunctionLikeDeclaration);
      sizes.push({
        key: `${path}#${name}`,
        path,
        line: first,
        where: `${path}:${first} ${name} (${lines} lines)`,
        lines,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sizes;
}

/** Every function in a .ts file under `dir` longer than `limit` lines, paths relative to `root`. */
function functionsOver(limit: number, dir: string, root: string): FunctionSize[] {
  const over: FunctionSize[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const path = join(entry.parentPath, entry.name);
    const sizes = functionSizes(relative(root, path), readFileSync(path, "utf8"));
    over.push(...sizes.filter((s) => s.lines > limit));
  }
  return over.sort((a, b) => (a.path === b.path ? a.line - b.line : a.path < b.path ? -1 : 1));
}

/** Functions over the limit and not allowed, as "path:line name (N lines)". */
function notAllowed(over: readonly FunctionSize[], allowed: ReadonlyMap<string, string>): string[] {
  return over.filter((s) => !allowed.has(s.key)).map((s) => s.where);
}

/** Allow-list entries that name no function over the limit: shrunk, renamed or gone. */
function staleEntries(over: readonly FunctionSize[], allowed: ReadonlyMap<string, string>): string[] {
  const keys = new Set(over.map((s) => s.key));
  return [...allowed.keys()].filter((key) => !keys.has(key));
}

/** A function of exactly `lines` lines, in the given form. */
function fakeFunction(form: "declaration" | "arrow" | "expression" | "method", name: string, lines: number) {
  const body = "  x++;\n".repeat(lines - 2);
  switch (form) {
    case "declaration":
      return `function ${name}() {\n${body}}\n`;
    case "arrow":
      return `const ${name} = () => {\n${body}};\n`;
    case "expression":
      return `const ${name} = function () {\n${body}};\n`;
    case "method":
      return `class Holder {\n  ${name}() {\n${body}  }\n}\n`;
  }
}

describe("function sizes", () => {
  it("finds each form of function over the limit, and only those", () => {
    const dir = mkdtempSync(join(tmpdir(), "chatnode-function-size-"));
    try {
      const over = MAX_LINES + 1;
      writeFileSync(
        join(dir, "long.ts"),
        "let x = 0;\n" +
          fakeFunction("declaration", "longDeclaration", over) +
          fakeFunction("arrow", "longArrow", over) +
          fakeFunction("expression", "longExpression", over) +
          fakeFunction("method", "longMethod", over) +
          fakeFunction("declaration", "atLimit", MAX_LINES),
      );
      writeFileSync(join(dir, "notes.md"), fakeFunction("declaration", "inMarkdown", over));
      assert.deepEqual(
        functionsOver(MAX_LINES, dir, dir).map((s) => s.where),
        [
          `long.ts:2 longDeclaration (${over} lines)`,
          `long.ts:${2 + over} longArrow (${over} lines)`,
          `long.ts:${2 + 2 * over} longExpression (${over} lines)`,
          `long.ts:${3 + 3 * over} Holder.longMethod (${over} lines)`,
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names a method of an object literal after its variable", () => {
    const text = `export const thing: T = {\n  async run() {\n    return 1;\n  },\n};\n`;
    assert.deepEqual(
      functionSizes("x.ts", text).map((s) => s.where),
      ["x.ts:2 thing.run (3 lines)"],
    );
  });

  it("lets an allowed function through, and calls an entry stale once its function is within the limit", () => {
    const long = fakeFunction("declaration", "long", MAX_LINES + 1);
    const over = functionSizes("a.ts", long + fakeFunction("declaration", "short", 3)).filter(
      (s) => s.lines > MAX_LINES,
    );
    const allowed = new Map([
      ["a.ts#long", "still long"],
      ["a.ts#short", "split since"],
    ]);
    assert.deepEqual(notAllowed(over, allowed), []);
    assert.deepEqual(notAllowed(over, new Map()), [`a.ts:1 long (${MAX_LINES + 1} lines)`]);
    assert.deepEqual(staleEntries(over, allowed), ["a.ts#short"]);
  });

  it(`no function in src/ is over ${MAX_LINES} lines, but for the allow-list`, () => {
    const over = functionsOver(MAX_LINES, "src", ".");
    assert.deepEqual(notAllowed(over, ALLOWED_OVER), [], `functions over ${MAX_LINES} lines`);
  });

  it(`every allow-listed function is still over ${MAX_LINES} lines`, () => {
    const over = functionsOver(MAX_LINES, "src", ".");
    assert.deepEqual(
      staleEntries(over, ALLOWED_OVER),
      [],
      "within the limit now (or gone): take off ALLOWED_OVER",
    );
  });
});
