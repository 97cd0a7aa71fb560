// Mutation fuzzing of the front end and elaborator: random edits of real .vlm sources must only ever
// produce diagnostics — never an exception, an internal error, a usage/internal exit code, or a
// span outside its file.
//
// Deterministic: a fixed seed and a PRNG written here. Every case draws from its own generator,
// derived from (seed, case index), so one case reproduces on its own:
//   VLMC_FUZZ_CASE=123 npx vitest run test/fuzz.test.ts        only case 123, printing its text
//   VLMC_FUZZ_SEED=7 VLMC_FUZZ_CASES=10000 npx vitest run test/fuzz.test.ts
// The seeds are examples/**/*.vlm and std/*.vlm as they are when the test runs, plus two inline
// specs with small models (std has no model, and `check` elaborates only models).
//
// Each case: 1–6 random edits (tokens from the lexer deleted, duplicated, swapped, inserted or
// replaced; keywords, brackets, odd characters, truncation, lines moved), then `check` through the
// API with the mutant as an override (examples: the full `check` every FULL_EVERY-th case, parse +
// resolve otherwise, since their elaboration is slow), and every CLI_EVERY-th case also
// `vlmc check --format json` on the mutant written to a temp dir. Asserted: nothing throws, no
// VLM9001, exit code 0 or 1 agreeing with the diagnostics, the JSON parses, and every span (of a
// diagnostic, a related note, or an AST node) lies inside its file.

import type { JsonDiagnostic } from "../src/diagnostics/render.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { check } from "../src/driver/check.js";
import { resolveProgram } from "../src/lang/check/resolve.js";
import { runCli } from "../src/cli/main.js";
import { captureIo } from "./helpers/capture-io.js";
import { CATALOG } from "../src/diagnostics/catalog.js";
import type { Diagnostic } from "../src/diagnostics/diagnostic.js";
import { renderGithub, renderPretty, toJson, type SourceLookup } from "../src/diagnostics/render.js";
import { Elaborator } from "../src/lang/elaborate/elaborate.js";
import { BUILTINS } from "../src/lang/builtins.js";
import { KEYWORDS, vlmLexer } from "../src/lang/parser/lexer.js";
import { parseText } from "../src/lang/parser/parse.js";
import { displayPath, loadProgram, STD_DIR } from "../src/lang/parser/program.js";

// ---------------------------------------------------------------------------------------------
// Speed: every case loads std (~60 KB of .vlm), and parsing it again for each of thousands of
// cases would take most of the time. parseText is memoised per (path, text): an unchanged file
// (std) is parsed once, a mutant (new text) always afresh. Cached results are deep-frozen, so a
// later phase that mutated a parse result would throw here rather than leak into the next case.

vi.mock("../src/lang/parser/parse.js", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../src/lang/parser/parse.js")>();
  const cache = new Map<string, { text: string; result: ReturnType<typeof mod.parseText> }>();
  const freeze = (v: unknown): void => {
    if (v === null || typeof v !== "object" || Object.isFrozen(v)) return;
    Object.freeze(v);
    for (const x of Object.values(v)) freeze(x);
  };
  return {
    ...mod,
    parseText: (file: string, text: string) => {
      const hit = cache.get(file);
      if (hit && hit.text === text) return hit.result;
      const result = mod.parseText(file, text);
      freeze(result);
      cache.set(file, { text, result });
      return result;
    },
  };
});

// ---------------------------------------------------------------------------------------------
// Configuration

const SEED = Number(process.env["VLMC_FUZZ_SEED"] ?? 0x5eed_7a1c);
const CASES = Number(process.env["VLMC_FUZZ_CASES"] ?? 2000);
/** Every CLI_EVERY-th case also runs through `vlmc check --format json` on a file in a temp dir. */
const CLI_EVERY = 6;
/**
 * Examples are full-size models whose elaboration takes 50–500 ms: every FULL_EVERY-th of their
 * cases runs the whole `check`; the others stop after parse + resolve. Mutants of std files (no
 * models, so `check` is parse + resolve) and of the inline seed (a tiny model) always run `check`.
 */
const FULL_EVERY = 6;
const ONLY_CASE = process.env["VLMC_FUZZ_CASE"] === undefined ? undefined : Number(process.env["VLMC_FUZZ_CASE"]);
const CHUNKS = 4;
/** Reported (not failed): a case slower than this is worth a look. */
const SLOW_MS = 2000;

// ---------------------------------------------------------------------------------------------
// PRNG: mulberry32, seeded per case through a 32-bit integer hash of (seed, index).

type Rng = () => number;

