// The docs keep their promises: docs/language.md is what the generator makes from builtins.ts and
// std/ (and docs/diagnostics.md from the catalog), every builtin and std block is documented, and
// every ```vlm sample in README.md, grammar/, std/ and docs/ compiles without a diagnostic.

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { diagnosticsReference } from "../src/diagnostics/reference.js";
import { check } from "../src/driver/check.js";
import { BUILTINS } from "../src/lang/builtins.js";
import { STD_DIR } from "../src/lang/parser/program.js";
import { languageReference } from "../src/lang/reference.js";
import { tempFolders } from "./temp-folders.js";

const tempFolder = tempFolders("vlmc-docs-");
const ROOT = path.join(import.meta.dirname, "..");
const PAGES = [
  "README.md",
  "grammar/README.md",
  "std/README.md",
  ...fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

function samples(page: string): { line: number; code: string }[] {
  const text = fs.readFileSync(path.join(ROOT, page), "utf8");
  const out: { line: number; code: string }[] = [];
  const re = /^```vlm\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text))
    out.push({ line: text.slice(0, m.index).split("\n").length, code: m[1]! });
  return out;
}

describe("docs/language.md", () => {
  it("is generated from builtins.ts and std/ (run `npm run docs:language`)", () => {
    const std = fs
      .readdirSync(STD_DIR)
      .filter((f) => f.endsWith(".vlm"))
      .map((name) => ({ name, text: fs.readFileSync(path.join(STD_DIR, name), "utf8") }));
    const committed = fs.readFileSync(path.join(ROOT, "docs", "language.md"), "utf8");
    expect(committed === languageReference(std), "docs/language.md is stale: run `npm run docs:language`").toBe(true);
  });

  it("documents every builtin and every std block", () => {
    const page = fs.readFileSync(path.join(ROOT, "docs", "language.md"), "utf8");
    for (const name of BUILTINS.keys()) expect(page, name).toContain(`### \`${name}\``);
    for (const f of fs.readdirSync(STD_DIR).filter((n) => n.endsWith(".vlm")))
      for (const m of fs.readFileSync(path.join(STD_DIR, f), "utf8").matchAll(/^block (\w+)/gm))
        expect(page, m[1]).toContain(`- \`${m[1]}(`);
  });
});

describe("examples/", () => {
  // A newcomer's first command: no example may warn (llava.vlm once warned four times).
  const examples = fs.readdirSync(path.join(ROOT, "examples")).filter((f) => f.endsWith(".vlm"));
  for (const f of examples)
    it(`${f} checks without a diagnostic`, () =>
      expect(check([path.join("examples", f)]).diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]));
});

describe("docs/diagnostics.md", () => {
  it("is generated from the catalog (run `npm run docs:language`)", () => {
    const committed = fs.readFileSync(path.join(ROOT, "docs", "diagnostics.md"), "utf8");
    expect(committed === diagnosticsReference(), "docs/diagnostics.md is stale: run `npm run docs:language`").toBe(
      true,
    );
  });
});

describe("every ```vlm sample in the docs compiles", () => {
  for (const page of PAGES) {
    for (const { line, code } of samples(page)) {
      it(`${page}:${line}`, () => {
        const file = path.join(tempFolder(), "sample.vlm");
        fs.writeFileSync(file, code);
        const result = check([file]);
        expect(result.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
      });
    }
  }
});
