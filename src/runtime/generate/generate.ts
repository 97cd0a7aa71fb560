// The generation loop over a StepEngine: one prefill of every prompt row, then one decode step per
// new token, choosing tokens with Hugging Face generate's semantics and stopping each row on the
// package's eos ids, its token budget or the context's end. Tokens are yielded as they are
// chosen, so callers stream text; the return value holds the timings.

import { diagnostic, DiagnosticError, type Diagnostic } from "../../diagnostics/diagnostic.js";
import { newTokenBudget } from "./prompt.js";
import { nextToken, RowRandom, samplingProblem, type SamplingOptions } from "./sampling.js";
import type { RowImages, StepEngine } from "./step-engine.js";

export interface PromptRow {
  /** The row's prompt ids, image tokens already expanded as the family needs. */
  readonly ids: readonly bigint[];
  readonly images: RowImages;
}

export interface GenerateOptions extends SamplingOptions {
  /** New tokens per row at most (the eos token, when produced, counts as one). */
  readonly maxNewTokens: number;
  /** Tokens that end a row; the manifest's eos ids when absent. */
  readonly stopTokens?: readonly number[];
}

export type StopReason = "eos" | "max-new-tokens" | "context";

export interface GeneratedToken {
  readonly row: number;
  readonly token: number;
  /** 0 for a row's first new token. */
  readonly index: number;
  /** Set on a row's last token: why the row ends. */
  readonly stop?: StopReason;
}

export interface GenerationStats {
  readonly rows: number;
  readonly promptTokens: number;
  /** Wall time of the prefill (vision, embedding and decoder over the prompts), milliseconds. */
  readonly prefillMs: number;
  /** Wall time of the decode steps after the prefill, milliseconds. */
  readonly decodeMs: number;
  readonly decodeSteps: number;
  /** New tokens over all rows, the first (from the prefill) included. */
  readonly newTokens: number;
  /** Decode steps per second: tokens per second of one row. */
  readonly tokensPerSecond: number;
  /** Milliseconds from the call to the first token. */
  readonly timeToFirstTokenMs: number;
  /** Peak resident memory of the process so far, bytes. */
  readonly peakMemoryBytes: number;
}

/** The first problem with the options as a VLM5009 naming the flag, or undefined. */
export function generationProblem(o: GenerateOptions): Diagnostic | undefined {
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 1))
    return diagnostic("VLM5009", `--max-new-tokens: ${o.maxNewTokens} is not a whole number ≥ 1`);
  return samplingProblem(o);
}

/**
 * Generates from `rows` with `engine`, yielding every chosen token in order (row by row within a
 * step). Does not release the engine. Throws DiagnosticError for bad options or when a prompt
 * leaves no room in the context.
 */
export async function* generate(
  engine: StepEngine,
  rows: readonly PromptRow[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerationStats> {
  const problem = generationProblem(options);
  if (problem) throw new DiagnosticError(problem);
  const { manifest } = engine;
  const stop = new Set(options.stopTokens ?? manifest.tokens.eos);
  const filler = BigInt(manifest.tokens.pad ?? manifest.tokens.eos[0]!);
  if (rows.length === 0) throw new DiagnosticError(diagnostic("VLM5009", "no prompts to generate from"));
  // The engine pads rows to the longest in its cache, so the whole batch shares that row's room.
  const budget = newTokenBudget(manifest, Math.max(...rows.map((r) => r.ids.length)), options.maxNewTokens);
  const seen = rows.map((r) => r.ids.map(Number));
  const random = rows.map((_, i) => new RowRandom(options.seed ?? 0, i));
  const produced = rows.map(() => 0);
  const done = rows.map(() => false);

  const start = performance.now();
  let logits = await engine.prefill({ rows: rows.map((r) => r.ids), images: rows.map((r) => r.images) });
  const prefillEnd = performance.now();
  let firstToken: number | undefined;
  let steps = 0;
  let newTokens = 0;
  for (;;) {
    const next: bigint[] = [];
    for (let row = 0; row < rows.length; row++) {
      if (done[row]) {
        next.push(filler);
        continue;
      }
      const token = nextToken(logits[row]!, seen[row]!, options, random[row]!);
      const index = produced[row]++;
      seen[row]!.push(token);
      newTokens++;
      const reason: StopReason | undefined = stop.has(token)
        ? "eos"
        : index + 1 < budget
          ? undefined
          : budget < options.maxNewTokens
            ? "context"
            : "max-new-tokens";
      if (reason) done[row] = true;
      firstToken ??= performance.now();
      yield { row, token, index, ...(reason ? { stop: reason } : {}) };
      next.push(BigInt(token));
    }
    if (done.every(Boolean)) break;
    logits = await engine.step(next);
    steps++;
  }
  // The first token comes from the prefill's logits; decoding is what follows it.
  const decodeMs = performance.now() - firstToken!;
  return {
    rows: rows.length,
    promptTokens: rows.reduce((n, r) => n + r.ids.length, 0),
    prefillMs: prefillEnd - start,
    decodeMs,
    decodeSteps: steps,
    newTokens,
    tokensPerSecond: steps > 0 && decodeMs > 0 ? (steps * 1000) / decodeMs : 0,
    timeToFirstTokenMs: firstToken! - start,
    peakMemoryBytes: process.resourceUsage().maxRSS * 1024,
  };
}
