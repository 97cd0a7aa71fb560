// `npm run grammar:railroad`: rewrites grammar/railroad.html (or the path given) from the parser.

import { writeFileSync } from "node:fs";
import { railroadHtml } from "./railroad.js";

const out = process.argv[2] ?? "grammar/railroad.html";
writeFileSync(out, railroadHtml());
console.log(`wrote ${out}`);
