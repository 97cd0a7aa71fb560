// `npm run docs:language`: rewrites docs/language.md from builtins.ts and std/, and
// docs/diagnostics.md from the diagnostics catalog.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { diagnosticsReference } from "../diagnostics/reference.js";
import { STD_DIR } from "./parser/program.js";
import { languageReference } from "./reference.js";

const out = "docs/language.md";
const std = readdirSync(STD_DIR)
  .filter((f) => f.endsWith(".vlm"))
  .map((name) => ({ name, text: readFileSync(join(STD_DIR, name), "utf8") }));
writeFileSync(out, languageReference(std));
writeFileSync("docs/diagnostics.md", diagnosticsReference());
console.log(`wrote ${out} and docs/diagnostics.md`);
