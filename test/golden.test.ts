// Golden IR tests: small configurations of std blocks print to committed `.ir.expected` files,
// and every elaborated graph passes the verifier.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { elaborate } from "../src/api.js";
import { printGraph } from "../src/ir/printer.js";
import { verifyGraph } from "../src/ir/verify.js";

const dir = path.join(import.meta.dirname, "golden");

describe("golden IR", () => {
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".vlm"))) {
    it(f, () => {
      const result = elaborate([path.relative(process.cwd(), path.join(dir, f))]);
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const text = result.models.flatMap((m) => m.module!.graphs.map((g) => `// model ${m.decl.name}\n${printGraph(g)}`)).join("\n\n") + "\n";
      for (const m of result.models) for (const g of m.module!.graphs) expect(verifyGraph(g)).toEqual([]);
      const goldenPath = path.join(dir, f.replace(/\.vlm$/, ".ir.expected"));
      if (process.env["VLMC_UPDATE_GOLDEN"] || !fs.existsSync(goldenPath)) fs.writeFileSync(goldenPath, text);
      expect(text).toBe(fs.readFileSync(goldenPath, "utf8"));
    });
  }
});

describe("verifier on every example", () => {
  const files = ["examples", "examples/reference"].flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((n) => n.endsWith(".vlm")).map((n) => path.join(d, n)) : []));
  for (const f of files) {
    it(f, () => {
      const result = elaborate([f]);
      for (const m of result.models) for (const g of m.module?.graphs ?? []) expect(verifyGraph(g), `${m.decl.name}/${g.name}`).toEqual([]);
    });
  }
});
