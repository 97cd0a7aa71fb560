// Optional parity checks, run only where VLMC_PYTHON (test/helpers/python.ts) has torch, torchvision
// and onnx (scripts/requirements.txt; see docs/parity.md):
//   - full-size torchvision resnet50 and vit_b_16 with the same random weights: the models vlmc
//     compiles from examples/reference/*.vlm agree with torchvision within 1e-3 (max abs, fp32);
//   - every portable model vlmc emits for examples/**/*.vlm and the parity specs passes
//     onnx.checker.check_model(path, full_check=True).
// The multi-billion-parameter examples (LLaVA, Flamingo, BLIP-2…) cannot be written out in a test
// (tens of GB each), so models above PARAMS_WRITTEN_LIMIT are checked as "skeletons": the graph
// lowerGraph produces for them, with initializers over 1 MiB stored as external data in a sparse
// file that is never written (the checker reads no tensor data). Smaller models, and resnet50 and
// vit_b_16 from the first part, are compiled for real; resnet18 with external data.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { elaborate } from "../src/driver/check.js";
import { compile } from "../src/driver/compile.js";
import { encodeFloats, initialValues } from "../src/codegen/init.js";
import { lowerGraph } from "../src/codegen/lower.js";
import { readNpy } from "../src/runtime/npy.js";
import { decodeOnnxModel, encodeOnnxModel, type OnnxTensor } from "../src/onnx/onnx-writer.js";
import type { Graph, IrModule } from "../src/ir/graph.js";
import { TARGETS } from "../src/target/target.js";
import { optionalPython, PYTHON } from "./helpers/python.js";

const SCRIPTS = path.join(import.meta.dirname, "..", "scripts", "parity");
const REPO = path.join(import.meta.dirname, "..");
const FULL_SIZE_TOLERANCE = 1e-3;
/** Models with more parameters than this are checked as skeletons (see above). */
const PARAMS_WRITTEN_LIMIT = 30_000_000;
const SKELETON_INLINE_BYTES = 1 << 20;

// The suite takes minutes, so `npm test` leaves it out: `npm run test:optional` runs it
// (VLMC_PARITY_OPTIONAL=1) wherever Python with torch, torchvision and onnx is present.
// torchvision is looked for, not imported: scripts/parity/common.py imports a CUDA build beside a CPU torch.
const hasPython = optionalPython("import torch, onnx, importlib.util; assert importlib.util.find_spec('torchvision')");

function python(args: string[], timeoutMs: number): string {
  const r = spawnSync(PYTHON, args, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${PYTHON} ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

const ELEMENT_BYTES: Record<OnnxTensor["dataType"], number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};
const TYPE_CODES: Record<OnnxTensor["dataType"], number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  bfloat16: 16,
};

/** Writes `file` (+ a sparse `file.data`): the graph vlmc lowers, with large initializers external and never computed. */
function writeSkeleton(module: IrModule, graph: Graph, file: string): void {
  const model = lowerGraph(module, graph, {
    paramBytes: (p) => encodeFloats(initialValues(p, 0), p.type.dtype),
    location: () => "",
    metadata: {},
    target: TARGETS.portable,
  });
  const size = (t: OnnxTensor) => t.dims.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dataType];
  const large = model.initializers.filter((t) => size(t) > SKELETON_INLINE_BYTES);
  const proto = decodeOnnxModel(
    encodeOnnxModel({ ...model, initializers: model.initializers.filter((t) => size(t) <= SKELETON_INLINE_BYTES) }),
  );
  const dataName = `${path.basename(file)}.data`;
  let end = 0;
  for (const t of large) {
    const offset = Math.ceil(end / 4096) * 4096;
    proto.graph!.initializer!.push(
      onnxProto.onnx.TensorProto.create({
        name: t.name,
        dims: t.dims,
        dataType: TYPE_CODES[t.dataType],
        dataLocation: onnxProto.onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: dataName },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(size(t)) },
        ],
      }),
    );
    end = offset + size(t);
  }
  fs.writeFileSync(file, onnxProto.onnx.ModelProto.encode(proto).finish());
  const fd = fs.openSync(path.join(path.dirname(file), dataName), "w");
  fs.ftruncateSync(fd, end);
  fs.closeSync(fd);
}

function vlmFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith(".vlm"))
    .sort()
    .map((n) => path.join(dir, n));
}

