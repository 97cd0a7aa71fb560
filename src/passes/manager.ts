// The pass manager: a registry of passes by name, a pipeline with fixpoint groups, selection
// (`--passes cse,dce` or `--passes -cse`), timing, IR dumps after chosen passes, the verifier after
// every pass in tests, iteration caps, and the report `vlmc compile --report` prints.

import { closestName, InternalError, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceLookup } from "../diagnostics/render.js";
import type { Span } from "../diagnostics/source.js";
import type { IrModule } from "../ir/graph.js";
import { printModule, runtimeNodeCount, verifyModule } from "./module-ir.js";
import { targetNamed, type TargetName } from "../target/target.js";
import type { Pass, PassContext, PassOptions, Precision, QuantizeMode } from "./pass.js";

export const DEFAULT_MAX_ITERATIONS = 10;

/** A pass, or passes repeated in order until none changes the IR (at most maxIterations times). */
export type PipelineStep = string | { readonly fixpoint: readonly string[] };

export interface RunOptions {
  /**
   * Names (or aliases) to run, in this order, instead of the pipeline; `-name` removes a pass
   * from whatever runs. `["-cse"]` is the pipeline without common-subexpression elimination.
   */
  readonly passes?: readonly string[];
  /** Print the module's IR after this pass (name or alias), or after every pass with "all". */
  readonly printIrAfter?: string;
  /** Receives each IR dump; without it the dumps are kept in the report. */
  readonly printIr?: (text: string) => void;
  /** Run the verifier before the first pass and after each; a broken IR throws an InternalError naming the pass. */
  readonly verify?: boolean;
  readonly maxIterations?: number;
  readonly stage?: string;
  readonly modelSpan?: Span;
  /** The target the passes rewrite for (default portable). */
  readonly target?: TargetName;
  readonly quantize?: QuantizeMode;
  readonly precision?: Precision;
  readonly int4Block?: number;
  /** Receives each diagnostic as a pass reports it (the report keeps them too). */
  readonly accept?: (d: Diagnostic) => void;
}

export interface NearMissRecord {
  readonly rule: string;
  readonly op: string;
  readonly scope: string;
  readonly span: Span;
  readonly reason: string;
}

export interface PassRunReport {
  readonly pass: string;
  /** The round of its fixpoint group, 1-based; absent outside a group. */
  readonly iteration?: number;
  readonly timeMs: number;
  readonly changed: boolean;
  /** Nodes that run per call, over every graph of the module. */
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly stats: Readonly<Record<string, number>>;
  readonly fires: Readonly<Record<string, number>>;
  readonly nearMisses: readonly NearMissRecord[];
  readonly diagnostics: number;
}

export interface FixpointReport {
  readonly passes: readonly string[];
  readonly iterations: number;
  readonly settled: boolean;
}

export interface PassReport {
  readonly module: string;
  readonly runs: PassRunReport[];
  readonly fixpoints: FixpointReport[];
  /** Loops stopped by maxIterations before they settled. */
  readonly caps: string[];
  readonly diagnostics: Diagnostic[];
  readonly irDumps: string[];
  totalMs: number;
}

/** A pass selection or option that names something that does not exist: a usage error. */
export class PassSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PassSelectionError";
  }
}

function add(record: Record<string, number>, key: string, n: number): void {
  record[key] = (record[key] ?? 0) + n;
}

export class PassManager {
  private readonly registry = new Map<string, Pass>();
  private readonly aliases = new Map<string, string>();

  constructor(private readonly pipeline: readonly PipelineStep[] = []) {}

  register(pass: Pass, ...aliases: string[]): this {
    if (this.registry.has(pass.name)) throw new InternalError(`pass ${pass.name} is registered twice`);
    this.registry.set(pass.name, pass);
    for (const a of aliases) this.aliases.set(a, pass.name);
    return this;
  }

  /** Registered passes in registration order. */
  list(): Pass[] {
    return [...this.registry.values()];
  }

