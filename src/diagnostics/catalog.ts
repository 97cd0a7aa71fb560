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

  // Generation packages (docs/packages.md).
  VLM3200: { severity: "error", title: "invalid package declaration" },
  VLM3201: { severity: "error", title: "image-token slots differ from the vision graph's tokens" },
  VLM3202: { severity: "error", title: "prompt and new tokens exceed the context" },
  VLM3203: { severity: "error", title: "graphs cannot form a package" },

  VLM4001: { severity: "error", title: "invalid weights file" },
  VLM4002: { severity: "error", title: "missing weights" },
  VLM4003: { severity: "error", title: "unexpected weights" },
  VLM4004: { severity: "error", title: "weight shape mismatch" },
  VLM4005: { severity: "error", title: "unsupported weight dtype" },
  VLM4006: { severity: "error", title: "cannot write output" },
  VLM4007: { severity: "error", title: "runtime failure" },
  VLM4008: { severity: "error", title: "invalid input file" },

  VLM4300: { severity: "error", title: "package folder exists" },
  VLM4301: { severity: "error", title: "checkpoint files missing" },
  VLM4302: { severity: "error", title: "cannot write package" },

  VLM9001: { severity: "error", title: "internal compiler error" },
} as const satisfies Record<string, CatalogEntry>;

export type DiagnosticCode = keyof typeof CATALOG;
