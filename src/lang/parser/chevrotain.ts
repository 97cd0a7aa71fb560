// chevrotain, loaded from the single-file build its package ships. The package's ESM entry pulls
// in lodash-es as some 600 modules, which cost 0.85 s at every vlmc start on the development
// machine; the bundle (same version, same code) loads in 0.2 s. Types still come from the package.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

type Chevrotain = typeof import("chevrotain");

// The package's entry is <package>/lib/src/api.js; the bundle is <package>/lib/chevrotain.mjs.
const entry = createRequire(import.meta.url).resolve("chevrotain");
const chevrotain = (await import(pathToFileURL(join(dirname(entry), "..", "chevrotain.mjs")).href)) as Chevrotain;

export const { CstParser, Lexer, createToken, createSyntaxDiagramsCode } = chevrotain;
export type CstParser = import("chevrotain").CstParser;
export type Lexer = import("chevrotain").Lexer;
