// Stress inputs: very large and very deep sources must come back as diagnostics or success from
// `parse` / `check` — never a stack overflow or another exception. No timing assertions: the
// timeouts below only stop a hang (a 5 MB check takes tens of seconds on a slow machine).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { check, parse } from "../src/driver/check.js";
import { runCli } from "../src/cli/main.js";
import type { Diagnostic } from "../src/diagnostics/diagnostic.js";
import { MAX_NESTING } from "../src/lang/parser/parse.js";
import { captureIo } from "./helpers/capture-io.js";

const FILE = "stress.vlm";
const SLOW = { timeout: 300_000 };

type Outcome<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

/** Runs `f`, turning an exception into a description (with the top of its stack) to assert on. */
function attempt<T>(f: () => T): Outcome<T> {
  try {
    return { value: f() };
  } catch (e) {
    const where =
      e instanceof Error
        ? (e.stack ?? "")
            .split("\n")
            .slice(1, 6)
            .map((l) => l.trim())
            .join(" | ")
        : "";
    return { error: `${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}${where ? ` (${where})` : ""}` };
  }
}

function checkText(text: string): Outcome<ReturnType<typeof check>> {
  return attempt(() => check([FILE], { overrides: new Map([[FILE, text]]) }));
}

function parseText(text: string): Outcome<ReturnType<typeof parse>> {
  return attempt(() => parse(text, FILE));
}

/** Every span lies inside the stress file (the only file these programs have). */
function badSpans(diags: readonly Diagnostic[], text: string): string[] {
  return diags
    .filter(
      (d) =>
        d.span && (d.span.file !== FILE || d.span.start < 0 || d.span.start > d.span.end || d.span.end > text.length),
    )
    .map((d) => `${d.code} ${d.message} at ${JSON.stringify(d.span)}`);
}

function codes(diags: readonly Diagnostic[]): string[] {
  return [...new Set(diags.map((d) => d.code))].sort();
}

/** Asserts that `outcome` holds no exception, showing the whole exception (and its stack top) if it does. */
function expectNoThrow(outcome: Outcome<unknown>, message: string): void {
  expect(outcome.error ?? "no exception", message).toBe("no exception");
}

/** A reproducer note for the failure message: the size and the first characters of the input. */
function what(label: string, text: string): string {
  return `${label} (${text.length} characters, starting ${JSON.stringify(text.slice(0, 60))})`;
}

/**
 * Asserts that check (and, for inputs under 100 KB, parse on its own: check parses too) of `text`
 * came back without throwing, with every span in the file.
 */
function expectHandled(label: string, text: string, expectedCodes?: string[]): void {
  if (text.length < 100_000) {
    const parsed = parseText(text);
    expectNoThrow(parsed, `parse threw on ${what(label, text)}`);
    expect(badSpans(parsed.value!.diagnostics, text)).toEqual([]);
  }
  const checked = checkText(text);
  expectNoThrow(checked, `check threw on ${what(label, text)}`);
  const result = checked.value!;
  expect(badSpans(result.diagnostics, text)).toEqual([]);
  expect(result.ok).toBe(!result.diagnostics.some((d) => d.severity === "error"));
  if (expectedCodes) expect(codes(result.diagnostics)).toEqual(expectedCodes);
}

/** `const cI = …` lines, `count` of them, as one text. */
function consts(count: number, value: (i: number) => string): string {
  const lines: string[] = new Array(count);
  for (let i = 0; i < count; i++) lines[i] = `const c${i} = ${value(i)}`;
  return lines.join("\n") + "\n";
}

/** A model that uses `expr`, so that `check` evaluates it (elaboration runs only for models). */
function modelUsing(expr: string): string {
  return `\nmodel stress {\n  forward(x: f32[B, 4]) {\n    return x * ${expr}\n  }\n}\n`;
}

