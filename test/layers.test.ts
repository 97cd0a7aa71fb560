// The import direction of docs/architecture.md, enforced: every import between the folders of src/ must be an
// edge of LAYERS, target/ may take only types from ir/, and no module or sibling folder may reach itself again.
// There is no exceptions list: a new edge means the table (and the architecture page) changes, or the code moves.

import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = path.join(import.meta.dirname, "..", "src");

/** Layer → the layers it may import. `index` is src/index.ts, the public API. */
const LAYERS: Record<string, readonly string[]> = {
  index: ["driver", "runtime", "onnx"],
  cli: ["driver", "runtime"],
  driver: ["lang", "passes", "codegen", "runtime", "target", "ir", "onnx", "pictures"],
  codegen: ["target", "ir", "onnx", "numerics", "runtime"],
  runtime: ["onnx", "numerics"],
  passes: ["target", "ir", "numerics"],
  lang: ["ir"],
  target: ["ir"],
  ir: [],
  onnx: [],
  numerics: [],
  pictures: [],
};
/** Leaves every layer may import; they import only each other. */
const LEAVES = ["diagnostics", "fs", "version"];
/** Edges that must be `import type` (erased at run time). */
const TYPES_ONLY = new Set(["target→ir"]);

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") ? [p] : [];
  });
}

/** Every relative import and re-export of `file`, resolved to a .ts path, with whether it is type-only. */
function importsOf(file: string): Edge[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false);
  const edges: Edge[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) return;
    edges.push({ from: file, to: path.resolve(path.dirname(file), spec.text.replace(/\.js$/, ".ts")), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      add(
        node.moduleSpecifier,
        !!c && (c.isTypeOnly || (!c.name && !!named?.length && named.every((e) => e.isTypeOnly))),
      );
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier, node.isTypeOnly || (!!named?.length && named.every((e) => e.isTypeOnly)));
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join("/");
/** A module's layer: its top folder under src/, or its name for a file at src/'s top. */
const layerOf = (f: string) => rel(f).split("/")[0]!.replace(/\.ts$/, "");
/** A module's folder, or its own name for a file at src/'s top (src/ is no one's parent folder here). */
const folderOf = (f: string) => (rel(f).includes("/") ? path.posix.dirname(rel(f)) : rel(f));

/** Every strongly connected component of more than one node (or a node importing itself). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) found.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) strong(v);
  return found;
}

const edges = sourceFiles(SRC).flatMap(importsOf);

describe("import direction (docs/architecture.md)", () => {
  it("reads the whole tree", () => {
    expect(edges.length).toBeGreaterThan(200);
    for (const e of edges) expect(fs.existsSync(e.to), `${rel(e.from)} imports a missing ${rel(e.to)}`).toBe(true);
  });

  it("src/ holds TypeScript sources only: fixtures and data live under test/", () => {
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? walk(p) : [p];
      });
    expect(
      walk(SRC)
        .filter((f) => !f.endsWith(".ts"))
        .map(rel),
    ).toEqual([]);
    expect(edges.filter((e) => !e.to.startsWith(SRC + path.sep)).map((e) => `${rel(e.from)} → ${e.to}`)).toEqual([]);
  });

  it("every import between layers is an edge of the table", () => {
    const bad: string[] = [];
    for (const e of edges) {
      const [a, b] = [layerOf(e.from), layerOf(e.to)];
      if (a === b || LEAVES.includes(b)) continue;
      const allowed = LEAVES.includes(a) ? [] : LAYERS[a];
      if (!allowed) bad.push(`${rel(e.from)}: layer ${a} is not in the table`);
      else if (!allowed.includes(b)) bad.push(`${rel(e.from)} → ${rel(e.to)} (${a} may not import ${b})`);
      else if (TYPES_ONLY.has(`${a}→${b}`) && !e.typeOnly)
        bad.push(`${rel(e.from)} → ${rel(e.to)} must be import type`);
    }
    expect(bad).toEqual([]);
  });

  it("no module imports itself through others", () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges)
      (graph.get(rel(e.from)) ?? graph.set(rel(e.from), new Set()).get(rel(e.from))!).add(rel(e.to));
    expect(cycles(graph)).toEqual([]);
  });

  it("no folder imports itself through a sibling folder", () => {
    // Folders are nodes; an import between a folder and one inside it (passes/ and passes/fusion/) is not an
    // edge, since a folder's index may gather what its subfolders build on the folder's own base types.
    const graph = new Map<string, Set<string>>();
    for (const e of edges) {
      const [a, b] = [folderOf(e.from), folderOf(e.to)];
      if (a === b || `${a}/`.startsWith(`${b}/`) || `${b}/`.startsWith(`${a}/`)) continue;
      (graph.get(a) ?? graph.set(a, new Set()).get(a)!).add(b);
    }
    expect(cycles(graph)).toEqual([]);
  });
});
