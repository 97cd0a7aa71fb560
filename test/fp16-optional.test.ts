// Optional check of fp16 packages with onnx.checker, run by `npm run test:optional`
// (VLMC_PARITY_OPTIONAL=1) where VLMC_PYTHON (test/helpers/python.ts) has the onnx package: every graph of portable fp16
// packages (standard ops only: the checker knows no ONNX Runtime op) passes
// check_model(full_check=True), with its fp16 cache inputs and outputs (scripts/parity/check_onnx.py).

import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compilePackage } from "../src/driver/package.js";
import { optionalPython, PYTHON } from "./helpers/python.js";
import { tempFolders } from "./temp-folders.js";

const enabled = optionalPython("import onnx");
const FIXTURES = path.join(import.meta.dirname, "fixtures", "package");
const temp = tempFolders("vlmc-fp16-optional-");

describe.skipIf(!enabled)("fp16 packages and onnx.checker", () => {
  it("every graph of the tiny LLaVA, BLIP-2 and Flamingo portable fp16 packages passes full_check", async () => {
    const files: string[] = [];
    for (const [model, checkpoint] of [
      ["tiny_llava", "llava"],
      ["tiny_blip2", "blip2"],
      ["tiny_flamingo", "flamingo"],
    ] as const) {
      const out = path.join(temp(), model);
      const result = await compilePackage([path.join(FIXTURES, "tiny.vlm")], {
        model,
        out,
        target: "portable",
        precision: "fp16",
        checkpoint: path.join(FIXTURES, checkpoint),
      });
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      expect(result.manifest?.cache.dtype).toBe("float16");
      files.push(...["vision", "embedding", "decoder"].map((g) => path.join(out, `${g}.onnx`)));
    }
    const check = path.join(import.meta.dirname, "..", "scripts", "parity", "check_onnx.py");
    const run = spawnSync(PYTHON, [check, ...files], { encoding: "utf8", timeout: 300_000 });
    const results = JSON.parse(run.stdout) as Record<string, string>;
    expect(Object.keys(results).length).toBe(files.length);
    expect(Object.entries(results).filter(([, r]) => r !== "ok")).toEqual([]);
  }, 600_000);
});
