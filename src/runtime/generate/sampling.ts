// Choosing the next token from logits, with Hugging Face generate's semantics and order:
// repetition penalty (a logits processor, so it applies to greedy search too), then temperature,
// top-k and top-p (warpers, sampling only), then a seeded draw. Greedy takes the first maximum,
// as torch.argmax does.

import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";

export interface SamplingOptions {
  /** 0 (the default) is greedy search; above 0 samples from softmax(logits / temperature). */
  readonly temperature?: number;
  /** Sample among the k most likely tokens only (ties with the k-th kept, as Hugging Face does). */
  readonly topK?: number;
  /** Sample among the most likely tokens whose probabilities sum to at least p. */
  readonly topP?: number;
  /** Hugging Face's: logits of tokens already in the sequence are divided (positive) or multiplied (negative) by it. */
  readonly repetitionPenalty?: number;
  /** Seed of the draws; each prompt row has its own stream, so a row samples the same in any batch. */
  readonly seed?: number;
}

/** Sampling is on when a temperature above 0 or a top-k/top-p filter is asked for (temperature 1 then). */
export function isSampling(o: SamplingOptions): boolean {
  return (o.temperature ?? 0) > 0 || o.topK !== undefined || o.topP !== undefined;
}

/** The first problem with the options as a VLM5009 naming the flag, or undefined. */
export function samplingProblem(o: SamplingOptions): Diagnostic | undefined {
  const bad = (flag: string, why: string) => diagnostic("VLM5009", `--${flag}: ${why}`);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature)))
    return bad("temperature", `${o.temperature} is not a number ≥ 0`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1))
    return bad("top-k", `${o.topK} is not a whole number ≥ 1`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) return bad("top-p", `${o.topP} is not in (0, 1]`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty)))
    return bad("repetition-penalty", `${o.repetitionPenalty} is not a number > 0`);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) return bad("seed", `${o.seed} is not a whole number`);
  return undefined;
}

/** Hugging Face's RepetitionPenaltyLogitsProcessor, in place, over the distinct ids in `seen`. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    const v = logits[id]!;
    logits[id] = v < 0 ? v * penalty : v / penalty;
  }
}

/** Index of the first maximum. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * The distribution sampling draws from: temperature, then top-k, then top-p, as Hugging Face's
 * warpers (removed tokens get probability 0). Returns probabilities over the vocabulary.
 */
export function samplingDistribution(logits: Float32Array, o: SamplingOptions): Float64Array {
  const temperature = (o.temperature ?? 0) > 0 ? o.temperature! : 1;
  const scores = Float64Array.from(logits, (v) => v / temperature);
  if (o.topK !== undefined && o.topK < scores.length) {
    const kth = Float64Array.from(scores).sort()[scores.length - o.topK]!;
    for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
  }
  const probs = softmax(scores);
  if (o.topP !== undefined && o.topP < 1) {
    // Ascending order, as TopPLogitsWarper: drop the tokens whose cumulative probability stays
    // within 1 - p; the most likely token always survives.
    const order = Array.from(probs.keys()).sort((a, b) => probs[a]! - probs[b]! || b - a);
    let cumulative = 0;
    for (let r = 0; r < order.length - 1; r++) {
      cumulative += probs[order[r]!]!;
      if (cumulative <= 1 - o.topP) scores[order[r]!] = -Infinity;
    }
    return softmax(scores);
  }
  return probs;
}

function softmax(scores: Float64Array): Float64Array {
  let max = -Infinity;
  for (const v of scores) if (v > max) max = v;
  const out = Float64Array.from(scores, (v) => Math.exp(v - max));
  let sum = 0;
  for (const v of out) sum += v;
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** The token at which the cumulative probability first passes `u` ∈ [0, 1). */
export function drawToken(probs: Float64Array, u: number): number {
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! === 0) continue;
    cumulative += probs[i]!;
    last = i;
    if (u < cumulative) return i;
  }
  return last;
}

/**
 * A seeded stream of uniform numbers in [0, 1): SplitMix32 finalisation over a counter, keyed by
 * seed and row, so that every row's draws depend on nothing but the seed and the row's index.
 */
export class RowRandom {
  private counter = 0;
  private readonly key: number;

  constructor(seed: number, row: number) {
    this.key = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(row + 1, 0x85ebca77) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  }

  next(): number {
    let z = (this.key + Math.imul(++this.counter, 0x9e3779b9)) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  }
}

/** Picks the next token of one row: penalty over `seen`, then greedy or a seeded draw. */
export function nextToken(logits: Float32Array, seen: Iterable<number>, o: SamplingOptions, random: RowRandom): number {
  const scores = o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1 ? Float32Array.from(logits) : logits;
  if (scores !== logits) applyRepetitionPenalty(scores, seen, o.repetitionPenalty!);
  return isSampling(o) ? drawToken(samplingDistribution(scores, o), random.next()) : argmax(scores);
}
