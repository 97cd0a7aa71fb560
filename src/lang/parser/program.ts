// Loads a program: the given files, every file they import, and the std library on demand.
// Relative imports form a graph whose cycles are reported with their chain; `std` is one
// namespace made of every file in std/, so std files may use each other freely.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import { SourceFile } from "../../diagnostics/source.js";
import type { Comment, FileAst, ImportDecl } from "./ast.js";
import { parseText } from "./parse.js";

export const STD_MODULE = "std";

/** The package's std/ folder: three levels up from src/lang/parser, four from dist/src/lang/parser. */
export const STD_DIR = ((): string => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, "..", "..", "..", "std"), path.resolve(here, "..", "..", "..", "..", "std")];
  return candidates.find((c) => fs.existsSync(path.join(c, "README.md"))) ?? candidates[1]!;
})();

export interface LoadedFile {
  readonly path: string;
  readonly source: SourceFile;
  readonly ast: FileAst;
  readonly comments: readonly Comment[];
  readonly isStd: boolean;
}

export interface Program {
  readonly entries: readonly string[];
  readonly files: ReadonlyMap<string, LoadedFile>;
  readonly stdFiles: readonly string[];
  readonly diagnostics: readonly Diagnostic[];
  /** Resolved path of an import's target file (absent for std and for imports that failed). */
  readonly importTargets: ReadonlyMap<ImportDecl, string>;
}

/** Files are addressed by a display path: relative to the working directory when inside it. */
export function displayPath(absolute: string): string {
  const rel = path.relative(process.cwd(), absolute);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : absolute;
}

export interface LoadOptions {
  /** In-memory text by display path, for the API and tests (falls back to disk). */
  readonly overrides?: ReadonlyMap<string, string>;
  readonly stdDir?: string;
}

export function loadProgram(entryPaths: readonly string[], options: LoadOptions = {}): Program {
  const files = new Map<string, LoadedFile>();
  const diagnostics: Diagnostic[] = [];
  const importTargets = new Map<ImportDecl, string>();
  const stdDir = options.stdDir ?? STD_DIR;
  const stdFiles: string[] = [];
  let stdLoaded = false;

  const read = (display: string): string | undefined => {
    const override = options.overrides?.get(display);
    if (override !== undefined) return override;
    try {
      return fs.readFileSync(display, "utf8");
    } catch {
      return undefined;
    }
  };

  const addFile = (display: string, text: string, isStd: boolean): LoadedFile => {
    const parsed = parseText(display, text);
    const file: LoadedFile = {
      path: display,
      source: new SourceFile(display, text),
      ast: parsed.ast,
      comments: parsed.comments,
      isStd,
    };
    files.set(display, file);
    diagnostics.push(...parsed.diagnostics);
    return file;
  };

  const loadStd = () => {
    if (stdLoaded) return;
    stdLoaded = true;
    let names: string[] = [];
    try {
      names = fs
        .readdirSync(stdDir)
        .filter((n) => n.endsWith(".vlm"))
        .sort();
    } catch {
      diagnostics.push(diagnostic("VLM9001", `internal compiler error: the std library folder ${stdDir} is missing`));
    }
    for (const name of names) {
      const display = displayPath(path.join(stdDir, name));
      stdFiles.push(display);
      const file = addFile(display, fs.readFileSync(path.join(stdDir, name), "utf8"), true);
      visitImports(file, []);
    }
  };

  // Depth-first over relative imports; `stack` holds the chain for cycle reports.
  const visitImports = (file: LoadedFile, stack: string[]) => {
    for (const decl of file.ast.decls) {
      if (decl.kind !== "import") continue;
      if (decl.from === STD_MODULE) {
        loadStd();
        continue;
      }
      const target = displayPath(path.resolve(path.dirname(file.path), decl.from));
      const chainAt = stack.indexOf(target);
      if (target === file.path || chainAt >= 0) {
        const chain = [...stack.slice(Math.max(chainAt, 0)), file.path, target];
        diagnostics.push(diagnostic("VLM2006", `import cycle: ${chain.join(" → ")}`, decl.fromSpan));
        continue;
      }
      if (!files.has(target)) {
        const text = read(target);
        if (text === undefined) {
          diagnostics.push(diagnostic("VLM2007", `cannot read "${decl.from}" (resolved to ${target})`, decl.fromSpan));
          continue;
        }
        importTargets.set(decl, target);
        visit(addFile(target, text, file.isStd), [...stack, file.path]);
      } else {
        importTargets.set(decl, target);
        if (!visited.has(target)) visit(files.get(target)!, [...stack, file.path]);
      }
    }
  };

  const visited = new Set<string>();
  const visit = (file: LoadedFile, stack: string[]) => {
    visited.add(file.path);
    visitImports(file, stack);
  };

  const entries: string[] = [];
  for (const p of entryPaths) {
    const display = displayPath(path.resolve(p));
    entries.push(display);
    if (files.has(display)) continue;
    const text = read(display);
    if (text === undefined) {
      diagnostics.push(diagnostic("VLM2007", `cannot read ${p}`));
      continue;
    }
    visit(addFile(display, text, false), []);
  }
  return { entries, files, stdFiles, diagnostics, importTargets };
}