  /** The canonical name of a pass or alias; throws PassSelectionError for an unknown one. */
  resolve(name: string): string {
    const canonical = this.aliases.get(name) ?? name;
    if (this.registry.has(canonical)) return canonical;
    const guess = closestName(name, [...this.registry.keys(), ...this.aliases.keys()]);
    throw new PassSelectionError(
      `no pass named "${name}"${guess ? ` (did you mean "${guess}"?)` : ""}; passes: ${[...this.registry.keys()].join(", ")}`,
    );
  }

  /** The steps `run` takes for a selection. */
  plan(selection: readonly string[] = []): PipelineStep[] {
    const skip = new Set(selection.filter((s) => s.startsWith("-")).map((s) => this.resolve(s.slice(1))));
    const chosen = selection.filter((s) => !s.startsWith("-")).map((s) => this.resolve(s));
    const steps: PipelineStep[] = [];
    for (const step of chosen.length > 0 ? chosen : this.pipeline) {
      if (typeof step === "string") {
        if (!skip.has(this.resolve(step))) steps.push(this.resolve(step));
      } else {
        const kept = step.fixpoint.map((p) => this.resolve(p)).filter((p) => !skip.has(p));
        if (kept.length > 0) steps.push({ fixpoint: kept });
      }
    }
    return steps;
  }

  run(module: IrModule, options: RunOptions = {}): PassReport {
    const steps = this.plan(options.passes);
    const printAfter =
      options.printIrAfter === undefined || options.printIrAfter === "all"
        ? options.printIrAfter
        : this.resolve(options.printIrAfter);
    if (options.stage !== undefined && !module.stages.some((s) => s.name === options.stage)) {
      throw new PassSelectionError(
        `model ${module.name} has no stage "${options.stage}" (stages: ${module.stages.map((s) => s.name).join(", ") || "none"})`,
      );
    }
    const passOptions: PassOptions = {
      maxIterations: options.maxIterations ?? DEFAULT_MAX_ITERATIONS,
      stage: options.stage,
      modelSpan: options.modelSpan,
      target: targetNamed(options.target),
      quantize: options.quantize,
      precision: options.precision,
      ...(options.int4Block !== undefined ? { int4Block: options.int4Block } : {}),
    };
    const report: PassReport = {
      module: module.name,
      runs: [],
      fixpoints: [],
      caps: [],
      diagnostics: [],
      irDumps: [],
      totalMs: 0,
    };
    const start = performance.now();
    if (options.verify) this.verify(module, "before the first pass");

    const runPass = (name: string, iteration?: number): boolean => {
      const pass = this.registry.get(name)!;
      const stats: Record<string, number> = {};
      const fires: Record<string, number> = {};
      const nearMisses: NearMissRecord[] = [];
      let diagnostics = 0;
      const ctx: PassContext = {
        options: passOptions,
        accept: (d) => {
          diagnostics++;
          report.diagnostics.push(d);
          options.accept?.(d);
        },
        stat: (key, n = 1) => add(stats, key, n),
        fired: (rule) => add(fires, rule, 1),
        nearMiss: ({ rule, node, reason }) =>
          nearMisses.push({ rule, op: node.op, scope: node.scope, span: node.span, reason }),
        capped: (what) => report.caps.push(`${name}: ${what}`),
      };
      const nodesBefore = runtimeNodeCount(module);
      const irBefore = options.verify ? printModule(module) : "";
      const t0 = performance.now();
      const { changed } = pass.run(module, ctx);
      const timeMs = performance.now() - t0;
      report.runs.push({
        pass: name,
        ...(iteration === undefined ? {} : { iteration }),
        timeMs,
        changed,
        nodesBefore,
        nodesAfter: runtimeNodeCount(module),
        stats,
        fires,
        nearMisses,
        diagnostics,
      });
      if (options.verify) {
        this.verify(module, `after pass ${name}`);
        if (!changed && printModule(module) !== irBefore)
          throw new InternalError(`pass ${name} changed the IR but reported no change`);
      }
      if (printAfter === "all" || printAfter === name) {
        const text = `// IR after ${name}${iteration === undefined ? "" : ` (iteration ${iteration})`}\n${printModule(module)}\n`;
        if (options.printIr) options.printIr(text);
        else report.irDumps.push(text);
      }
      return changed;
    };

    for (const step of steps) {
      if (typeof step === "string") {
        runPass(step);
        continue;
      }
      let iterations = 0;
      let settled = false;
      while (!settled && iterations < passOptions.maxIterations) {
        iterations++;
        // Every pass of the round runs, even after one reports a change, so a round is a unit.
        settled = step.fixpoint.map((name) => runPass(name, iterations)).every((changed) => !changed);
      }
      report.fixpoints.push({ passes: step.fixpoint, iterations, settled });
      if (!settled)
        report.caps.push(`fixpoint ${step.fixpoint.join(", ")}: still changing after ${iterations} iterations`);
    }
    report.totalMs = performance.now() - start;
    return report;
  }

