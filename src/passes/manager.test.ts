// The pass manager: selection, IR dumps, verification after each pass, fixpoint caps, the report
// and its rendering.

import { describe, expect, it } from "vitest";
import { InternalError } from "../diagnostics/diagnostic.js";
import { Graph } from "../ir/graph.js";
import { tensorType } from "../ir/types.js";
import { node, SPAN, testModule } from "../../test/helpers/graph-fixtures.js";
import { createPassManager, DEFAULT_PIPELINE } from "./index.js";
import { PassManager, PassSelectionError, renderReport } from "./manager.js";
import type { Pass } from "./pass.js";

function reluModule() {
  const g = new Graph("forward");
  const x = g.addInput("x", tensorType("f32", [2]));
  node(g, "Neg", [x]); // dead
  g.setOutput("y", node(g, "Relu", [x]));
  return testModule([g]);
}

const noop: Pass = { name: "noop", description: "does nothing", run: () => ({ changed: false }) };

describe("pass selection", () => {
  const pm = createPassManager();

  it("runs the default pipeline, skips with -name or an alias, or runs exactly what is named", () => {
    expect(pm.plan()).toEqual(DEFAULT_PIPELINE);
    expect(pm.plan(["-cse", "-unused-values"])).toEqual([
      "output-dependence",
      { fixpoint: ["constant-folding", "dead-code-elimination"] },
      "precompute-constants",
      "quantize-weights",
      "convert-precision",
      "fuse-attention",
      "fuse-norms",
      "fuse-activations",
    ]);
    expect(pm.plan(["dce", "cse", "-cse"])).toEqual(["dead-code-elimination"]);
  });

  it("rejects an unknown pass with a suggestion", () => {
    expect(() => pm.plan(["-dead-code-elimnation"])).toThrow(PassSelectionError);
    expect(() => pm.plan(["-dead-code-elimnation"])).toThrow(/did you mean "dead-code-elimination"/);
    expect(() => pm.run(reluModule(), { printIrAfter: "nope" })).toThrow(PassSelectionError);
  });

  it("rejects a stage the model does not have", () => {
    expect(() => pm.run(reluModule(), { stage: "pretrain" })).toThrow(/no stage "pretrain"/);
  });

  it("refuses to register a name twice", () => {
    expect(() => new PassManager().register(noop).register(noop)).toThrow(InternalError);
  });
});

describe("running passes", () => {
  it("reports time, change, node counts and stats per run", () => {
    const report = createPassManager().run(reluModule(), { passes: ["dce"], verify: true });
    expect(report.runs).toHaveLength(1);
    const [run] = report.runs;
    expect(run).toMatchObject({
      pass: "dead-code-elimination",
      changed: true,
      nodesBefore: 2,
      nodesAfter: 1,
      stats: { "nodes-removed": 1 },
    });
    expect(run!.timeMs).toBeGreaterThanOrEqual(0);
  });

  it("prints the IR after the chosen pass, or after every pass", () => {
    const texts: string[] = [];
    createPassManager().run(reluModule(), {
      passes: ["cse", "dce"],
      printIrAfter: "dce",
      printIr: (t) => texts.push(t),
    });
    expect(texts).toHaveLength(1);
    expect(texts[0]).toMatch(/^\/\/ IR after dead-code-elimination\ngraph forward/);
    expect(texts[0]).not.toContain("Neg");
    const report = createPassManager().run(reluModule(), { passes: ["cse", "dce"], printIrAfter: "all" });
    expect(report.irDumps.map((t) => t.split("\n")[0])).toEqual([
      "// IR after common-subexpression-elimination",
      "// IR after dead-code-elimination",
    ]);
  });

  it("names the pass that broke the IR", () => {
    const breaker: Pass = {
      name: "breaker",
      description: "corrupts a use list",
      run: (m) => {
        m.graphs[0]!.inputs[0]!.uses.length = 0;
        return { changed: true };
      },
    };
    const pm = new PassManager(["breaker"]).register(breaker);
    expect(() => pm.run(reluModule(), { verify: true })).toThrow(/after pass breaker/);
    expect(() => new PassManager(["breaker"]).register(breaker).run(reluModule())).not.toThrow();
  });

  it("catches a pass that changes the IR but says it did not", () => {
    const liar: Pass = {
      name: "liar",
      description: "changes without telling",
      run: (m) => {
        const g = m.graphs[0]!;
        g.removeNode(g.nodes[0]!);
        return { changed: false };
      },
    };
    expect(() => new PassManager(["liar"]).register(liar).run(reluModule(), { verify: true })).toThrow(
      /liar changed the IR but reported no change/,
    );
  });

  it("caps a fixpoint group that never settles and reports it", () => {
    const restless: Pass = { name: "restless", description: "always changes", run: () => ({ changed: true }) };
    const report = new PassManager([{ fixpoint: ["restless", "noop"] }])
      .register(restless)
      .register(noop)
      .run(reluModule(), { maxIterations: 4 });
    expect(report.fixpoints).toEqual([{ passes: ["restless", "noop"], iterations: 4, settled: false }]);
    expect(report.runs.map((r) => `${r.pass}@${r.iteration}`)).toEqual([
      "restless@1",
      "noop@1",
      "restless@2",
      "noop@2",
      "restless@3",
      "noop@3",
      "restless@4",
      "noop@4",
    ]);
    expect(report.caps).toHaveLength(1);
    expect(renderReport(report)).toContain("warning: iteration cap reached: fixpoint restless, noop");
  });

  it("settles a fixpoint group when a round changes nothing", () => {
    const report = createPassManager().run(reluModule(), { passes: [] });
    expect(report.fixpoints).toEqual([
      {
        passes: ["constant-folding", "common-subexpression-elimination", "dead-code-elimination"],
        iterations: 2,
        settled: true,
      },
    ]);
  });
});

describe("renderReport", () => {
  it("tabulates runs with their fires, stats and near misses (repeats folded, across the layers of a repeat too)", () => {
    const nearMiss = {
      rule: "r",
      op: "Add",
      scope: "/q/layer",
      span: SPAN,
      reason: "input 1 depends on a graph input",
    };
    const nextLayer = { ...nearMiss, scope: "/q/layer.1" };
    const text = renderReport({
      module: "m",
      runs: [
        {
          pass: "constant-folding",
          iteration: 1,
          timeMs: 1.25,
          changed: true,
          nodesBefore: 1200,
          nodesAfter: 1100,
          stats: { "flops-hoisted": 5000, zero: 0 },
          fires: { r: 3 },
          nearMisses: [nearMiss, nextLayer, nearMiss],
          diagnostics: 0,
        },
        {
          pass: "unused-values",
          timeMs: 0.5,
          changed: false,
          nodesBefore: 1100,
          nodesAfter: 1100,
          stats: {},
          fires: {},
          nearMisses: [],
          diagnostics: 2,
        },
      ],
      fixpoints: [{ passes: ["constant-folding"], iterations: 1, settled: true }],
      caps: [],
      diagnostics: [],
      irDumps: [],
      totalMs: 2,
    });
    expect(text.split("\n")).toEqual([
      "passes on model m (2.0 ms)",
      "",
      "pass              round   ms  changed          nodes",
      "constant-folding      1  1.3  yes      1,200 → 1,100",
      "    fired: r ×3",
      "    stats: flops-hoisted 5,000",
      "    near miss: r at Add /q/layer (test.vlm): input 1 depends on a graph input (×3)",
      "unused-values            0.5  no               1,100",
      "    diagnostics: 2",
      "",
      "fixpoint constant-folding: settled after 1 round",
    ]);
  });
});