describe.skipIf(!hasPython)("optional parity (needs VLMC_PYTHON with torch, torchvision, onnx)", () => {
  const tmp = hasPython ? fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-parity-optional-")) : "";
  /** Spec file → the ONNX files compiled from it (reused by the checker). */
  const compiled = new Map<string, string[]>();
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("full-size torchvision models, same weights, within 1e-3", () => {
    for (const name of ["resnet50", "vit_b_16"]) {
      it(name, async () => {
        const dir = path.join(tmp, name);
        const info = JSON.parse(python([path.join(SCRIPTS, "fullsize.py"), name, dir, "--batch", "1"], 600_000)) as {
          max_abs_logit: number;
        };
        const spec = path.join(REPO, "examples", "reference", `${name}.vlm`);
        const result = await compile([spec], {
          weights: path.join(dir, "weights.safetensors"),
          out: path.join(dir, "onnx"),
        });
        expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`)).toEqual(
          [],
        );
        compiled.set(
          spec,
          result.files.map((f) => f.path),
        );

        const pixels = readNpy(path.join(dir, "pixels.npy"));
        const expected = readNpy(path.join(dir, "logits.npy"));
        const session = await ort.InferenceSession.create(result.files[0]!.path);
        try {
          const out = (
            await session.run({ pixels: new ort.Tensor("float32", pixels.data as Float32Array, pixels.shape) })
          )["logits"]!;
          expect([...out.dims]).toEqual(expected.shape);
          const a = out.data as Float32Array;
          let worst = 0;
          for (let i = 0; i < a.length; i++)
            worst = Math.max(worst, Math.abs(a[i]! - (expected.data as Float32Array)[i]!));
          if (process.env["VLMC_PARITY_REPORT"])
            console.log(
              `${name}: max abs error ${worst.toExponential(2)} (max |logit| ${info.max_abs_logit.toFixed(2)})`,
            );
          expect(worst).toBeLessThanOrEqual(FULL_SIZE_TOLERANCE);
        } finally {
          await session.release();
        }
      }, 900_000);
    }
  });

  it("every portable model passes onnx.checker.check_model(full_check=True)", async () => {
    const specs = [
      ...vlmFiles(path.join(REPO, "examples")),
      ...vlmFiles(path.join(REPO, "examples", "reference")),
      ...fs
        .readdirSync(path.join(import.meta.dirname, "fixtures", "parity"))
        .sort()
        .map((n) => path.join(import.meta.dirname, "fixtures", "parity", n, "spec.vlm"))
        .filter((f) => fs.existsSync(f)),
    ];
    const models: string[] = [];
    const problems: string[] = [];
    for (const [i, spec] of specs.entries()) {
      if (compiled.has(spec)) {
        models.push(...compiled.get(spec)!);
        continue;
      }
      const elaborated = elaborate([spec]);
      if (!elaborated.ok) {
        problems.push(`${spec}: ${elaborated.diagnostics.map((d) => d.message).join("; ")}`);
        continue;
      }
      for (const m of elaborated.models) {
        const module = m.module!;
        const params = module.params.reduce(
          (a, p) => a + p.type.shape.reduce((x: number, y) => x * (y as number), 1),
          0,
        );
        const out = path.join(tmp, "check", `${i}-${module.name}`);
        fs.mkdirSync(out, { recursive: true });
        if (params <= PARAMS_WRITTEN_LIMIT) {
          // One real model goes through external data too.
          const externalData = path.basename(spec) === "resnet18.vlm" ? "always" : "auto";
          const result = await compile([spec], { model: module.name, out, externalData });
          if (!result.ok)
            problems.push(`${spec} (${module.name}): ${result.diagnostics.map((d) => d.message).join("; ")}`);
          models.push(...result.files.map((f) => f.path));
        } else {
          for (const graph of module.graphs) {
            const file = path.join(out, `${graph.name}.onnx`);
            writeSkeleton(module, graph, file);
            models.push(file);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    const list = path.join(tmp, "models.txt");
    fs.writeFileSync(list, models.join("\n") + "\n");
    const results = JSON.parse(python([path.join(SCRIPTS, "check_onnx.py"), `@${list}`], 900_000)) as Record<
      string,
      string
    >;
    expect(Object.keys(results).length).toBe(models.length);
    if (process.env["VLMC_PARITY_REPORT"]) console.log(`onnx.checker: ${models.length} models checked`);
    expect(Object.entries(results).filter(([, r]) => r !== "ok")).toEqual([]);
  }, 1_800_000);
});