function mulberry32(a: number): Rng {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const below = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[below(rng, xs.length)]!;

// ---------------------------------------------------------------------------------------------
// Seeds

/** Used when no examples exist, and always: it is the only seed with a model to elaborate. */
const INLINE_SEED = `// Fuzz seed: a tiny vision-language model on std blocks.
import { clip_vision, mlp2x_gelu, vit, linear_projector as lp } from "std"

const WIDTH = 32
const HEADS = 2

block adapter(dim, out, act = gelu) {
  param scale: [out] = ones
  proj = lp(dim, out)
  forward(x) {
    f = act
    return f(proj(x)) * scale
  }
}

model tiny(width = WIDTH, depth = 2) {
  encoder vision = clip_vision(image: 32, patch: 8, width: width, depth: depth, heads: HEADS, mlp: 2 * width) frozen
  fusion proj = mlp2x_gelu(width, 64)
  head out = adapter(64, 10)
  layers = repeat(2, i) lp(64, 64)
  stage s { train proj, out }
  policy frozen { precision: fp16 }
  weights vision from "clip.safetensors" prefix "vision_model."

  forward(pixels: f32[B, 3, 32, 32]) {
    h = vision(pixels, layer: -2)
    expect depth >= 1 and not (depth > 8)
    h = proj(h)
    for i in range(2) {
      if i == 0 { h = layers[i](h) } else { h = h + layers[i](h) * 0.5 }
    }
    y = out(h[:, 0]) ** 2 - -1.5e-3
    return logits: y, pooled: h[:, 0]
  }

  graph features(pixels: f32[B, 3, 32, 32]) {
    return vision(pixels, pooled: true)
  }
}
`;

/** A model without std: its mutants reach elaboration cheaply. */
const INLINE_SMALL = `// Fuzz seed: a self-contained model (no std), so that its mutants elaborate quickly.
const D = 16
const HEADS = D / 8

block attn(width, heads = HEADS) {
  q = linear(width, width)
  k = linear(width, width)
  v = linear(width, width, bias: false)
  forward(x, mask = none) {
    return attention(q(x), k(x), v(x), heads, causal: true, mask: mask)
  }
}

block layer(width, hidden = 4 * width, eps = 1e-5) {
  norm = layer_norm(width, eps: eps)
  att = attn(width)
  fc = linear(width, hidden)
  out = linear(hidden, width)
  forward(x) {
    x = x + att(norm(x))
    return x + out(gelu(fc(x)))
  }
}

model small(depth = 2, vocab = 100) {
  embed = embedding(vocab, D)
  encoder patch = conv2d(3, D, 4, stride: 4)
  layers = repeat(depth, i) layer(D, hidden: 32 + 16 * i)
  param cls: [1, 1, D] = zeros
  head logits = linear(D, vocab)
  stage all { train layers, logits }

  forward(pixels: f32[B, 3, 16, 16], ids: i64[B, T <= 32]) {
    img = transpose(flatten(patch(pixels), start: 2), [0, 2, 1])
    x = concat(expand(cls, [dim(img, 0), 1, D]), img, embed(ids), axis: 1)
    expect tokens(x) <= 49
    for l in layers { x = l(x) }
    y = softmax(logits(x[:, 0]), axis: -1)
    return probs: y, image: mean(x[:, 1:17], axis: 1), last: x[:, len(layers) - 1, ::2]
  }
}
`;

interface Seed {
  /** Where the original lives (or "<inline>"). */
  readonly origin: string;
  /** Display path the mutant is checked under through the API (an override; never written). */
  readonly display: string;
  /** Path of the mutant relative to the CLI temp root; its directory mirrors the original's siblings. */
  readonly cliRel: string;
  /** Directory whose .vlm files are copied beside the CLI mutant, so relative imports resolve alike. */
  readonly siblingsFrom?: string;
  readonly text: string;
  /** Large seeds (examples) get the full `check` only every FULL_EVERY-th case. */
  readonly large: boolean;
  /** Inline seeds (the only ones with cheap models to elaborate) are drawn for a quarter of the cases. */
  readonly inline: boolean;
  /**
   * A std folder holding only the std files this seed needs (transitively), so that an API case
   * does not parse all of std: set in beforeAll, undefined = the real std.
   */
  stdDir?: string;
}

function vlmFilesUnder(dir: string, recursive: boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && recursive) out.push(...vlmFilesUnder(p, true));
    else if (e.isFile() && e.name.endsWith(".vlm")) out.push(p);
  }
  return out;
}

function loadSeeds(): Seed[] {
  const seeds: Seed[] = [];
  // Examples keep their own display path, so their relative imports read the real siblings.
  for (const abs of vlmFilesUnder(path.resolve("examples"), true)) {
    const display = displayPath(abs);
    seeds.push({
      origin: display,
      display,
      cliRel: display,
      siblingsFrom: path.dirname(abs),
      text: fs.readFileSync(abs, "utf8"),
      large: true,
      inline: false,
    });
  }
  // A std file checked under its own path would be loaded twice (once as entry, once as std):
  // give the mutant a path of its own; its `import ... from "std"` still reads the real std.
  for (const abs of vlmFilesUnder(STD_DIR, false)) {
    const name = path.basename(abs);
    seeds.push({
      origin: displayPath(abs),
      display: `test/__fuzz__/std/${name}`,
      cliRel: `std/${name}`,
      text: fs.readFileSync(abs, "utf8"),
      large: false,
      inline: false,
    });
  }
  seeds.push({
    origin: "<inline>",
    display: "test/__fuzz__/inline.vlm",
    cliRel: "inline/inline.vlm",
    text: INLINE_SEED,
    large: false,
    inline: true,
  });
  seeds.push({
    origin: "<inline-small>",
    display: "test/__fuzz__/small.vlm",
    cliRel: "inline/small.vlm",
    text: INLINE_SMALL,
    large: false,
    inline: true,
  });
  return seeds;
}

