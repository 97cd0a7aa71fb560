// A test double of StepEngine for the generation loop's tests: no ONNX, its logits a known
// function of each row's tokens so far, and a record of every call so tests can check what the
// loop fed. Not an engine: the package engine runs the graphs.

import type { PackageManifest } from "../../src/onnx/manifest.js";
import type { PrefillRequest, StepEngine } from "../../src/runtime/generate/step-engine.js";

export const FAKE_VOCAB = 16;
export const FAKE_EOS = 2;
export const FAKE_PAD = 0;
export const FAKE_IMAGE_TOKEN = 15;

/** A manifest as a package writer would give, trimmed to what the loop and prompts read. */
export function fakeManifest(overrides: Partial<PackageManifest> = {}): PackageManifest {
  const graph = { file: "x.onnx", inputs: {}, outputs: {} };
  return {
    version: 1,
    family: "llava",
    model: "fake",
    target: "ort-cpu",
    graphs: { vision: graph, embedding: graph, decoder: graph },
    vocabSize: FAKE_VOCAB,
    contextLength: 64,
    hiddenSize: 8,
    cache: {
      pastKey: "past.%d.key",
      pastValue: "past.%d.value",
      presentKey: "present.%d.key",
      presentValue: "present.%d.value",
      layers: 1,
      heads: 1,
      headDim: 8,
      dtype: "float32",
      lengthAxis: 2,
    },
    positionIds: false,
    sharedBuffer: false,
    image: { tokenId: FAKE_IMAGE_TOKEN, tokensPerImage: 3, placement: "image-tokens", pixelShape: [3, 2, 2] },
    tokens: { bos: 1, eos: [FAKE_EOS], pad: FAKE_PAD },
    files: [],
    ...overrides,
  };
}

/** The token the fake prefers after `tokens`: a rolling hash, so sequences wander and some reach eos. */
export function preferred(tokens: readonly number[]): number {
  return tokens.reduce((h, t) => (h * 31 + t + 7) % 1009, 0) % FAKE_VOCAB;
}

/** Logits falling by 1 per step away (cyclically) from the preferred token; all distinct. */
export function fakeLogits(tokens: readonly number[]): Float32Array {
  const p = preferred(tokens);
  return Float32Array.from({ length: FAKE_VOCAB }, (_, v) => -((v - p + FAKE_VOCAB) % FAKE_VOCAB));
}

export class FakeStepEngine implements StepEngine {
  readonly sequences: number[][] = [];
  readonly prefills: PrefillRequest[] = [];
  readonly steps: bigint[][] = [];
  released = false;

  constructor(
    readonly manifest: PackageManifest = fakeManifest(),
    private readonly logitsOf: (tokens: readonly number[]) => Float32Array = fakeLogits,
  ) {}

  async prefill(request: PrefillRequest): Promise<Float32Array[]> {
    this.prefills.push(request);
    this.sequences.splice(0, this.sequences.length, ...request.rows.map((r) => r.map(Number)));
    return this.sequences.map(this.logitsOf);
  }

  async step(tokens: readonly bigint[]): Promise<Float32Array[]> {
    if (tokens.length !== this.sequences.length)
      throw new Error(`step got ${tokens.length} tokens for ${this.sequences.length} rows`);
    this.steps.push([...tokens]);
    for (const [i, t] of tokens.entries()) this.sequences[i]!.push(Number(t));
    return this.sequences.map(this.logitsOf);
  }

  async release(): Promise<void> {
    this.released = true;
  }
}
