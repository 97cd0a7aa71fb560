// Tests of the formatter: formatting never changes the AST, loses or reorders a comment, or changes
// already-formatted text; plus the layout and the minimal parentheses it promises.

import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { parseText } from "../parser/parse.js";
import { formatText, MAX_WIDTH } from "./format.js";

const SPAN_KEYS = new Set(["span", "nameSpan", "keySpan", "fromSpan", "pathSpan"]);

/** The AST without source positions, which formatting is free to change. */
function stripSpans(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSpans);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !SPAN_KEYS.has(k))
      .map(([k, v]) => [k, stripSpans(v)]),
  );
}

function parse(src: string): { ast: unknown; comments: string[] } {
  const r = parseText("t.vlm", src);
  expect(r.diagnostics).toEqual([]);
  // The formatter trims trailing white space off line comments.
  return {
    ast: stripSpans(r.ast.decls),
    comments: r.comments.map((c) => (c.text.startsWith("//") ? c.text.trimEnd() : c.text)),
  };
}

function format(src: string): string {
  const r = formatText("t.vlm", src);
  if (!r.ok) throw new Error(`refused to format: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  return r.text;
}

/** Formats `src` and checks every promise that holds for any input; returns the output. */
function checkRoundTrip(src: string): string {
  const out = format(src);
  const before = parse(src);
  const after = parse(out);
  expect(after.ast).toEqual(before.ast);
  expect(after.comments).toEqual(before.comments);
  expect(format(out)).toBe(out);
  return out;
}

/** The formatted text of one expression. */
function formatExpr(e: string): string {
  const out = checkRoundTrip(`const v = ${e}\n`);
  return out.slice("const v = ".length, -1);
}

const SPEC = `// A spec touching every construct of the language.
import { clip_vit, llama as lm, } from "std";
import {} from "./empty.vlm"   // nothing

const EPS = 1e-5; const BIG = 1_000_000
const MIXED = [1, 2.5, -3, -0, 1.5e3, "s\\"q\\"\\n\\t\\\\", true, false, none, [], [[1], [2,],]]

/* A block
   comment spanning lines. */
block layer(width: int, heads: int = width / 64, x: f32[B, N <= 64, 3,], y: T[], z,) {
  const HALF = width / 2
  attn = attention(width, heads: heads,)   // trailing comment
  norm param scale: [width, 1] = ones(width) frozen
  param bias: []
  encoder sub = mlp(width) frozen;

  // chooses members
  if heads > 8 { big = mlp(width) } else if heads == 8 { mid = mlp(HALF) } else /* otherwise */ { small = mlp(1) }
  if heads < 2 {} else { if heads < 1 { tiny = mlp(0) } }
  forward(x: f32[B, N, D], mask: bool[B, N] = none) { // on the brace
    h = x + attn(norm(x), mask: mask); y = h
    // own-line comment


    y = -x ** 2 + (-x) ** 2 + (-3) ** 2 + -3 ** 2 + a - -3 + 2 ** -1 + (a ** b) ** c + a ** b ** c
    z = not (a and b) or not a == b and (a < b) == c or a != b and a >= b and a <= b and a > b
    w = (a @ b)[0] + x[:, 1:] + x[a:b:c] + x[::2] + x[:] + x[1:] + x[:-1] + (-3).foo + f(g)(h).i[j]
    m = a % b / c * d - - - e
    q, k, v = split(f(
      x, // inside a call
      axis: -1,
    ))
    if a { return a } else if b { return b } else { return c }
    for l in layers {
      x = l(x) /* after */ /* twice */
    } // after the loop
    const K = 3
    expect x.shape[0] == 3 and (K > 2 or not K)
    return x, pooled: h, y
  }
}

model vlm(depth: int = 12, size = [224, 224]) {
  encoder vision = clip_vit(image: 224, patch: 14, width: 1024, depth: 24, heads: 16, mlp_ratio: 4.0) frozen
  head param logit_scale: [] = full(2.6592)
  layers = repeat(depth, i) layer(width, cross: i % 2 == 0)
  stack = repeat(2) layer(8)
  stage pretrain { train proj; /* and */ train llm, vision }
  stage nothing {}
  policy frozen { quantize: int8 }
  policy encoder { quantize: int8, precision: fp16, }
  policy none_left {}
  weights vision from "clip.safetensors" prefix "vision_model."
  weights from "all.safetensors"
  weights from "x"; prefix = f(1)
  weights llm { "model.": "", "lm_head.": none, tie "lm_head.weight" = "embed_tokens.weight", }
  weights from "hf" prefix "a." { "vision_tower.vision_model.": "vision.", "vision_tower.": "vision." }
  graph embed(ids: i64[B, T]) { return llm.embed(ids) }
  forward() {}
  forward(pixels: f32[B, 3, 224, 224], ids: i64[B, T <= 3520]) {
    feats = vision(pixels)
    return lm(ids, prefix: feats)
  }
}
model plain { x = 1 } // after a model
// at the end
`;

describe("round trip", () => {
  it("keeps the AST, every comment and its order on a spec using every construct", () => {
    checkRoundTrip(SPEC);
  });

  it("is idempotent and stable on its own output", () => {
    const once = format(SPEC);
    expect(format(once)).toBe(once);
  });

  it("keeps every comment exactly once", () => {
    const out = format(SPEC);
    expect(parseText("t.vlm", out).comments.length).toBe(parseText("t.vlm", SPEC).comments.length);
    expect(out.match(/inside a call/g)).toHaveLength(1);
  });

  it("formats an empty file, and one of only comments", () => {
    expect(format("")).toBe("");
    expect(format("  \n\n")).toBe("");
    expect(checkRoundTrip("// a\n\n\n// b\n")).toBe("// a\n\n// b\n");
  });
});

describe("layout", () => {
  it("prints the canonical layout", () => {
    const src = `import { a,b as c } from "std"
import { d } from "std"
const X=1;const Y = 2
block b(w:int,h:int=2) {


  x=f(w,h:h)   // why


  y = g(x) ;z = [1,2,]
  forward(x) { return x }
}
model m { stage s { train a; train b } policy frozen { quantize: int8 } }
`;
    expect(checkRoundTrip(src)).toBe(`import { a, b as c } from "std"
import { d } from "std"
const X = 1
const Y = 2

block b(w: int, h: int = 2) {
  x = f(w, h: h) // why

  y = g(x)
  z = [1, 2]
  forward(x) {
    return x
  }
}

model m {
  stage s { train a, b }
  policy frozen { quantize: int8 }
}
`);
  });

  it("prints if chains, else if and empty bodies", () => {
    const src = "model m { forward() { if a {} else if b { x = 1 } else {} } graph g() {} }";
    expect(checkRoundTrip(src)).toBe(`model m {
  forward() {
    if a {
    } else if b {
      x = 1
    } else {}
  }
  graph g() {}
}
`);
  });

  it("prints literals by their source text and re-escapes strings", () => {
    expect(formatExpr("1e-5")).toBe("1e-5");
    expect(formatExpr("-2.50E+3")).toBe("-2.50E+3");
    expect(formatExpr("1_000")).toBe("1000");
    expect(formatExpr("-0")).toBe("-0");
    expect(formatExpr('"a\\"b\\\\c\\n\td"')).toBe('"a\\"b\\\\c\\n\\td"');
  });

  it("prints slices without spaces", () => {
    expect(formatExpr("x[ : , 1 : ]")).toBe("x[:, 1:]");
    expect(formatExpr("x[a : b : c, ::2, :-1, i]")).toBe("x[a:b:c, ::2, :-1, i]");
    expect(formatExpr("x[a:b:]")).toBe("x[a:b]");
  });

  it("keeps the `;` that stops a following `prefix` member reading as a weights prefix", () => {
    const out = checkRoundTrip('model m { weights from "w"; prefix = f(1)\n prefix param p: [1] }');
    expect(out).toContain('weights from "w";\n');
    expect(checkRoundTrip('model m { weights from "w"; x = 1 }')).not.toContain(";");
  });
});

describe("long lines", () => {
  const args = Array.from({ length: 12 }, (_, i) => `argument_${i}`);

  it("breaks a long call one argument per line with a trailing comma", () => {
    const out = checkRoundTrip(`model m { x = f(${args.join(", ")}) frozen }`);
    expect(out).toBe(`model m {\n  x = f(\n${args.map((a) => `    ${a},\n`).join("")}  ) frozen\n}\n`);
  });

  it("breaks the outermost list first, and an inner one only if still too long", () => {
    const inner = `g(${args.slice(0, 3).join(", ")})`;
    const out = checkRoundTrip(`const x = f(${inner}, [${args.join(", ")}])`);
    expect(out).toBe(`const x = f(\n  ${inner},\n  [\n${args.map((a) => `    ${a},\n`).join("")}  ],\n)\n`);
    for (const l of out.split("\n")) expect(l.length).toBeLessThanOrEqual(MAX_WIDTH);
  });

  it("breaks long parameter lists, policies, imports and stages", () => {
    const out = checkRoundTrip(`import { ${args.join(", ")} } from "std"
block b(${args.map((a) => `${a}: int`).join(", ")}) {
  policy frozen { ${args.map((a) => `${a}: 1`).join(", ")} }
  stage s { train ${args.join(", ")} }
}`);
    expect(out).toContain(`import {\n  argument_0,\n`);
    expect(out).toContain(`block b(\n  argument_0: int,\n`);
    expect(out).toContain(`  policy frozen {\n    argument_0: 1,\n`);
    expect(out).toContain(`  stage s {\n    train argument_0\n    train argument_1\n`);
    for (const l of out.split("\n")) expect(l.length).toBeLessThanOrEqual(MAX_WIDTH);
  });

  it("prints chains of any length without recursing per term", () => {
    // Up to the parser's limit of operators in one expression (MAX_EXPRESSION_OPERATORS).
    const sum = Array.from({ length: 1900 }, (_, i) => `a${i}`).join(" + ");
    const chain = `x${".b[0]".repeat(900)}`;
    const out = format(`const s = ${sum}\nconst c = ${chain}`);
    expect(out).toBe(`const s = ${sum}\nconst c = ${chain}\n`);
  });

  it("leaves a line of exactly the maximum width alone", () => {
    const name = "n".repeat(MAX_WIDTH - "const x = f()".length);
    expect(checkRoundTrip(`const x = f(${name})`)).toBe(`const x = f(${name})\n`);
  });
});

describe("parentheses", () => {
  it.each([
    ["(a + b) * c", "(a + b) * c"],
    ["a - (b - c)", "a - (b - c)"],
    ["(a - b) - c", "a - b - c"],
    ["-(a + b)", "-(a + b)"],
    ["(-3) ** 2", "(-3) ** 2"],
    ["-3 ** 2", "-3 ** 2"],
    ["-(3 ** 2)", "-3 ** 2"],
    ["(-x) ** 2", "(-x) ** 2"],
    ["a - -3", "a - -3"],
    ["a - (-3)", "a - -3"],
    ["- -x", "- -x"],
    ["2 ** -x", "2 ** -x"],
    ["a ** (b ** c)", "a ** b ** c"],
    ["(a ** b) ** c", "(a ** b) ** c"],
    ["not (a and b)", "not (a and b)"],
    ["(not a) and b", "not a and b"],
    ["not (a == b)", "not a == b"],
    ["a == (not b)", "a == (not b)"],
    ["(a < b) == c", "(a < b) == c"],
    ["a or (b and c)", "a or b and c"],
    ["(a or b) and c", "(a or b) and c"],
    ["(a @ b)[0]", "(a @ b)[0]"],
    ["(-3).x", "(-3).x"],
    ["(f)(x)", "f(x)"],
    ["-(-(a))", "- -a"],
    ["x[(a + b):(c)]", "x[a + b:c]"],
    ["x[:, 1:]", "x[:, 1:]"],
  ])("%s prints as %s", (input, expected) => {
    expect(formatExpr(input)).toBe(expected);
  });

  it("keeps `(-3) ** 2` and `-3 ** 2` apart", () => {
    expect(parse("const v = (-3) ** 2").ast).not.toEqual(parse("const v = -3 ** 2").ast);
  });

  it("adds parentheses to a dim only where it is not additive", () => {
    expect(checkRoundTrip("block b(x: f32[(n < m), a * 2 <= n + 1]) {}")).toBe(
      "block b(x: f32[(n < m), a * 2 <= n + 1]) {}\n",
    );
  });

  // Random fully parenthesised expressions: the formatter must keep their AST while keeping only
  // the parentheses that matter (removing any one of them changes the AST or breaks the parse).
  it("prints random expressions with exactly the needed parentheses", () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    const pick = <T>(xs: T[]): T => xs[random(xs.length)]!;
    const binary = ["or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "@", "**"];
    const gen = (depth: number): string => {
      if (depth === 0) return pick(["a", "b", "3", "1.5", "1e-5", '"s"', "true", "none", "[a, 2]"]);
      switch (random(6)) {
        case 0:
          return `(-(${gen(depth - 1)}))`;
        case 1:
          return `(not (${gen(depth - 1)}))`;
        case 2:
          return `(${gen(depth - 1)})${pick([".m", "(b, k: 2)", "[a, 1:, ::2]"])}`;
        default:
          return `((${gen(depth - 1)}) ${pick(binary)} (${gen(depth - 1)}))`;
      }
    };
    for (let i = 0; i < 300; i++) {
      const printed = formatExpr(gen(1 + random(4)));
      const ast = parse(`const v = ${printed}`).ast;
      for (const [open, close] of groupingParens(printed)) {
        const without = printed.slice(0, open) + printed.slice(open + 1, close) + printed.slice(close + 1);
        const r = parseText("t.vlm", `const v = ${without}`);
        if (r.diagnostics.length === 0)
          expect(stripSpans(r.ast.decls), `${printed} without (${open})`).not.toEqual(ast);
      }
    }
  });
});

/** Offsets of the `(` `)` pairs in `text` that group rather than call (no string in it holds a parenthesis). */
function groupingParens(text: string): [number, number][] {
  const pairs: [number, number][] = [];
  const stack: { at: number; grouping: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") stack.push({ at: i, grouping: !/[\w)\]"]/.test(text.slice(0, i).trimEnd().slice(-1)) });
    else if (text[i] === ")") {
      const open = stack.pop()!;
      if (open.grouping) pairs.push([open.at, i]);
    }
  }
  return pairs;
}

describe("comments", () => {
  it("keeps trailing comments on their line and own-line comments above the next node", () => {
    const src = `model m { // opens
  // leads x
  x = 1 // trails x

  /* leads y */ y = 2 /* trails y */
  if a { // opens then
    z = 3
  } // between then and else
  else {
    // only in else
  }
  // last in body
} // after model
`;
    expect(checkRoundTrip(src)).toBe(`model m { // opens
  // leads x
  x = 1 // trails x

  /* leads y */
  y = 2 /* trails y */
  if a { // opens then
    z = 3
  } else { // between then and else
    // only in else
  }
  // last in body
} // after model
`);
  });

  it("moves comments from inside an expression or a header above the node", () => {
    const src = `model m(a, // first param
  b) {
  x = f(1, // one
    2 /* two */)
}
`;
    expect(checkRoundTrip(src)).toBe(`// first param
model m(a, b) {
  // one
  /* two */
  x = f(1, 2)
}
`);
  });

  it("keeps comments in an else if header and between declarations", () => {
    const src = `import { a } from "std" // why a
// about b
import { b } from "std"
model m { forward() { if a { x = 1 } else if /* c */ b
// own
{ y = 2 } } }
// tail`;
    const out = checkRoundTrip(src);
    expect(out).toBe(`import { a } from "std" // why a
// about b
import { b } from "std"

model m {
  forward() {
    if a {
      x = 1
    } else if b { /* c */
      // own
      y = 2
    }
  }
}
// tail
`);
  });
  it("keeps comments in package, policy and key-map entries beside their entry", () => {
    const src = `model m {
  package { vision: v, // the vision graph
    // the language model
    decoder: llm,

    prompt: 32 }
  policy attn { kernel: fused /* why */ }
  weights llm from "w" { "model.": "", // drop a level
    tie "head.weight" = "embed.weight" }
  // leads mlp
  policy mlp { kernel: fused }
}
`;
    expect(checkRoundTrip(src)).toBe(`model m {
  package {
    vision: v, // the vision graph
    // the language model
    decoder: llm,

    prompt: 32,
  }
  policy attn {
    kernel: fused, /* why */
  }
  weights llm from "w" {
    "model.": "", // drop a level
    tie "head.weight" = "embed.weight",
  }
  // leads mlp
  policy mlp { kernel: fused }
}
`);
  });

  it("reads CRLF line ends, writes LF, and drops trailing white space from line comments", () => {
    const src = "model m { // a   \r\n  x = 1 // b\r\n\r\n\r\n  y = 2\r\n}\r\n";
    expect(checkRoundTrip(src)).toBe("model m { // a\n  x = 1 // b\n\n  y = 2\n}\n");
  });
});

describe("refusal", () => {
  it("refuses a file with syntax errors and reports them", () => {
    const r = formatText("bad.vlm", "model m { x = }");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.diagnostics.map((d) => d.code)).toContain("VLM1001");
  });

  it("refuses an unterminated string", () => {
    expect(formatText("bad.vlm", 'const s = "abc').ok).toBe(false);
  });
});

describe("the repository's .vlm files", () => {
  const root = new URL("../../../", import.meta.url);
  const files = ["examples", "std"].flatMap((dir) => {
    const url = new URL(`${dir}/`, root);
    if (!fs.existsSync(url)) return [];
    return fs
      .readdirSync(url, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".vlm"))
      .map((f) => `${dir}/${f}`);
  });

  if (files.length === 0) it.skip("(there are no examples/*.vlm or std/*.vlm files yet)", () => {});
  for (const file of files) {
    it(`formats ${file} without changing its AST`, () => {
      checkRoundTrip(fs.readFileSync(new URL(file, root), "utf8"));
    });
  }
});