/**
 * The std files a text may need: those defining a name the text mentions, closed over the names
 * those files mention in turn (an over-approximation, which is all that is needed: std is one
 * namespace, and a std file missing from the folder would only turn into undefined names).
 */
function stdClosure(
  text: string,
  stdFiles: ReadonlyMap<string, { names: Set<string>; idents: Set<string> }>,
): string[] {
  const need = new Set<string>();
  const queue = [
    new Set(
      lex(text)
        .filter((t) => t.kind === "Identifier")
        .map((t) => t.image),
    ),
  ];
  while (queue.length > 0) {
    const idents = queue.pop()!;
    for (const [file, info] of stdFiles) {
      if (need.has(file)) continue;
      if ([...info.names].some((n) => idents.has(n))) {
        need.add(file);
        queue.push(info.idents);
      }
    }
  }
  return [...need].sort();
}

/** Gives each seed a std folder of its own closure (shared between seeds with the same closure). */
function trimStd(seeds: Seed[], root: string): void {
  const stdFiles = new Map<string, { names: Set<string>; idents: Set<string> }>();
  for (const abs of vlmFilesUnder(STD_DIR, false)) {
    const text = fs.readFileSync(abs, "utf8");
    const names = new Set(parseText(abs, text).ast.decls.flatMap((d) => (d.kind === "import" ? [] : [d.name])));
    stdFiles.set(abs, {
      names,
      idents: new Set(
        lex(text)
          .filter((t) => t.kind === "Identifier")
          .map((t) => t.image),
      ),
    });
  }
  const dirs = new Map<string, string>();
  for (const seed of seeds) {
    const files = stdClosure(seed.text, stdFiles);
    const key = files.map((f) => path.basename(f)).join(",");
    let dir = dirs.get(key);
    if (dir === undefined) {
      dir = path.join(root, `std-${dirs.size}`);
      fs.mkdirSync(dir, { recursive: true });
      for (const f of files) fs.copyFileSync(f, path.join(dir, path.basename(f)));
      dirs.set(key, dir);
    }
    // Keep the trimmed folder only where it changes nothing for the original text.
    const codes = (stdDir?: string) =>
      parseAndResolve(seed.display, seed.text, stdDir)
        .diagnostics.map((d) => d.code)
        .sort()
        .join(",");
    const trimmed = codes(dir);
    if (trimmed === "" || trimmed === codes(undefined)) seed.stdDir = dir;
  }
}

/** `check` short of elaboration: loadProgram and resolveProgram, as `elaborate` in src/driver/check.ts. */
function parseAndResolve(
  display: string,
  text: string,
  stdDir?: string,
): { diagnostics: Diagnostic[]; sources: SourceLookup; program: ReturnType<typeof loadProgram> } {
  const program = loadProgram([display], { overrides: new Map([[display, text]]), ...(stdDir ? { stdDir } : {}) });
  const diagnostics = [...program.diagnostics];
  resolveProgram(program, (d) => diagnostics.push(d));
  return { diagnostics, sources: (p) => program.files.get(p)?.source, program };
}

// ---------------------------------------------------------------------------------------------
// Mutations

interface Tok {
  readonly start: number;
  readonly end: number;
  readonly image: string;
  readonly kind: string;
}

function lex(text: string): Tok[] {
  return vlmLexer.tokenize(text).tokens.map((t) => ({
    start: t.startOffset,
    end: t.startOffset + t.image.length,
    image: t.image,
    kind: t.tokenType.name,
  }));
}

