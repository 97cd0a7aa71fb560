// The differential verifier: its metrics, an exact pipeline against the reference, quantized ones
// judged by cosine, failures under an absurd tolerance, and `vlmc compile --verify` passing and
// failing through the CLI.

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import { runCli } from "../cli/main.js";
import { compile } from "./compile.js";
import { compareTensors, evalDimParam, renderVerifyReport, verifyCompiled } from "./verify.js";
import { captureIo } from "../../test/helpers/capture-io.js";

const tempFolder = tempFolders("vlmc-verify-test-");

// A learned-query path (precomputed), a frozen encoder and a trainable head, with ids and a mask.
const SPEC = `block mlp(d) {
  fc1 = linear(d, 2 * d)
  fc2 = linear(2 * d, d)
  forward(x) {
    return fc2(gelu(fc1(x)))
  }
}

model tiny {
  encoder vision = mlp(32) frozen
  encoder words = embedding(50, 32) frozen
  fusion param queries: [1, 4, 32] = normal(0.5)
  head cls = linear(32, 3)
  forward(x: f32[B, 32], ids: i64[B, T]) {
    q = expand(queries, [dim(x, 0), 4, 32]) + 1.0
    h = vision(x) + mean(words(ids), axis: 1) + mean(q, axis: 1)
    return logits: cls(h), features: h
  }
}
`;

function spec(): string {
  const file = path.join(tempFolder(), "tiny.vlm");
  fs.writeFileSync(file, SPEC);
  return file;
}

describe("compareTensors", () => {
  it("measures max abs error, the reference's scale, relative error and cosine", () => {
    const c = compareTensors([1, -2, 4], [1, -2.5, 4]);
    expect(c.maxAbsError).toBe(0.5);
    expect(c.scale).toBe(4);
    expect(c.relativeError).toBe(0.125);
    expect(c.normError).toBeCloseTo(0.5 / Math.sqrt(21), 12);
    expect(c.cosine).toBeCloseTo((1 + 5 + 16) / Math.sqrt(21 * 23.25), 12);
    expect(compareTensors([0, 0], [0, 0])).toMatchObject({ cosine: 1, relativeError: 0, normError: 0 });
    expect(compareTensors([0, 0], [0, 1]).normError).toBe(Infinity);
    expect(compareTensors([1, 0], [0, 0]).cosine).toBe(0);
    expect(Number.isNaN(compareTensors([1, 2], [1, NaN]).maxAbsError)).toBe(true);
  });

  it("sizes symbolic dims as vlmc run does: tokens 8, everything else 1", () => {
    expect(["B", "T", "2*T + 1", "B*N", "T - 1", "T_text"].map(evalDimParam)).toEqual([1, 8, 17, 1, 7, 8]);
  });
});

describe("verifyCompiled", () => {
  it("finds the default fp32 pipeline exact to 1e-4 of each output's scale", async () => {
    const file = spec();
    const result = await compile([file], { out: path.join(path.dirname(file), "out"), seed: 3 });
    expect(result.ok).toBe(true);
    const report = await verifyCompiled([file], { seed: 3 }, result);
    expect(report.diagnostics).toEqual([]);
    expect(report.comparisons.map((c) => [c.output, c.metric, c.ok])).toEqual([
      ["logits", "max-abs", true],
      ["features", "max-abs", true],
    ]);
    expect(report.ok).toBe(true);
    expect(renderVerifyReport(report).split("\n")[0]).toMatch(
      /^model\s+graph\s+output\s+shape\s+max abs err\s+scale\s+rel err\s+norm err\s+cosine\s+threshold\s+result$/,
    );
  });

  it("judges a quantized compile by cosine, and fails it under an absurd tolerance", async () => {
    const file = spec();
    const result = await compile([file], {
      out: path.join(path.dirname(file), "out"),
      quantize: "int8",
      target: "ort-cpu",
    });
    const report = await verifyCompiled([file], {}, result);
    expect(report.comparisons.map((c) => c.metric)).toEqual(["cosine", "cosine"]);
    expect(report.comparisons.every((c) => c.cosine > 0.999 && c.cosine < 1)).toBe(true);
    expect(report.ok).toBe(true);
    const strict = await verifyCompiled([file], {}, result, { tolerance: 1 });
    expect(strict.ok).toBe(false);
    expect(renderVerifyReport(strict)).toMatch(/FAIL[\s\S]*verify: FAILED \(2 of 2 outputs outside the threshold\)/);
  });

  it("reports a model the CPU provider cannot run as VLM4007", async () => {
    const file = spec();
    const result = await compile([file], {
      out: path.join(path.dirname(file), "out"),
      precision: "bf16",
      target: "ort-cuda",
    });
    expect(result.ok).toBe(true);
    const report = await verifyCompiled([file], {}, result);
    expect(report.diagnostics.map((d) => d.code)).toEqual(["VLM4007"]);
    expect(report.ok).toBe(false);
  });
});

describe("vlmc compile --verify", () => {
  it("prints the table and exits 0 when every output is within the threshold", async () => {
    const file = spec();
    const c = captureIo();
    const code = await runCli(
      [
        "compile",
        file,
        "-o",
        path.join(path.dirname(file), "out"),
        "--quantize",
        "int4",
        "--target",
        "ort-cpu",
        "--verify",
      ],
      c.io,
    );
    expect(c.err).toBe("");
    expect(code).toBe(0);
    expect(c.out).toMatch(/tiny\s+forward\s+logits\s+\[1, 3\].*cos ≥ 0\.99, norm ≤ 0\.1414\s+ok/);
    expect(c.out).toMatch(/verify: 2 outputs match the unoptimized fp32 reference/);
  });

  it("exits 1 when an output misses the threshold (--verify-tolerance alone implies --verify)", async () => {
    const file = spec();
    const c = captureIo();
    const code = await runCli(
      ["compile", file, "-o", path.join(path.dirname(file), "out"), "--quantize", "int8", "--verify-tolerance", "1"],
      c.io,
    );
    expect(code).toBe(1);
    expect(c.out).toMatch(/cos ≥ 1, norm ≤ 0\s+FAIL/);
    expect(c.out).toMatch(/verify: FAILED/);
  });

  it("holds an fp32 compile to a relative tolerance, and refuses a tolerance that is not a number", async () => {
    const file = spec();
    const ok = captureIo();
    expect(
      await runCli(
        ["compile", file, "-o", path.join(path.dirname(file), "out"), "--verify", "--verify-tolerance", "0"],
        ok.io,
      ),
    ).toBe(0);
    expect(ok.out).toMatch(/rel ≤ 0\s+ok/);
    const bad = captureIo();
    expect(await runCli(["compile", file, "--verify-tolerance", "tight"], bad.io)).toBe(2);
  });
});
