// Golden IR tests: small configurations of std blocks print to committed `.ir.expected` files,
// and every elaborated graph passes the verifier.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { elaborate } from "../src/driver/check.js";
import { printGraph } from "../src/ir/printer.js";
import { verifyGraph } from "../src/ir/verify.js";

const dir = path.join(import.meta.dirname, "golden");

// Small configurations of every std block: the hand-written ones here, and the parity specs (whose
// numbers are checked against PyTorch in test/parity.test.ts), each with its golden beside it.
const parityDir = path.join(import.meta.dirname, "fixtures", "parity");
const goldenSpecs = [
  ...fs
    .readdirSync(dir)
    .filter((n) => n.endsWith(".vlm"))
    .map((n) => ({ name: n, spec: path.join(dir, n), golden: path.join(dir, n.replace(/\.vlm$/, ".ir.expected")) })),
  ...(fs.existsSync(parityDir) ? fs.readdirSync(parityDir) : [])
    .filter((n) => fs.existsSync(path.join(parityDir, n, "spec.vlm")))
    .map((n) => ({
      name: `std/${n}`,
      spec: path.join(parityDir, n, "spec.vlm"),
      golden: path.join(dir, "std", `${n}.ir.expected`),
    })),
];

describe("golden IR", () => {
  for (const { name: f, spec, golden: goldenPath } of goldenSpecs) {
    it(f, () => {
      const result = elaborate([path.relative(process.cwd(), spec)]);
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const text =
        result.models
          .flatMap((m) => m.module!.graphs.map((g) => `// model ${m.decl.name}\n${printGraph(g)}`))
          .join("\n\n") + "\n";
      for (const m of result.models) for (const g of m.module!.graphs) expect(verifyGraph(g)).toEqual([]);
      if (process.env["VLMC_UPDATE_GOLDEN"] || !fs.existsSync(goldenPath)) {
        fs.mkdirSync(path.dirname(goldenPath), { recursive: true });
        fs.writeFileSync(goldenPath, text);
      }
      expect(text).toBe(fs.readFileSync(goldenPath, "utf8"));
    });
  }
});

describe("verifier on every example", () => {
  const files = ["examples", "examples/reference"].flatMap((d) =>
    fs.existsSync(d)
      ? fs
          .readdirSync(d)
          .filter((n) => n.endsWith(".vlm"))
          .map((n) => path.join(d, n))
      : [],
  );
  for (const f of files) {
    it(f, () => {
      const result = elaborate([f]);
      for (const m of result.models)
        for (const g of m.module?.graphs ?? []) expect(verifyGraph(g), `${m.decl.name}/${g.name}`).toEqual([]);
    });
  }
});