const KEYWORD_WORDS = KEYWORDS.map((k) => (k.PATTERN as RegExp).source);
const SOFT_WORDS = [
  "prefix",
  "encoder",
  "fusion",
  "head",
  "int",
  "float",
  "bool",
  "string",
  "tensor",
  "f32",
  "f16",
  "bf16",
  "i64",
  "i32",
  "int8",
  "fp16",
  "std",
  "B",
  "T",
  "x",
  "self",
  "main",
];
const BUILTIN_WORDS = [...BUILTINS.keys()];
// No mid-sized counts (1000, 65536): as a repeat count they are valid and make one case elaborate
// tens of thousands of layers for half a minute. Past the limits (repeat ≤ 100000) is fine: rejected fast.
const INTERESTING_NUMBERS = [
  "0",
  "1",
  "2",
  "3",
  "7",
  "16",
  "-1",
  "-2",
  "1_0",
  "100001",
  "2147483648",
  "4294967296",
  "9007199254740991",
  "9007199254740993",
  "99999999999999999999",
  "0.0",
  "0.5",
  "-0.5",
  "1e-30",
  "1e30",
  "1e308",
  "1e309",
  "2.5E3",
  "1_0.0_1",
  "00",
  "007",
  "0_",
  "1__0",
];
const STRINGS = [
  '"std"',
  '""',
  '"missing.vlm"',
  '"./"',
  '"../std/vit.vlm"',
  '"clip.safetensors"',
  '"\\n"',
  '"\\""',
  '"é²"',
  '"std/vit"',
  '"/etc/passwd"',
];
const BRACKETS = "()[]{}";
const ODD_CHARS = [
  '"',
  "\\",
  "\n",
  "\r",
  "\r\n",
  "\t",
  "/",
  "*",
  "/*",
  "*/",
  "//",
  "#",
  "$",
  "`",
  "'",
  "?",
  "!",
  "~",
  "^",
  "&",
  "|",
  "\u00e9",
  "\u00b2",
  "\u0000",
  "\ufeff",
  "\u2028",
  "\u00a0",
  "\ud83d\ude00",
  "\ud800",
  "\udc00",
  "_",
  "0",
  "9",
  ".",
  ":",
  ";",
  ",",
  "=",
  "-",
  "+",
  "@",
  "%",
  "<",
  ">",
];

function boundaries(toks: Tok[], text: string): number[] {
  const b = [0, text.length];
  for (const t of toks) b.push(t.start, t.end);
  return b;
}

const insertAt = (text: string, at: number, s: string): string => text.slice(0, at) + s + text.slice(at);
const replaceRange = (text: string, start: number, end: number, s: string): string =>
  text.slice(0, start) + s + text.slice(end);

interface Pools {
  readonly images: readonly string[];
  readonly identifiers: readonly string[];
}

type Mutation = (text: string, rng: Rng, pools: Pools) => string;

function withTokens(f: (text: string, toks: Tok[], rng: Rng, pools: Pools) => string): Mutation {
  return (text, rng, pools) => {
    const toks = lex(text);
    return toks.length === 0
      ? insertAt(text, below(rng, text.length + 1), pick(rng, pools.images))
      : f(text, toks, rng, pools);
  };
}

function lines(text: string): string[] {
  return text.split("\n");
}

