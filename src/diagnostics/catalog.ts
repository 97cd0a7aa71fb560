// The catalog of diagnostic codes. Codes are stable and never reused: add new ones at the end of
// their range. VLM1xxx syntax, VLM2xxx names/types/shapes, VLM3xxx checks and passes,
// VLM4xxx codegen and weights, VLM9xxx internal.

export type Severity = "error" | "warning" | "note";

export interface CatalogEntry {
  readonly severity: Severity;
  readonly title: string;
}

export const CATALOG = {
  VLM1001: { severity: "error", title: "syntax error" },
  VLM1002: { severity: "error", title: "unrecognised character or unterminated literal" },
  VLM1003: { severity: "error", title: "nesting too deep" },
  VLM1004: { severity: "error", title: "invalid number literal" },
  VLM1005: { severity: "error", title: "unknown component role" },
  VLM1006: { severity: "error", title: "declaration not allowed here" },

  VLM2001: { severity: "error", title: "undefined name" },
  VLM2002: { severity: "error", title: "duplicate definition" },
  VLM2003: { severity: "error", title: "unknown argument" },
  VLM2004: { severity: "error", title: "missing argument" },
  VLM2005: { severity: "error", title: "wrong kind of argument" },
  VLM2006: { severity: "error", title: "import cycle" },
  VLM2007: { severity: "error", title: "cannot read imported file" },
  VLM2008: { severity: "error", title: "module does not export this name" },
  VLM2009: { severity: "error", title: "too many positional arguments" },
  VLM2010: { severity: "error", title: "not callable" },
  VLM2011: { severity: "error", title: "unknown dtype or type" },
  VLM2012: { severity: "error", title: "duplicate argument" },
  VLM2013: { severity: "error", title: "invalid compile policy" },
  VLM2014: { severity: "error", title: "no such model or graph" },

  VLM2101: { severity: "error", title: "matmul inner dimensions differ" },
  VLM2102: { severity: "error", title: "shapes do not match" },
  VLM2103: { severity: "error", title: "width not divisible by heads" },
  VLM2104: { severity: "error", title: "size not divisible" },
  VLM2105: { severity: "error", title: "index or slice out of range" },
  VLM2106: { severity: "error", title: "dtype mismatch" },
  VLM2107: { severity: "error", title: "wrong rank" },
  VLM2108: { severity: "error", title: "model too large" },
  VLM2109: { severity: "error", title: "type error" },
  VLM2110: { severity: "error", title: "compile-time evaluation failed" },
  VLM2111: { severity: "error", title: "recursion too deep" },

  VLM3001: { severity: "error", title: "expectation failed" },
  VLM3002: { severity: "error", title: "expectation cannot be proved" },
  VLM3003: { severity: "warning", title: "unused input" },
  VLM3004: { severity: "warning", title: "unused parameter" },
  VLM3005: { severity: "warning", title: "unused component" },
  VLM3006: { severity: "error", title: "output depends on no input" },

  VLM4001: { severity: "error", title: "invalid weights file" },
  VLM4002: { severity: "error", title: "missing weights" },
  VLM4003: { severity: "error", title: "unexpected weights" },
  VLM4004: { severity: "error", title: "weight shape mismatch" },
  VLM4005: { severity: "error", title: "unsupported weight dtype" },
  VLM4006: { severity: "error", title: "cannot write output" },
  VLM4007: { severity: "error", title: "runtime failure" },
  VLM4008: { severity: "error", title: "invalid input file" },

  // VLM5000–VLM5099: running packages and generating text (runtime/generate, vlmc generate).
  VLM5001: { severity: "error", title: "package file missing" },
  VLM5002: { severity: "error", title: "invalid package manifest" },
  VLM5003: { severity: "error", title: "tokenizer missing or unreadable" },
  VLM5004: { severity: "error", title: "chat template failed" },
  VLM5005: { severity: "error", title: "cannot read or decode image" },
  VLM5006: { severity: "error", title: "image too large" },
  VLM5007: { severity: "error", title: "images do not match the prompt's image tags" },
  VLM5008: { severity: "error", title: "prompt longer than the context" },
  VLM5009: { severity: "error", title: "invalid generation option" },
  VLM5010: { severity: "error", title: "no package engine in this build" },
  VLM5011: { severity: "error", title: "invalid batch file" },
  VLM5012: { severity: "error", title: "unsupported image preprocessing" },
  VLM5013: { severity: "error", title: "package engine failed" },

  VLM9001: { severity: "error", title: "internal compiler error" },
} as const satisfies Record<string, CatalogEntry>;

export type DiagnosticCode = keyof typeof CATALOG;
