// `npm run docs:language`: rewrites docs/language.md (or the path given) from builtins.ts and std/.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STD_DIR } from "./parser/program.js";
import { languageReference } from "./reference.js";

const out = process.argv[2] ?? "docs/language.md";
const std = readdirSync(STD_DIR)
  .filter((f) => f.endsWith(".vlm"))
  .map((name) => ({ name, text: readFileSync(join(STD_DIR, name), "utf8") }));
writeFileSync(out, languageReference(std));
console.log(`wrote ${out}`);