  private verify(module: IrModule, when: string): void {
    const problems = verifyModule(module);
    if (problems.length > 0)
      throw new InternalError(`IR verification failed ${when}:\n  ${problems.slice(0, 20).join("\n  ")}`);
  }
}

// ---- the report, for people ----

const count = (n: number): string => n.toLocaleString("en-US");

function where(span: Span, sources: SourceLookup | undefined): string {
  const src = sources?.(span.file);
  if (!src) return span.file;
  const { line, column } = src.position(span.start);
  return `${span.file}:${line}:${column}`;
}

function tally(record: Readonly<Record<string, number>>, unit = ""): string {
  return Object.entries(record)
    .filter(([, n]) => n !== 0)
    .map(([k, n]) => `${k} ${unit}${count(n)}`)
    .join(", ");
}

/** Near misses listed per run before the rest are only counted. */
const NEAR_MISSES_SHOWN = 8;

/** The report as a table with notes under each run, for `vlmc compile --report`. */
export function renderReport(report: PassReport, sources?: SourceLookup): string {
  const rows = [["pass", "round", "ms", "changed", "nodes"]];
  const notes: string[][] = [];
  for (const r of report.runs) {
    const nodes =
      r.nodesBefore === r.nodesAfter ? count(r.nodesAfter) : `${count(r.nodesBefore)} → ${count(r.nodesAfter)}`;
    rows.push([
      r.pass,
      r.iteration === undefined ? "" : String(r.iteration),
      r.timeMs.toFixed(1),
      r.changed ? "yes" : "no",
      nodes,
    ]);
    const lines: string[] = [];
    if (Object.keys(r.fires).length > 0) lines.push(`fired: ${tally(r.fires, "×")}`);
    const stats = tally(r.stats);
    if (stats) lines.push(`stats: ${stats}`);
    if (r.diagnostics > 0) lines.push(`diagnostics: ${r.diagnostics}`);
    // The same block in several graphs (or the layers of a repeat: one source line, many scopes)
    // misses the same way: one line each, naming the first scope.
    const misses = new Map<string, { text: string; n: number }>();
    for (const m of r.nearMisses) {
      const at = where(m.span, sources);
      const key = `${m.rule}\0${m.op}\0${at}\0${m.reason}`;
      const seen = misses.get(key);
      if (seen) seen.n++;
      else misses.set(key, { text: `${m.rule} at ${m.op} ${m.scope || "/"} (${at}): ${m.reason}`, n: 1 });
    }
    for (const { text, n } of [...misses.values()].slice(0, NEAR_MISSES_SHOWN))
      lines.push(`near miss: ${text}${n > 1 ? ` (×${n})` : ""}`);
    if (misses.size > NEAR_MISSES_SHOWN) lines.push(`… and ${misses.size - NEAR_MISSES_SHOWN} more near misses`);
    notes.push(lines);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const right = [false, true, true, false, true];
  const line = (r: string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [`passes on model ${report.module} (${report.totalMs.toFixed(1)} ms)`, "", line(rows[0]!)];
  rows.slice(1).forEach((r, i) => out.push(line(r), ...notes[i]!.map((n) => `    ${n}`)));
  for (const f of report.fixpoints)
    out.push(
      "",
      `fixpoint ${f.passes.join(", ")}: ${f.settled ? "settled" : "stopped"} after ${f.iterations} round${f.iterations === 1 ? "" : "s"}`,
    );
  for (const c of report.caps) out.push(`warning: iteration cap reached: ${c}`);
  return out.join("\n");
}