describe("stress: large files", () => {
  it("a 5 MB file of block definitions and constants checks clean", SLOW, () => {
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 5 * 1024 * 1024; i++) {
      const part =
        `// block ${i}: a small residual MLP\n` +
        `const W${i} = ${16 + (i % 8)} * 2\n` +
        `block b${i}(width = W${i}, hidden = 4 * width, act = gelu) {\n` +
        `  fc1 = linear(width, hidden)\n` +
        `  fc2 = linear(hidden, width, bias: false)\n` +
        `  param scale: [width] = ones\n` +
        `  forward(x) {\n` +
        `    f = act\n` +
        `    return x + fc2(f(fc1(x))) * scale\n` +
        `  }\n` +
        `}\n\n`;
      parts.push(part);
      size += part.length;
    }
    const last = parts.length - 1;
    const text =
      parts.join("") +
      `model big {\n  inner = b${last}()\n  forward(x: f32[B, W${last}]) {\n    return inner(x)\n  }\n}\n`;
    expect(text.length).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    const checked = checkText(text);
    expectNoThrow(checked, `check threw on ${what("5 MB of blocks", text)}`);
    expect(badSpans(checked.value!.diagnostics, text)).toEqual([]);
    expect(checked.value!.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  it("100,000 independent const declarations check clean", SLOW, () => {
    const text = consts(100_000, (i) => `${i} * 2 + ${i % 10}`) + modelUsing("c99999");
    const checked = checkText(text);
    expectNoThrow(checked, `check threw on ${what("100,000 consts", text)}`);
    expect(badSpans(checked.value!.diagnostics, text)).toEqual([]);
    expect(checked.value!.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  // Each constant refers to the one before, and the model uses the last: evaluating it follows a
  // chain 100,000 deep. When this test was written, Elaborator.constValue recursed once per link and
  // threw a RangeError from about 3,000 links (const c0 = 1, const c1 = c0 + 1, …, used by a model).
  it("100,000 const declarations, each using the previous, evaluate without overflowing the stack", SLOW, () => {
    const text = consts(100_000, (i) => (i === 0 ? "1" : `c${i - 1} + 1`)) + modelUsing("c99999");
    const checked = checkText(text);
    expectNoThrow(checked, `check threw on ${what("a chain of 100,000 consts used by a model", text)}`);
    expect(badSpans(checked.value!.diagnostics, text)).toEqual([]);
  });
});

describe("stress: many small expressions are not one long one", () => {
  // A limit on operators per expression must count per expression: statements that follow one
  // another without `=` (expect, or param shapes without an initialiser) are separate expressions.
  it("2,000 consecutive `expect` statements of three operators each check clean", SLOW, () => {
    const expects = Array.from({ length: 2000 }, (_, i) => `    expect d + ${i} >= 1 + 1`).join("\n");
    const text = `model m(d = 2) {\n  forward(x: f32[B, 2]) {\n${expects}\n    return x\n  }\n}\n`;
    const checked = checkText(text);
    expectNoThrow(checked, `check threw on ${what("2,000 expect statements", text)}`);
    expect(checked.value!.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  it("2,000 consecutive params with computed shapes check clean", SLOW, () => {
    const params = Array.from({ length: 2000 }, (_, i) => `  param p${i}: [2 * width - width + 1]`).join("\n");
    const text = `block b(width = 3) {\n${params}\n  forward(x) {\n    return x * p0\n  }\n}\nmodel m {\n  inner = b()\n  forward(x: f32[B, 4]) {\n    return inner(x)\n  }\n}\n`;
    const checked = checkText(text);
    expectNoThrow(checked, `check threw on ${what("2,000 params", text)}`);
    // Only p0 is used: the other 1,999 draw "unused parameter" warnings, and nothing else.
    const diagnostics = checked.value!.diagnostics;
    expect(diagnostics.filter((d) => d.code !== "VLM3004").map((d) => `${d.code} ${d.message}`)).toEqual([]);
    expect(diagnostics).toHaveLength(1999);
  });
});

describe("stress: deep nesting is a VLM1003 diagnostic", () => {
  it(`10,000 nested parentheses (limit ${MAX_NESTING})`, () => {
    const text = `const x = ${"(".repeat(10_000)}1${")".repeat(10_000)}\n`;
    expectHandled("10,000 nested parentheses", text, ["VLM1003"]);
  });

  it("10,000 nested brackets and braces", () => {
    expectHandled("10,000 nested list brackets", `const x = ${"[".repeat(10_000)}1${"]".repeat(10_000)}\n`, [
      "VLM1003",
    ]);
    expectHandled("10,000 nested braces", `model m ${"{".repeat(10_000)}${"}".repeat(10_000)}\n`, ["VLM1003"]);
  });

  it("10,000 unclosed parentheses", () => {
    expectHandled("10,000 unclosed parentheses", `const x = ${"(".repeat(10_000)}\n`, ["VLM1003"]);
  });

  it("10,000 nested `-` prefixes", () => {
    expectHandled("10,000 `-` prefixes with spaces", `const x = ${"- ".repeat(10_000)}1\n`, ["VLM1003"]);
    expectHandled("10,000 `-` prefixes without spaces", `const x = ${"-".repeat(10_000)}1\n`, ["VLM1003"]);
  });

  it("10,000 nested `not` prefixes", () => {
    expectHandled("10,000 `not` prefixes", `const x = ${"not ".repeat(10_000)}true\n`, ["VLM1003"]);
  });

  it("deep nesting inside a model's forward", () => {
    const text = `model m {\n  forward(x: f32[2]) {\n    return ${"(".repeat(10_000)}x${")".repeat(10_000)}\n  }\n}\n`;
    expectHandled("10,000 parentheses in forward", text, ["VLM1003"]);
  });

  it("the CLI reports 10,000 nested parentheses with exit code 1 and VLM1003", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-stress-"));
    try {
      const file = path.join(dir, "deep.vlm");
      fs.writeFileSync(file, `const x = ${"(".repeat(10_000)}1${")".repeat(10_000)}\n`);
      const c = captureIo();
      const io = c.io;
      const code = await runCli(["check", file, "--format", "json"], io);
      expect(c.err).toBe("");
      expect(code).toBe(1);
      const json = JSON.parse(c.out) as { code: string; line: number }[];
      expect(json.map((d) => d.code)).toEqual(["VLM1003"]);
      expect(json[0]!.line).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stress: long single-line expressions", () => {
  const MB = 1024 * 1024;
  /** `head` then `item` joined by `sep` until the line is `size` long. */
  const line = (size: number, head: string, item: string, sep: string, tail = ""): string => {
    const n = Math.ceil((size - head.length - tail.length) / (item.length + sep.length));
    return head + new Array(n).fill(item).join(sep) + tail + "\n";
  };

  // A flat chain: no nesting in the source, but a left-leaning binary tree 200,000+ deep in the AST.
  // When this test was written, FileResolver.expr (src/lang/check/resolve.ts) recursed once per operator
  // and threw a RangeError from about 5,000 terms (const x = 1 + 1 + … + 1). Success or a
  // diagnostic (VLM1003) are both fine answers.
  it("a 1 MB sum `1 + 1 + … + 1` on one line", SLOW, () => {
    expectHandled("a 1 MB sum", line(MB, "const x = ", "1", " + "));
  });

  it("a 1 MB sum on one line, used by a model", SLOW, () => {
    expectHandled("a 1 MB sum used by a model", line(MB, "const x = ", "1", " + ") + modelUsing("x"));
  });

  // The same recursion through other left-associative chains (when written: a RangeError from about
  // 1,500 calls `f()()…`, 3,000 members `a.b.b…`, 6,000 indexings `a[0][0]…` or 6,000 `and`s). 100 KB each
  // (tens of thousands of links) is plenty, and keeps the time down: parsing runs at ~0.1–1 MB/s.
  it("100 KB chains of `and`, `.b`, `()`, `[0]`, `**` on one line", SLOW, () => {
    const failures: string[] = [];
    for (const [label, text] of [
      ["a 100 KB `and` chain", line(100_000, "const x = ", "true", " and ")],
      ["a 100 KB member chain", line(100_000, "const x = a", ".b", "")],
      ["a 100 KB call chain", line(100_000, "const x = f", "()", "")],
      ["a 100 KB index chain", line(100_000, "const x = a", "[0]", "")],
      ["a 100 KB power chain", line(100_000, "const x = ", "2", " ** ")],
    ] as const) {
      const checked = checkText(text);
      if (checked.error !== undefined) failures.push(`check threw on ${what(label, text)}: ${checked.error}`);
      else failures.push(...badSpans(checked.value.diagnostics, text));
    }
    expect(failures).toEqual([]);
  });

  it("a 200 KB list literal on one line", SLOW, () => {
    expectHandled("a 200 KB list", line(200_000, "const x = [", "1", ", ", "]"));
  });

  it("a 1 MB string literal and a 1 MB identifier", SLOW, () => {
    expectHandled("a 1 MB string", `const x = "${"a".repeat(MB)}"\n`, []);
    expectHandled("a 1 MB identifier", `const ${"a".repeat(MB)} = 1\n`, []);
  });
});