const MUTATIONS: readonly (readonly [number, string, Mutation])[] = [
  [
    6,
    "delete-token",
    withTokens((text, toks, rng) => {
      const t = pick(rng, toks);
      return replaceRange(text, t.start, t.end, "");
    }),
  ],
  [
    4,
    "duplicate-token",
    withTokens((text, toks, rng) => {
      const t = pick(rng, toks);
      return insertAt(text, t.end, " " + t.image);
    }),
  ],
  [
    4,
    "swap-tokens",
    withTokens((text, toks, rng) => {
      const i = below(rng, toks.length);
      const j = rng() < 0.5 ? Math.min(toks.length - 1, i + 1) : below(rng, toks.length);
      const [a, b] = i <= j ? [toks[i]!, toks[j]!] : [toks[j]!, toks[i]!];
      if (a === b) return text;
      return text.slice(0, a.start) + b.image + text.slice(a.end, b.start) + a.image + text.slice(b.end);
    }),
  ],
  [
    5,
    "insert-token",
    withTokens((text, toks, rng, pools) =>
      insertAt(text, pick(rng, boundaries(toks, text)), " " + pick(rng, pools.images) + " "),
    ),
  ],
  [
    5,
    "replace-token",
    withTokens((text, toks, rng, pools) => {
      const t = pick(rng, toks);
      return replaceRange(text, t.start, t.end, pick(rng, pools.images));
    }),
  ],
  [
    5,
    "replace-identifier",
    withTokens((text, toks, rng, pools) => {
      const ids = toks.filter((t) => t.kind === "Identifier");
      if (ids.length === 0) return text;
      const t = pick(rng, ids);
      return replaceRange(text, t.start, t.end, pick(rng, pools.identifiers));
    }),
  ],
  [
    5,
    "replace-number",
    withTokens((text, toks, rng) => {
      const nums = toks.filter((t) => t.kind === "Integer" || t.kind === "Float");
      const t = nums.length > 0 ? pick(rng, nums) : pick(rng, toks);
      return replaceRange(text, t.start, t.end, pick(rng, INTERESTING_NUMBERS));
    }),
  ],
  [
    4,
    "insert-keyword",
    withTokens((text, toks, rng) =>
      insertAt(text, pick(rng, boundaries(toks, text)), " " + pick(rng, KEYWORD_WORDS) + " "),
    ),
  ],
  [
    4,
    "insert-brackets",
    withTokens((text, toks, rng) => {
      let s = "";
      for (let n = 1 + below(rng, 4); n > 0; n--) s += BRACKETS[below(rng, BRACKETS.length)];
      return insertAt(text, pick(rng, boundaries(toks, text)), s);
    }),
  ],
  [
    3,
    "wrap-tokens",
    withTokens((text, toks, rng) => {
      const i = below(rng, toks.length);
      const j = Math.min(toks.length - 1, i + below(rng, 6));
      const [open, close] = pick(rng, [
        ["(", ")"],
        ["[", "]"],
        ["{", "}"],
        ["-(", ")"],
        ["not (", ")"],
        ["f(", ")"],
        ["(", ""],
      ] as const);
      return (
        text.slice(0, toks[i]!.start) +
        open +
        text.slice(toks[i]!.start, toks[j]!.end) +
        close +
        text.slice(toks[j]!.end)
      );
    }),
  ],
  [
    3,
    "delete-range",
    withTokens((text, toks, rng) => {
      const i = below(rng, toks.length);
      const j = Math.min(toks.length - 1, i + below(rng, 12));
      return replaceRange(text, toks[i]!.start, toks[j]!.end, "");
    }),
  ],
  [
    3,
    "copy-range",
    withTokens((text, toks, rng) => {
      const i = below(rng, toks.length);
      const j = Math.min(toks.length - 1, i + below(rng, 60));
      return insertAt(text, pick(rng, boundaries(toks, text)), " " + text.slice(toks[i]!.start, toks[j]!.end) + " ");
    }),
  ],
  [
    3,
    "delete-char",
    (text, rng) => {
      const at = below(rng, text.length);
      return replaceRange(text, at, at + 1, "");
    },
  ],
  [3, "insert-char", (text, rng) => insertAt(text, below(rng, text.length + 1), pick(rng, ODD_CHARS))],
  [
    2,
    "replace-char",
    (text, rng) => {
      const at = below(rng, text.length);
      return replaceRange(text, at, at + 1, pick(rng, ODD_CHARS));
    },
  ],
  [3, "truncate", (text, rng) => text.slice(0, below(rng, text.length + 1))],
  [
    2,
    "delete-line",
    (text, rng) => {
      const ls = lines(text);
      ls.splice(below(rng, ls.length), 1);
      return ls.join("\n");
    },
  ],
  [
    2,
    "duplicate-line",
    (text, rng) => {
      const ls = lines(text);
      const i = below(rng, ls.length);
      ls.splice(i, 0, ls[i]!);
      return ls.join("\n");
    },
  ],
  [
    2,
    "swap-lines",
    (text, rng) => {
      const ls = lines(text);
      const i = below(rng, ls.length);
      const j = below(rng, ls.length);
      [ls[i], ls[j]] = [ls[j]!, ls[i]!];
      return ls.join("\n");
    },
  ],
  [
    2,
    "insert-import",
    (text, rng, pools) => {
      // A whole import (self-imports are cycles, siblings real files, others missing) at a line start.
      const ls = lines(text);
      const at = rng() < 0.5 ? 0 : below(rng, ls.length + 1);
      const paths = pools.images.filter(
        (i) => i.startsWith('"./') || i.startsWith('"../') || i === '"std"' || i === '"missing.vlm"',
      );
      const names = Array.from({ length: below(rng, 3) }, () => pick(rng, pools.identifiers));
      ls.splice(at, 0, `import { ${names.join(", ")} } from ${pick(rng, paths)}`);
      return ls.join("\n");
    },
  ],
  [
    2,
    "unterminate",
    withTokens((text, toks, rng) =>
      insertAt(text, pick(rng, boundaries(toks, text)), pick(rng, ['"', "/*", '"abc', "// "])),
    ),
  ],
];

/** Edits that usually keep the text parseable, so that resolution and elaboration get their turn. */
const SOFT_MUTATIONS: readonly (readonly [number, string, Mutation])[] = [
  ...MUTATIONS.filter(
    ([, name]) =>
      name === "replace-number" || name === "replace-identifier" || name === "delete-line" || name === "duplicate-line",
  ),
  [
    4,
    "swap-same-kind",
    withTokens((text, toks, rng) => {
      const a = pick(rng, toks);
      const same = toks.filter((t) => t.kind === a.kind && t.start > a.start);
      if (same.length === 0) return text;
      const b = pick(rng, same);
      return text.slice(0, a.start) + b.image + text.slice(a.end, b.start) + a.image + text.slice(b.end);
    }),
  ],
];

function pickMutation(
  rng: Rng,
  from: readonly (readonly [number, string, Mutation])[],
): readonly [number, string, Mutation] {
  let r = rng() * from.reduce((sum, [w]) => sum + w, 0);
  for (const m of from) {
    r -= m[0];
    if (r < 0) return m;
  }
  return from[from.length - 1]!;
}

function poolsFor(seeds: readonly Seed[]): Pools {
  const images = new Set<string>([...KEYWORD_WORDS, ...SOFT_WORDS, ...INTERESTING_NUMBERS, ...STRINGS, ...BRACKETS]);
  const identifiers = new Set<string>([...SOFT_WORDS, ...BUILTIN_WORDS]);
  for (const s of seeds) {
    images.add(JSON.stringify("./" + path.basename(s.display))); // a self- or sibling import
    images.add(JSON.stringify("../" + path.basename(path.dirname(s.display)) + "/" + path.basename(s.display)));
    for (const t of lex(s.text)) {
      images.add(t.image);
      if (t.kind === "Identifier") identifiers.add(t.image);
    }
  }
  return { images: [...images].sort(), identifiers: [...identifiers].sort() };
}

