// Diagnostic tests: every `.vlm` file in test/diagnostics carries inline markers
// (`// expect-error VLM2003` on the line the diagnostic starts at, or `// expect-error@+1 …` for the next line;
// `VLM2003:17` also pins the column the span starts at; `// expect-note VLM3001` says the diagnostic
// with that code carries a note pointing at this line, e.g. the user's call of the block that failed).
// Missing and unexpected diagnostics both fail; codes, lines and columns are compared, never message text.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { check } from "../src/driver/check.js";

const dir = path.join(import.meta.dirname, "diagnostics");
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".vlm"))
  .sort();

function expectedNotes(text: string): string[] {
  return text
    .split("\n")
    .flatMap((line, i) => [...line.matchAll(/expect-note\s+(VLM\d{4})/g)].map((m) => `${i + 1}:${m[1]}`))
    .sort();
}

function expected(text: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(/expect-(error|warning)(@[+-]\d+)?\s+((?:VLM\d{4}(?::\d+)?\s*)+)/g)) {
      const offset = m[2] ? Number(m[2].slice(1)) : 0;
      for (const code of m[3]!.trim().split(/\s+/)) out.push(`${i + 1 + offset}:${code}`);
    }
  });
  return out.sort();
}

describe("diagnostics", () => {
  it("has test files", () => expect(files.length).toBeGreaterThan(5));
  for (const f of files) {
    it(f, () => {
      const file = path.relative(process.cwd(), path.join(dir, f));
      const text = fs.readFileSync(path.join(dir, f), "utf8");
      const result = check([file]);
      const src = result.sources(file)!;
      const want = expected(text);
      const actual = result.diagnostics
        .filter((d) => d.span?.file === file)
        .map((d) => {
          const at = src.position(d.span!.start);
          const withColumn = `${at.line}:${d.code}:${at.column}`;
          return want.includes(withColumn) ? withColumn : `${at.line}:${d.code}`;
        })
        .sort();
      const elsewhere = result.diagnostics.filter(
        (d) => d.span?.file !== file && !expected(text).some((e) => e.endsWith(d.code)),
      );
      expect(actual).toEqual(want);
      const notes = result.diagnostics.flatMap((d) =>
        (d.related ?? [])
          .filter((r) => r.span.file === file)
          .map((r) => `${src.position(r.span.start).line}:${d.code}`),
      );
      for (const note of expectedNotes(text)) expect(notes, `a note at ${note}`).toContain(note);
      expect(elsewhere).toEqual([]);
    });
  }
});
