// Railroad (syntax) diagrams of .vlm, drawn from the chevrotain parser itself so they cannot drift
// from the grammar. Chevrotain's page loads its scripts from a CDN; ours inlines them, so
// grammar/railroad.html opens offline and does not change unless the grammar or chevrotain does.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { createSyntaxDiagramsCode } from "./chevrotain.js";
import { vlmParser } from "./grammar.js";

/** Stands in for chevrotain's resource URLs, then is replaced by the files' contents. */
const INLINE = "vlmc-inline:";

const RESOURCE = new RegExp(
  `<link rel='stylesheet' href='${INLINE}([^']+)'>|<script src='${INLINE}([^']+)'></script>`,
  "g",
);

/** chevrotain's package exports only its entry point (lib/src/api.js); its diagrams/ folder sits two levels up. */
function diagramsFile(name: string): string {
  const entry = createRequire(import.meta.url).resolve("chevrotain");
  const text = readFileSync(new URL(`../../diagrams/${name}`, pathToFileURL(entry)), "utf8");
  if (/<\/(script|style)/i.test(text))
    throw new Error(`chevrotain diagrams/${name} cannot be inlined: it closes its own tag`);
  return text;
}

/** The self-contained HTML page of railroad diagrams, one per parser rule. */
export function railroadHtml(): string {
  const page = createSyntaxDiagramsCode(vlmParser.getSerializedGastProductions(), {
    resourceBase: INLINE,
    css: `${INLINE}diagrams.css`,
  });
  let inlined = 0;
  const html = page
    .replace(
      "<!-- This is a generated file -->",
      "<!-- Generated from src/lang/parser/grammar.ts by `npm run grammar:railroad`; do not edit. -->",
    )
    .replace('<meta charset="utf-8">', '<meta charset="utf-8">\n<title>.vlm grammar: railroad diagrams</title>')
    .replace(RESOURCE, (_, css: string | undefined, script: string | undefined) => {
      inlined++;
      return css !== undefined
        ? `<style>\n${diagramsFile(css)}</style>`
        : `<script>\n${diagramsFile(script!)}</script>`;
    });
  // One stylesheet and four scripts: if chevrotain changes its page, fail rather than emit a page that loads nothing.
  if (inlined !== 5)
    throw new Error(`expected to inline 5 diagram resources from chevrotain's page, inlined ${inlined}`);
  return html;
}
