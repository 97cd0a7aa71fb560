// The contract between the pass manager and a pass: what a pass is, and the context it reports
// through (diagnostics, statistics, rule fires, near misses, iteration caps).

import type { Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import type { Graph, IrModule, Node } from "../ir/graph.js";
import type { Target } from "../target/target.js";

/** Options every pass may read; the manager fills them from the compile options. */
export interface PassOptions {
  /**
   * Compile for this training stage: the parameters of the components it trains are variables,
   * so constant folding leaves them alone. Without a stage every parameter is a constant of the
   * deployed graph (frozen is the deployment default).
   */
  readonly stage?: string;
  /** Cap on fixpoint loops: rewrite sweeps inside a pass, and repetitions of a fixpoint group. */
  readonly maxIterations: number;
  /** Where diagnostics about things without a span of their own point (the model declaration). */
  readonly modelSpan?: Span;
  /** What the graph will run on: passes ask it which ops, kernels and quantization it has. */
  readonly target: Target;
  /** Command-line quantization and precision; they override the model's `policy` rules. */
  readonly quantize?: QuantizeMode;
  readonly precision?: Precision;
  /** Block of int4 weights along K (MatMulNBits' block_size); INT4_BLOCK_SIZE when absent. */
  readonly int4Block?: number;
}

export type QuantizeMode = "none" | "int8" | "int4";
export type Precision = "fp32" | "fp16" | "bf16";

/** A rewrite rule that matched a node but whose check refused it, and why. */
export interface NearMiss {
  readonly rule: string;
  readonly node: Node;
  readonly reason: string;
}

/**
 * What a pass reports through. The manager hands every pass run its own context, so statistics,
 * fires and near misses are attributed to the run that produced them.
 */
export interface PassContext {
  readonly options: PassOptions;
  accept(d: Diagnostic): void;
  /** Adds `n` (default 1) to the statistic `key` of this run. */
  stat(key: string, n?: number): void;
  /** A rewrite rule fired once. */
  fired(rule: string): void;
  nearMiss(miss: NearMiss): void;
  /** A loop inside the pass stopped at `options.maxIterations` before settling. */
  capped(what: string): void;
}

export interface Pass {
  /** kebab-case, unique in a registry. */
  readonly name: string;
  /** One line, shown by `vlmc compile --report` and `--passes help`. */
  readonly description: string;
  run(module: IrModule, ctx: PassContext): { changed: boolean };
}

/** Runs `change` on every graph of the module; the module changed if any graph did. */
export function eachGraph(module: IrModule, change: (g: Graph) => boolean): { changed: boolean } {
  let changed = false;
  for (const g of module.graphs) changed = change(g) || changed;
  return { changed };
}