interface Mutant {
  readonly seed: Seed;
  readonly text: string;
  readonly ops: readonly string[];
}

function mutant(index: number, seeds: readonly Seed[], pools: Pools): Mutant {
  const rng = mulberry32(caseSeed(SEED, index));
  const inline = seeds.filter((s) => s.inline);
  const others = seeds.filter((s) => !s.inline);
  const seed = others.length === 0 || rng() < 0.25 ? pick(rng, inline) : pick(rng, others);
  let text = seed.text;
  const ops: string[] = [];
  // Half the cases make one edit, the rest up to six. Most edits break the syntax, so for the
  // inline seeds (the cheap models) most cases make "soft" edits that often leave it intact.
  const soft = seed.inline && rng() < 0.7;
  const count = rng() < 0.5 ? 1 : 2 + below(rng, soft ? 2 : 5);
  for (let k = 0; k < count; k++) {
    const [, name, f] = pickMutation(rng, soft ? SOFT_MUTATIONS : MUTATIONS);
    ops.push(name);
    text = f(text, rng, pools);
  }
  return { seed, text, ops };
}

// ---------------------------------------------------------------------------------------------
// Checks

function spanProblem(
  where: string,
  span: { file: string; start: number; end: number },
  sources: SourceLookup,
): string | undefined {
  const src = sources(span.file);
  if (!src) return `${where}: span in unknown file ${JSON.stringify(span.file)}`;
  const { start, end } = span;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > src.text.length) {
    return `${where}: span [${start}, ${end}) outside ${span.file} (length ${src.text.length})`;
  }
  return undefined;
}

function diagnosticProblems(diags: readonly Diagnostic[], sources: SourceLookup): string[] {
  const problems: string[] = [];
  diags.forEach((d, i) => {
    const where = `diagnostic #${i} ${d.code} "${d.message}"`;
    if (!(d.code in CATALOG)) problems.push(`${where}: code not in the catalog`);
    if (d.code === "VLM9001") problems.push(`${where}: internal compiler error`);
    if (typeof d.message !== "string" || d.message.length === 0) problems.push(`${where}: empty message`);
    if (!["error", "warning", "note"].includes(d.severity)) problems.push(`${where}: bad severity ${d.severity}`);
    if (d.span) {
      const p = spanProblem(where, d.span, sources);
      if (p) problems.push(p);
    }
    for (const r of d.related ?? []) {
      const p = spanProblem(`${where} related "${r.message}"`, r.span, sources);
      if (p) problems.push(p);
    }
  });
  return problems;
}

