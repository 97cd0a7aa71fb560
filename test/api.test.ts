// The package root: a user's `import { parse, check, compile } from "vlmc"` resolves (through
// package.json "exports" to the built dist/) and the API works without the CLI.

import * as path from "node:path";
import { describe, expect, it } from "vitest";

describe("package root API", () => {
  it("exports the typed API", async () => {
    const vlmc = await import("vlmc");
    for (const name of ["parse", "check", "elaborate", "compile", "summarize", "formatText", "VERSION"])
      expect(vlmc, name).toHaveProperty(name);
    for (const name of ["verifyCompiled", "compareModels", "runModel", "randomInputs", "CATALOG", "TARGET_NAMES"])
      expect(vlmc, name).toHaveProperty(name);
    // Internals stay internal: the IR, the passes and codegen are not part of the API.
    for (const name of ["Elaborator", "Graph", "createPassManager", "lowerGraph", "Rng", "loadWeights"])
      expect(vlmc, name).not.toHaveProperty(name);
    const parsed = vlmc.parse("const A = 2 * 3\n");
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.ast.decls[0]).toMatchObject({ kind: "const", name: "A" });
  });

  it("check reports an import cycle with its chain", async () => {
    const { check } = await import("vlmc");
    const a = path.relative(process.cwd(), path.join(import.meta.dirname, "fixtures", "imports", "cycle-a.vlm"));
    const result = check([a]);
    const cycles = result.diagnostics.filter((d) => d.code === "VLM2006");
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.message).toMatch(/cycle-a\.vlm → .*cycle-b\.vlm → .*cycle-a\.vlm/);
  });
});
