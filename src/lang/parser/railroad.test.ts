// The grammar/ documents that follow the parser rule for rule: railroad.html, generated from it
// (covers every rule, is current, draws), and vlm.ebnf, written by hand (same rules, same order).

import { readFileSync } from "node:fs";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { vlmParser } from "./grammar.js";
import { railroadHtml } from "./railroad.js";

const ruleNames = Object.keys(vlmParser.getGAstProductions());
const committed = readFileSync(new URL("../../../grammar/railroad.html", import.meta.url), "utf8");

describe("railroadHtml", () => {
  const html = railroadHtml();

  it("names every rule of the parser", () => {
    expect(ruleNames.length).toBeGreaterThan(30);
    for (const name of ruleNames) expect(html, name).toContain(`"name": "${name}"`);
  });

  it("matches the committed grammar/railroad.html", () => {
    expect(committed === html, "grammar/railroad.html is stale: run `npm run grammar:railroad`").toBe(true);
  });

  it("is self-contained: it loads nothing from the network", () => {
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link[^>]*\shref=/i);
  });

  it("draws one diagram per rule when its scripts run", () => {
    // Just enough of a browser for chevrotain's page: the scripts only look up elements by id and class.
    const target = { innerHTML: "" };
    const sandbox: Record<string, unknown> = {
      document: { getElementById: () => target, getElementsByClassName: () => [] },
    };
    sandbox["window"] = sandbox;
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    for (const script of scripts) runInNewContext(script, sandbox);
    for (const name of ruleNames) expect(target.innerHTML, name).toContain(`<h2 class="diagramHeader">${name}</h2>`);
    expect(target.innerHTML.match(/<svg /g)?.length).toBe(ruleNames.length);
  });
});

describe("grammar/vlm.ebnf", () => {
  const ebnf = readFileSync(new URL("../../../grammar/vlm.ebnf", import.meta.url), "utf8");
  const productions = [...ebnf.matchAll(/^([A-Za-z]\w*)\s+::=/gm)].map((m) => m[1]!);

  it("has one production per parser rule, same names, same order", () => {
    // Parser rules are camelCase; lexical productions (Identifier, Float, ...) are PascalCase.
    expect(productions.filter((p) => /^[a-z]/.test(p))).toEqual(ruleNames);
  });

  it("defines every name it uses", () => {
    // Skip comments, quoted literals, character classes and #xN codes; what remains are names.
    const names = [
      ...ebnf.matchAll(/\/\*[\s\S]*?\*\/|'[^']*'|"[^"]*"|\[[^\]]*\]|#x[0-9A-Fa-f]+|([A-Za-z_]\w*)/g),
    ].flatMap((m) => (m[1] ? [m[1]] : []));
    expect(names.length).toBeGreaterThan(150);
    for (const name of names) expect(productions, name).toContain(name);
  });
});