/** Every span in an AST (keys `span`, `nameSpan`, `fromSpan`, ...) lies inside the text. */
function astSpanProblems(ast: unknown, file: string, length: number): string[] {
  const problems: string[] = [];
  const walk = (v: unknown, at: string) => {
    if (problems.length > 3 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${at}[${i}]`));
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (/[sS]pan$/.test(k) && x && typeof x === "object" && "start" in x) {
        const s = x as { file: string; start: number; end: number };
        if (
          s.file !== file ||
          !Number.isInteger(s.start) ||
          !Number.isInteger(s.end) ||
          s.start < 0 ||
          s.start > s.end ||
          s.end > length
        ) {
          problems.push(`AST ${at}.${k} = ${JSON.stringify(s)} outside ${file} (length ${length})`);
        }
      } else walk(x, `${at}.${k}`);
    }
  };
  walk(ast, "ast");
  return problems;
}

function errorText(e: unknown): string {
  return e instanceof Error
    ? `${e.name}: ${e.message}\n${(e.stack ?? "").split("\n").slice(1, 8).join("\n")}`
    : String(e);
}

// ---------------------------------------------------------------------------------------------
// The run

interface Failure {
  readonly index: number;
  readonly mutant: Mutant;
  readonly problems: readonly string[];
}

function report(f: Failure): string {
  const shown =
    f.mutant.text.length > 1500
      ? f.mutant.text.slice(0, 1500) + `\n… (${f.mutant.text.length - 1500} more characters)`
      : f.mutant.text;
  return [
    `case ${f.index} (seed ${SEED}, reproduce with VLMC_FUZZ_SEED=${SEED} VLMC_FUZZ_CASE=${f.index}) of ${f.mutant.seed.origin}; edits: ${f.mutant.ops.join(", ")}`,
    ...f.problems.map((p) => "  - " + p),
    "  mutated text:",
    "  ----8<----",
    shown,
    "  ----8<----",
  ].join("\n");
}

const stats = {
  full: 0,
  light: 0,
  cli: 0,
  clean: 0,
  elaborations: 0,
  slow: [] as string[],
  apiMs: 0,
  mutateMs: 0,
  fullLargeMs: 0,
  cliMs: 0,
  maxMs: 0,
  maxCase: -1,
};
const byCode = new Map<string, number>();
let seeds: Seed[] = [];
let pools: Pools;
let tmpRoot = "";

async function runCase(index: number): Promise<Failure | undefined> {
  const tm = performance.now();
  const m = mutant(index, seeds, pools);
  const problems: string[] = [];
  const t0 = performance.now();
  stats.mutateMs += t0 - tm;

  // 1. The API, with the mutant as an in-memory override.
  const full = !m.seed.large || index % FULL_EVERY === 0 || index === ONLY_CASE;
  try {
    const stdDir = m.seed.stdDir;
    const result = full
      ? check([m.seed.display], { overrides: new Map([[m.seed.display, m.text]]), ...(stdDir ? { stdDir } : {}) })
      : parseAndResolve(m.seed.display, m.text, stdDir);
    if (full) stats.full++;
    else stats.light++;
    const hasError = result.diagnostics.some((d) => d.severity === "error");
    if (!hasError) stats.clean++;
    for (const d of result.diagnostics) byCode.set(d.code, (byCode.get(d.code) ?? 0) + 1);
    problems.push(...diagnosticProblems(result.diagnostics, result.sources));
    if ("ok" in result && result.ok === hasError) problems.push(`ok is ${result.ok} but the diagnostics say otherwise`);
    const entry = result.program.files.get(m.seed.display);
    if (!entry) problems.push(`the entry ${m.seed.display} is not among the program's files`);
    else {
      if (entry.source.text !== m.text) problems.push("the entry's source text is not the mutant");
      problems.push(...astSpanProblems(entry.ast, m.seed.display, m.text.length));
    }
    // The renderers must cope with whatever spans came out.
    renderPretty(result.diagnostics, result.sources, index % 2 === 0);
    renderGithub(result.diagnostics, result.sources);
    toJson(result.diagnostics, result.sources);
  } catch (e) {
    problems.push(`${full ? "check()" : "loadProgram/resolveProgram"} threw ${errorText(e)}`);
  }

  const t1 = performance.now();
  stats.apiMs += t1 - t0;
  if (full && m.seed.large) stats.fullLargeMs += t1 - t0;

  // 2. The CLI on a file on disk, for every CLI_EVERY-th case.
  if (index % CLI_EVERY === 0 || index === ONLY_CASE) {
    const file = path.join(tmpRoot, m.seed.cliRel);
    const original = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
    fs.writeFileSync(file, m.text);
    const c = captureIo();
    const io = c.io;
    try {
      const code = await runCli(["check", file, "--format", "json"], io);
      stats.cli++;
      if (code !== 0 && code !== 1) problems.push(`CLI exit code ${code}; stderr: ${c.err.slice(0, 2000)}`);
      if (c.err.includes("VLM9001")) problems.push(`CLI reported an internal error: ${c.err.slice(0, 2000)}`);
      let json: unknown;
      try {
        json = JSON.parse(c.out);
      } catch (e) {
        problems.push(`CLI output is not JSON (${errorText(e)}): ${c.out.slice(0, 500)}`);
      }
      if (json !== undefined) {
        if (!Array.isArray(json)) problems.push("CLI JSON is not an array");
        else {
          const hasError = json.some((d: { severity?: string }) => d.severity === "error");
          if ((code === 1) !== hasError)
            problems.push(`CLI exit code ${code} but ${hasError ? "an" : "no"} error diagnostic`);
          problems.push(...jsonProblems(json, file, m.text));
        }
      }
    } catch (e) {
      problems.push(`runCli threw ${errorText(e)}`);
    } finally {
      if (original === undefined) fs.rmSync(file, { force: true });
      else fs.writeFileSync(file, original);
    }
  }

  const ms = performance.now() - t0;
  stats.cliMs += performance.now() - t1;
  if (ms > stats.maxMs) {
    stats.maxMs = ms;
    stats.maxCase = index;
  }
  if (ms > SLOW_MS) stats.slow.push(`case ${index} (${m.seed.origin}; ${m.ops.join(", ")}): ${Math.round(ms)} ms`);
  return problems.length > 0 ? { index, mutant: m, problems } : undefined;
}

function jsonProblems(diags: JsonDiagnostic[], mutantFile: string, mutantText: string): string[] {
  const problems: string[] = [];
  diags.forEach((d, i) => {
    const where = `JSON diagnostic #${i} ${d.code} "${d.message}"`;
    if (typeof d.code !== "string" || typeof d.message !== "string" || typeof d.severity !== "string")
      problems.push(`${where}: malformed ${JSON.stringify(d)}`);
    if (d.code === "VLM9001") problems.push(`${where}: internal compiler error`);
    if (d.file === null) {
      if (d.line !== null || d.column !== null) problems.push(`${where}: a position without a file`);
      return;
    }
    // Other files are read afresh (not cached): std may be edited while the test runs.
    const abs = path.resolve(d.file);
    let text = abs === path.resolve(mutantFile) ? mutantText : undefined;
    if (text === undefined) {
      try {
        text = fs.readFileSync(abs, "utf8");
      } catch {
        problems.push(`${where}: names a file that does not exist: ${d.file}`);
        return;
      }
    }
    const ls = text.split("\n");
    const ok = (line: number | null, col: number | null) =>
      Number.isInteger(line) &&
      Number.isInteger(col) &&
      line! >= 1 &&
      line! <= ls.length &&
      col! >= 1 &&
      col! <= ls[line! - 1]!.length + 1;
    if (!ok(d.line, d.column) || !ok(d.endLine, d.endColumn)) {
      problems.push(
        `${where}: position ${d.line}:${d.column}-${d.endLine}:${d.endColumn} outside ${d.file} (${ls.length} lines)`,
      );
    } else if (d.endLine! < d.line! || (d.endLine === d.line && d.endColumn! < d.column!)) {
      problems.push(`${where}: ends before it starts (${d.line}:${d.column}-${d.endLine}:${d.endColumn})`);
    }
  });
  return problems;
}

describe("fuzz: mutated sources give diagnostics, never crashes", () => {
  const failures: Failure[] = [];
  let elaborateSpy: { mock: { calls: unknown[] }; mockRestore: () => void } | undefined;
  const started = performance.now();

  beforeAll(() => {
    seeds = loadSeeds();
    pools = poolsFor(seeds);
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-fuzz-"));
    for (const s of seeds) {
      const dir = path.dirname(path.join(tmpRoot, s.cliRel));
      fs.mkdirSync(dir, { recursive: true });
      if (s.siblingsFrom)
        for (const f of vlmFilesUnder(s.siblingsFrom, false)) fs.copyFileSync(f, path.join(dir, path.basename(f)));
    }
    trimStd(seeds, path.join(tmpRoot, "__std__"));
    elaborateSpy = vi.spyOn(Elaborator.prototype, "elaborateModel");
  });

  afterAll(() => {
    stats.elaborations = elaborateSpy?.mock.calls.length ?? 0;
    elaborateSpy?.mockRestore();
    if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
    const top = [...byCode]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c}×${n}`)
      .join(" ");
    console.log(
      [
        `fuzz: seed ${SEED}, ${seeds.length} seed files (${seeds.map((s) => s.origin).join(", ")})`,
        `  ${stats.full + stats.light} cases: ${stats.full} through check(), ${stats.light} through parse + resolve (${stats.clean} without errors; ${stats.elaborations} model elaborations); ${stats.cli} also through runCli`,
        `  std trimmed for ${seeds.filter((s) => s.stdDir).length} of ${seeds.length} seeds`,
        `  ${Math.round(performance.now() - started)} ms in all: mutation ${Math.round(stats.mutateMs)} ms, API ${Math.round(stats.apiMs)} ms (full checks of examples ${Math.round(stats.fullLargeMs)} ms), CLI ${Math.round(stats.cliMs)} ms; slowest case ${stats.maxCase} at ${Math.round(stats.maxMs)} ms`,
        `  diagnostics: ${top}`,
        ...(stats.slow.length > 0 ? ["  slow cases:", ...stats.slow.map((s) => "    " + s)] : []),
      ].join("\n"),
    );
  });

  it("has seeds", () => {
    expect(seeds.length).toBeGreaterThan(0);
    // Not an assertion (std and the language change under this test): a broken inline seed only
    // loses coverage, which the summary's count of elaborations shows.
    for (const inline of seeds.filter((s) => s.inline)) {
      const r = check([inline.display], { overrides: new Map([[inline.display, inline.text]]) });
      if (!r.ok)
        console.warn(
          `fuzz: the seed ${inline.origin} no longer checks clean, so few of its mutants reach elaboration:\n${r.diagnostics.map((d) => `  ${d.code} ${d.message}`).join("\n")}`,
        );
    }
  });

  if (ONLY_CASE !== undefined) {
    it(`case ${ONLY_CASE}`, async () => {
      const m = mutant(ONLY_CASE, seeds, pools);
      console.log(
        `case ${ONLY_CASE} of ${m.seed.origin}; edits: ${m.ops.join(", ")}\n----8<----\n${m.text}\n----8<----`,
      );
      const f = await runCase(ONLY_CASE);
      expect(f ? report(f) : "no problems").toBe("no problems");
    });
    return;
  }

  const perChunk = Math.ceil(CASES / CHUNKS);
  for (let c = 0; c < CHUNKS; c++) {
    const from = c * perChunk;
    const to = Math.min(CASES, from + perChunk);
    it(`cases ${from}…${to - 1}`, { timeout: 120_000 }, async () => {
      const mine: Failure[] = [];
      for (let i = from; i < to; i++) {
        const f = await runCase(i);
        if (f) mine.push(f);
      }
      failures.push(...mine);
      // Show the first few in full; the count says how many more.
      const shown = mine.slice(0, 5).map(report);
      if (mine.length > 5)
        shown.push(
          `… and ${mine.length - 5} more failing cases in this chunk: ${mine
            .slice(5)
            .map((f) => f.index)
            .join(", ")}`,
        );
      expect(shown.join("\n\n")).toBe("");
    });
  }
});
