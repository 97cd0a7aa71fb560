// The generation loop against a fake StepEngine whose logits are a known function of the tokens:
// greedy order, stopping (eos, budget, context), batching rows of different lengths, repetition
// penalty, top-k/top-p/temperature with Hugging Face's semantics, and seeded reproducibility.

import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../../diagnostics/diagnostic.js";
import {
  FAKE_EOS,
  FAKE_PAD,
  FAKE_VOCAB,
  FakeStepEngine,
  fakeManifest,
  preferred,
} from "../../../test/helpers/fake-step-engine.js";
import {
  generate,
  type GeneratedToken,
  type GenerateOptions,
  type GenerationStats,
  type PromptRow,
} from "./generate.js";
import {
  applyRepetitionPenalty,
  argmax,
  drawToken,
  RowRandom,
  samplingDistribution,
  samplingProblem,
} from "./sampling.js";

const NO_IMAGES = { pixels: new Float32Array(0), count: 0 };

function rows(...prompts: number[][]): PromptRow[] {
  return prompts.map((p) => ({ ids: p.map(BigInt), images: NO_IMAGES }));
}

async function run(
  engine: FakeStepEngine,
  prompts: PromptRow[],
  options: GenerateOptions,
): Promise<{ tokens: GeneratedToken[]; byRow: number[][]; stats: GenerationStats }> {
  const tokens: GeneratedToken[] = [];
  const it = generate(engine, prompts, options);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      const byRow = prompts.map((_, i) => tokens.filter((t) => t.row === i).map((t) => t.token));
      return { tokens, byRow, stats: r.value };
    }
    tokens.push(r.value);
  }
}

/** Greedy continuation of the fake, written from its definition: stop on eos or after n tokens. */
function greedyReference(prompt: number[], n: number): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  while (out.length < n) {
    const t = preferred(seq);
    out.push(t);
    seq.push(t);
    if (t === FAKE_EOS) break;
  }
  return out;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof DiagnosticError) return e.diagnostic.code;
    throw e;
  }
  return undefined;
}

