// grammar/vlm.tmLanguage.json: well-formed, every regex valid in JS as written (so no Oniguruma-only
// syntax), every keyword of the lexer highlighted, and the context-sensitive patterns do what they say.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KEYWORDS } from "./lexer.js";

interface Rule {
  name?: string;
  match?: string;
  begin?: string;
  end?: string;
  include?: string;
  captures?: Record<string, { name: string }>;
  patterns?: Rule[];
}

interface TmGrammar {
  name: string;
  scopeName: string;
  fileTypes: string[];
  patterns: Rule[];
  repository: Record<string, Rule>;
}

const grammar = JSON.parse(
  readFileSync(new URL("../../../grammar/vlm.tmLanguage.json", import.meta.url), "utf8"),
) as TmGrammar;

function allRules(rules: Rule[]): Rule[] {
  return rules.flatMap((r) => [r, ...allRules(r.patterns ?? [])]);
}

const rules = allRules([...grammar.patterns, ...Object.values(grammar.repository)]);

/** The `u` flag makes JS reject unknown escapes (`\h`, `\A`, `\z`), which would otherwise compile with another meaning. */
function regex(source: string): RegExp {
  return new RegExp(source, "u");
}

function patternsOf(key: string): RegExp[] {
  return (grammar.repository[key]?.patterns ?? []).map((r) => regex(r.match!));
}

/** The text that the first pattern of `key` gives the scope `scope` in `line`, if any. */
function scoped(key: string, line: string, scope: string): string | undefined {
  const rule = grammar.repository[key]!.patterns![0]!;
  const match = regex(rule.match!).exec(line);
  const group = Object.entries(rule.captures ?? {}).find(([, c]) => c.name === scope)?.[0];
  return match && group !== undefined ? match[Number(group)] : undefined;
}

const ROLE = "storage.modifier.role.vlm";

describe("vlm.tmLanguage.json", () => {
  it("has the fields an editor needs", () => {
    expect(grammar.scopeName).toBe("source.vlm");
    expect(grammar.fileTypes).toEqual(["vlm"]);
    expect(grammar.name).toBeTypeOf("string");
    expect(grammar.patterns.length).toBeGreaterThan(0);
  });

  it("compiles every regex in JavaScript", () => {
    const sources = rules.flatMap((r) => [r.match, r.begin, r.end].filter((s): s is string => s !== undefined));
    expect(sources.length).toBeGreaterThan(20);
    for (const source of sources) expect(() => regex(source), source).not.toThrow();
  });

  it("includes only repository entries that exist, and uses them all", () => {
    const included = new Set(rules.flatMap((r) => (r.include ? [r.include] : [])));
    for (const name of included) expect(Object.keys(grammar.repository), name).toContain(name.slice(1));
    for (const key of Object.keys(grammar.repository)) expect(included, key).toContain(`#${key}`);
  });

  it("highlights every keyword of the lexer as a whole word", () => {
    const keywordPatterns = patternsOf("keywords");
    for (const token of KEYWORDS) {
      const word = token.name.toLowerCase();
      expect(
        keywordPatterns.some((p) => p.exec(` ${word} `)?.[0] === word),
        word,
      ).toBe(true);
      expect(
        keywordPatterns.some((p) => p.test(`${word}_x x${word}`)),
        `${word} inside a name`,
      ).toBe(false);
    }
  });

  it("marks a role word only where it opens a model member", () => {
    expect(scoped("roles", "  encoder vision = clip_vit(image: 336) frozen", ROLE)).toBe("encoder");
    expect(scoped("roles", "model m { fusion proj = mlp(1024)", ROLE)).toBe("fusion");
    expect(scoped("roles", "  head param logit_scale: [1] = ones", ROLE)).toBe("head");
    expect(scoped("roles", "  head = linear(768, 1000)", ROLE)).toBeUndefined();
    expect(scoped("roles", "    x = encoder(x)", ROLE)).toBeUndefined();
    expect(scoped("roles", "    return head == tail", ROLE)).toBeUndefined();
  });

  it("marks dtypes only before a shape, and names after block and model", () => {
    expect(patternsOf("dtypes")[0]!.exec("pixels: f32[B, 3, 224, 224]")?.[0]).toBe("f32");
    expect(patternsOf("dtypes")[0]!.test("bool = true")).toBe(false);
    expect(scoped("declarations", "block gated_xattn(width, heads)", "entity.name.type.vlm")).toBe("gated_xattn");
    expect(scoped("declarations", "model llava_1_5 {", "entity.name.type.vlm")).toBe("llava_1_5");
  });

  it("marks `prefix` and `tie` only in a weights declaration", () => {
    const prefix = patternsOf("keywords").find((p) => p.source.includes("prefix"))!;
    expect(prefix.test('weights vision from "clip.safetensors" prefix "vision_model."')).toBe(true);
    expect(prefix.test("prefix = proj(feats)")).toBe(false);
    expect(prefix.test('weights llm { tie "lm_head.weight" = "embed_tokens.weight" }')).toBe(true);
    expect(prefix.test("tie = 3")).toBe(false);
  });
});