describe("generate: greedy search and stopping", () => {
  it("follows the logits greedily and stops after max-new-tokens", async () => {
    const prompt = [1, 4];
    const { byRow, tokens } = await run(new FakeStepEngine(), rows(prompt), { maxNewTokens: 6 });
    const want = greedyReference(prompt, 6);
    expect(want).not.toContain(FAKE_EOS);
    expect(byRow[0]).toEqual(want);
    expect(tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(tokens.at(-1)!.stop).toBe("max-new-tokens");
    expect(tokens.slice(0, -1).every((t) => t.stop === undefined)).toBe(true);
  });

  it("stops a row on eos, yielding the eos token", async () => {
    const prompt = [1, 6];
    const want = greedyReference(prompt, 40);
    expect(want.at(-1)).toBe(FAKE_EOS);
    const { byRow, tokens } = await run(new FakeStepEngine(), rows(prompt), { maxNewTokens: 40 });
    expect(byRow[0]).toEqual(want);
    expect(tokens.at(-1)!.stop).toBe("eos");
  });

  it("batches rows of different lengths: each row as if alone; finished rows are fed pad", async () => {
    const a = [1, 6];
    const b = [4];
    const engine = new FakeStepEngine();
    const { byRow } = await run(engine, rows(a, b), { maxNewTokens: 40 });
    expect(byRow[0]).toEqual(greedyReference(a, 40));
    expect(byRow[1]).toEqual(greedyReference(b, 40));
    expect(engine.prefills[0]!.rows.map((r) => r.length)).toEqual([2, 1]);
    expect(byRow[0]!.at(-1)).toBe(FAKE_EOS);
    expect(byRow[1]).toHaveLength(40);
    expect(engine.steps.every((s) => s.length === 2)).toBe(true);
    const afterEos = engine.steps.slice(byRow[0]!.length).map((s) => s[0]);
    // 39 steps after the prefill; row 0's tokens 2…6 went in steps 1…5, its eos in step 6.
    expect(engine.steps).toHaveLength(39);
    expect(afterEos).toHaveLength(39 - byRow[0]!.length);
    expect(afterEos.every((t) => t === BigInt(FAKE_PAD))).toBe(true);
  });

  it("stops at the context's end, and refuses a prompt that fills it (VLM5008)", async () => {
    const engine = new FakeStepEngine(fakeManifest({ contextLength: 8 }));
    const { tokens } = await run(engine, rows([1, 4, 3, 0, 10]), { maxNewTokens: 10 });
    expect(tokens).toHaveLength(3);
    expect(tokens.at(-1)!.stop).toBe("context");
    expect(await codeOf(run(engine, rows([1, 2, 3, 4, 5, 6, 7, 8]), { maxNewTokens: 1 }))).toBe("VLM5008");
    // A batch shares the longest row's room: the engine pads every row to it.
    const batch = await run(engine, rows([1, 4, 3, 0, 10], [1]), { maxNewTokens: 10 });
    expect(batch.byRow.map((r) => r.length)).toEqual([3, 3]);
    expect(batch.tokens.filter((t) => t.stop).map((t) => t.stop)).toEqual(["context", "context"]);
  });

  it("uses the caller's stop tokens instead of the manifest's eos", async () => {
    const prompt = [1, 4];
    const want = greedyReference(prompt, 6);
    const { byRow, tokens } = await run(new FakeStepEngine(), rows(prompt), {
      maxNewTokens: 6,
      stopTokens: [want[2]!],
    });
    expect(byRow[0]).toEqual(want.slice(0, 3));
    expect(tokens.at(-1)!.stop).toBe("eos");
  });

  it("reports steps, tokens and timings", async () => {
    const { stats } = await run(new FakeStepEngine(), rows([1, 4], [4]), { maxNewTokens: 4 });
    expect(stats.rows).toBe(2);
    expect(stats.promptTokens).toBe(3);
    expect(stats.decodeSteps).toBe(3);
    expect(stats.newTokens).toBe(8);
    expect(stats.peakMemoryBytes).toBeGreaterThan(1e6);
    expect(stats.timeToFirstTokenMs).toBeGreaterThanOrEqual(stats.prefillMs);
  });

  it("rejects bad options with VLM5009 before running the engine", async () => {
    const engine = new FakeStepEngine();
    for (const bad of [
      { maxNewTokens: 0 },
      { maxNewTokens: 2, temperature: -1 },
      { maxNewTokens: 2, topK: 0 },
      { maxNewTokens: 2, topP: 1.5 },
      { maxNewTokens: 2, repetitionPenalty: 0 },
      { maxNewTokens: 2, seed: 0.5 },
    ])
      expect(await codeOf(run(engine, rows([1]), bad))).toBe("VLM5009");
    expect(engine.prefills).toHaveLength(0);
    expect(samplingProblem({ temperature: 0.7, topK: 5, topP: 0.9, repetitionPenalty: 1.2, seed: 3 })).toBeUndefined();
  });
});

describe("generate: logits processing with Hugging Face's semantics", () => {
  it("repetition penalty divides positive and multiplies negative logits of seen tokens, once each", () => {
    const logits = Float32Array.from([2, -2, 1, 4]);
    applyRepetitionPenalty(logits, [0, 1, 0, 0], 2);
    expect(Array.from(logits)).toEqual([1, -4, 1, 4]);
  });

  it("repetition penalty steers greedy search away from tokens in the prompt", async () => {
    // Logits fixed: token 5 best (3), token 6 next (2.5); 5 is in the prompt.
    const logits = Float32Array.from({ length: FAKE_VOCAB }, (_, v) => (v === 5 ? 3 : v === 6 ? 2.5 : -1));
    const engine = new FakeStepEngine(fakeManifest(), () => Float32Array.from(logits));
    expect((await run(engine, rows([1, 5]), { maxNewTokens: 1 })).byRow[0]).toEqual([5]);
    expect((await run(engine, rows([1, 5]), { maxNewTokens: 1, repetitionPenalty: 1.5 })).byRow[0]).toEqual([6]);
  });

  it("temperature, top-k and top-p shape the distribution as the warpers do", () => {
    const logits = Float32Array.from([0, Math.log(2), Math.log(4)]);
    const close = (got: Float64Array, want: number[]) =>
      expect(Array.from(got)).toEqual(want.map((w) => expect.closeTo(w, 6)));
    close(samplingDistribution(logits, { temperature: 1 }), [1 / 7, 2 / 7, 4 / 7]);
    close(samplingDistribution(logits, { temperature: 2 }), [
      1 / (3 + Math.SQRT2),
      Math.SQRT2 / (3 + Math.SQRT2),
      2 / (3 + Math.SQRT2),
    ]);
    close(samplingDistribution(logits, { topK: 2 }), [0, 1 / 3, 2 / 3]);
    // Ascending cumulative 1/7, 3/7, 1: top-p 0.6 drops what stays within 0.4 (only 1/7).
    close(samplingDistribution(logits, { topP: 0.6 }), [0, 1 / 3, 2 / 3]);
    close(samplingDistribution(logits, { topP: 0.5 }), [0, 0, 1]);
    expect(argmax(Float32Array.from([1, 3, 3]))).toBe(1);
  });

  it("seeded draws follow the distribution", () => {
    const probs = Float64Array.from([1 / 7, 2 / 7, 4 / 7]);
    const random = new RowRandom(42, 0);
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[drawToken(probs, random.next())]!++;
    for (const [i, c] of counts.entries()) expect(Math.abs(c / n - probs[i]!)).toBeLessThan(0.015);
  });

  it("sampling is reproducible by seed, differs between seeds, and a row samples the same in any batch", async () => {
    const flat = () => new Float32Array(FAKE_VOCAB);
    const sample = async (seed: number, prompts: PromptRow[]) =>
      (
        await run(new FakeStepEngine(fakeManifest({ tokens: { eos: [99] } }), flat), prompts, {
          maxNewTokens: 24,
          temperature: 1,
          seed,
        })
      ).byRow;
    const alone = await sample(7, rows([1, 2]));
    expect(await sample(7, rows([1, 2]))).toEqual(alone);
    expect((await sample(8, rows([1, 2])))[0]).not.toEqual(alone[0]);
    const batch = await sample(7, rows([1, 2], [3, 4, 5]));
    expect(batch[0]).toEqual(alone[0]);
    expect(batch[1]).not.toEqual(alone[0]);
  });

  it("top-k 1 and a tiny top-p sample exactly the greedy tokens, whatever the seed", async () => {
    const prompt = [1, 4];
    const want = greedyReference(prompt, 6);
    for (const seed of [1, 2, 3]) {
      expect((await run(new FakeStepEngine(), rows(prompt), { maxNewTokens: 6, topK: 1, seed })).byRow[0]).toEqual(
        want,
      );
      expect((await run(new FakeStepEngine(), rows(prompt), { maxNewTokens: 6, topP: 0.01, seed })).byRow[0]).toEqual(
        want,
      );
    }
  });
});
