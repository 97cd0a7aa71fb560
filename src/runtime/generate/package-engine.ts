// `PackageEngine`: a StepEngine over a package folder, opened by its manifest alone (no spec, no
// compiler). Prefill runs the vision graph over every row's images, the embedding graph over the
// padded ids with all image features (row-major across the batch), and the decoder with an empty
// cache; each step feeds one token per row with N = 0 image features and the carried cache.
//
// With a GroupQueryAttention decoder (manifest `sharedBuffer`) the self-attention cache is one
// buffer of the full length per tensor, past and present at once, written in place as ONNX Runtime
// GenAI runs it; otherwise each step's present becomes the next past.
//
// Padding: rows are padded on the right and the attention mask keeps a 0 for each pad column for
// good, so a shorter row has a hole between its prompt and its generated tokens. Positions count
// the 1s before a column. The plain decoder masks the hole; GroupQueryAttention packs each row's
// keys from 0 and places the next token at ReduceSum(mask), so both read the same tokens at the
// same positions (src/codegen/lower-cache.ts).

import * as fs from "node:fs";
import * as path from "node:path";
import type * as Ort from "onnxruntime-node";
import {
  layerName,
  manifestProblem,
  MANIFEST_FILE,
  type AnyResLayout,
  type CacheSpec,
  type PackageManifest,
} from "../../onnx/manifest.js";
import { createSession, float32s, onnxruntime, type Tensor } from "../onnxruntime.js";
import { anyResPlan, featureIndex } from "./anyres.js";
import type { PrefillRequest, RowImages, StepEngine } from "./step-engine.js";

/** Inputs beside the ids, by role: image_features for the embedding graph, Flamingo's media for the decoder. */
type Extra = Partial<Record<"image_features" | "cross_attention_states" | "media_index", Tensor>>;

/** A package that cannot be opened or a request it cannot serve; the message says which and why. */
export class PackageError extends Error {}

export interface OpenOptions {
  /** onnxruntime session options for every graph (execution providers, threads). */
  readonly session?: Ort.InferenceSession.SessionOptions;
}

/** Reads and checks a package folder's manifest. */
export function readManifest(dir: string): PackageManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(file)) throw new PackageError(`${dir} is not a package: it has no ${MANIFEST_FILE}`);
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new PackageError(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const problem = manifestProblem(value);
  if (problem) throw new PackageError(`${file}: ${problem}`);
  const manifest = value as PackageManifest;
  // onnxruntime-node's tensors have no bfloat16 type: such a cache could be neither fed nor read.
  for (const c of [manifest.cache, manifest.crossCache])
    if (c && c.dtype !== "float32" && c.dtype !== "float16")
      throw new PackageError(`${file}: a ${c.dtype} cache cannot be carried by onnxruntime-node (float32 or float16)`);
  return manifest;
}

export async function openPackage(dir: string, options: OpenOptions = {}): Promise<PackageEngine> {
  const manifest = readManifest(dir);
  const ort = await onnxruntime();
  const open = (file: string, tuned: Ort.InferenceSession.SessionOptions) =>
    createSession(path.join(dir, file), { ...tuned, ...options.session });
  const [vision, embedding, decoder] = await Promise.all([
    open(manifest.graphs.vision.file, {}),
    // The embedding graph looks rows up: a thread pool buys it nothing, and one more pool's
    // spinning threads would take cores from the decoder and the loop at every step.
    open(manifest.graphs.embedding.file, { intraOpNumThreads: 1 }),
    // The decoder keeps onnxruntime's spinning threads: stopping them at the end of each run
    // (session.force_spinning_stop) cost fp32 decode 8% on a quiet machine (docs/generate.md).
    open(manifest.graphs.decoder.file, {}),
  ]);
  return new PackageEngine(manifest, ort, vision, embedding, decoder);
}

export class PackageEngine implements StepEngine {
  /** Per row: 1 for a real token, 0 for a pad column, one entry per cached column. */
  private mask: number[][] = [];
  private cache: Record<string, Tensor> = {};
  /** Flamingo: <image> tokens seen so far per row. */
  private seen: number[] = [];

  constructor(
    readonly manifest: PackageManifest,
    private readonly ort: typeof Ort,
    private readonly vision: Ort.InferenceSession,
    private readonly embedding: Ort.InferenceSession,
    private readonly decoder: Ort.InferenceSession,
  ) {}

  async prefill(request: PrefillRequest): Promise<Float32Array[]> {
    const m = this.manifest;
    const { rows, images } = request;
    if (rows.length === 0) throw new PackageError("prefill needs at least one row");
    if (images.length !== rows.length) throw new PackageError(`${rows.length} rows but images for ${images.length}`);
    const image = BigInt(m.image.tokenId);
    // Rows hold their image tokens wherever the placement puts them (BLIP-2: in front of BOS, as
    // transformers' Blip2Processor writes them); the embedding graph fills each with a feature row.
    const ids = rows.map((row) => [...row]);
    // Flamingo marks each image with one <image> token; the others hold one token per feature row.
    const cross = m.image.placement === "cross-attention";
    ids.forEach((row, r) => {
      const slots = row.filter((t) => t === image).length;
      const want = cross ? images[r]!.count : this.imageRows(images[r]!, r);
      if (slots !== want)
        throw new PackageError(
          `row ${r} holds ${slots} image tokens (id ${m.image.tokenId}), but its ${images[r]!.count} image(s) need ${want}`,
        );
      if (row.length === 0) throw new PackageError(`row ${r} is empty`);
    });
    const longest = Math.max(...ids.map((r) => r.length));
    if (longest > (m.maxLength ?? m.contextLength))
      throw new PackageError(`a prompt of ${longest} tokens exceeds the package's ${m.maxLength ?? m.contextLength}`);
    const pad = BigInt(m.tokens.pad ?? m.tokens.eos[0]!);
    const padded = ids.map((row) => [...row, ...Array<bigint>(longest - row.length).fill(pad)]);
    this.mask = ids.map((row) => Array.from({ length: longest }, (_, j) => (j < row.length ? 1 : 0)));
    this.cache = this.emptyCache(rows.length);
    const features = await this.imageFeatures(images);
    const extra = cross ? this.media(padded, features, images) : { image_features: features };
    const logits = await this.run(padded, longest, extra);
    return ids.map((row, r) => logits[r]![row.length - 1]!);
  }

  /**
   * Flamingo's prompt-step inputs: each row's latents side by side ([B, most images · latents,
   * width], zeros after a row's own images) and media_index, the running count of <image> tokens.
   */
  private media(ids: readonly (readonly bigint[])[], features: Tensor, images: PrefillRequest["images"]): Extra {
    const m = this.manifest;
    const latents = m.image.tokensPerImage;
    const width = features.dims[1]!;
    const most = Math.max(...images.map((i) => i.count));
    const states = new Float32Array(ids.length * most * latents * width);
    const data = float32s(features);
    let from = 0;
    images.forEach((row, r) => {
      const size = row.count * latents * width;
      states.set(data.subarray(from, from + size), r * most * latents * width);
      from += size;
    });
    this.seen = ids.map(() => 0);
    return {
      cross_attention_states: new this.ort.Tensor("float32", states, [ids.length, most * latents, width]),
      media_index: this.mediaIndex(ids),
    };
  }

  /** 1-based index of the latest image at or before each token (0 = none); carries on across steps. */
  private mediaIndex(ids: readonly (readonly bigint[])[]): Tensor {
    const image = BigInt(this.manifest.image.tokenId);
    const index = ids.flatMap((row, r) =>
      row.map((t) => {
        if (t === image) this.seen[r]! += 1;
        return BigInt(this.seen[r]!);
      }),
    );
    return new this.ort.Tensor("int64", BigInt64Array.from(index), [ids.length, ids[0]!.length]);
  }

  async step(tokens: readonly bigint[]): Promise<Float32Array[]> {
    if (this.mask.length === 0) throw new PackageError("step before prefill");
    if (tokens.length !== this.mask.length)
      throw new PackageError(`step got ${tokens.length} tokens for ${this.mask.length} rows`);
    const limit = this.manifest.maxLength ?? this.manifest.contextLength;
    if (this.mask[0]!.length + 1 > limit) throw new PackageError(`the cache is full (${limit} tokens)`);
    for (const row of this.mask) row.push(1);
    const ids = tokens.map((t) => [t]);
    const extra: Extra =
      this.manifest.image.placement === "cross-attention"
        ? {
            cross_attention_states: new this.ort.Tensor("float32", new Float32Array(0), [ids.length, 0, this.width]),
            media_index: this.mediaIndex(ids),
          }
        : { image_features: this.features(new Float32Array(0), 0) };
    const logits = await this.run(ids, 1, extra);
    return logits.map((row) => row[0]!);
  }

  async release(): Promise<void> {
    this.cache = {};
    this.mask = [];
    await Promise.all([this.vision.release(), this.embedding.release(), this.decoder.release()]);
  }

  /** Width of a feature row: the LM's hidden size, or Flamingo's media width. */
  private get width(): number {
    return this.manifest.image.featureWidth ?? this.manifest.hiddenSize;
  }

  private features(data: Float32Array, rows: number): Tensor {
    return new this.ort.Tensor("float32", data, [rows, this.width]);
  }

  /** Feature rows a row's images give (AnyRes: by each image's size). */
  private imageRows(images: RowImages, r: number): number {
    const anyres = this.manifest.image.anyres;
    if (!anyres) return images.count * this.manifest.image.tokensPerImage;
    if (images.sizes?.length !== images.count)
      throw new PackageError(`row ${r}: an AnyRes package needs the size of each of its ${images.count} image(s)`);
    return images.sizes.reduce((n, s) => n + anyResPlan(s, anyres).tokens, 0);
  }

  /** Every row's images through the vision graph in one batch; rows of features in row, then image order. */
  private async imageFeatures(images: PrefillRequest["images"]): Promise<Tensor> {
    const count = images.reduce((n, i) => n + i.count, 0);
    if (count === 0) return this.features(new Float32Array(0), 0);
    if (this.manifest.image.anyres) return this.anyResFeatures(images, this.manifest.image.anyres);
    const [c, h, w] = this.manifest.image.pixelShape;
    const perImage = c * h * w;
    const pixels = new Float32Array(count * perImage);
    let at = 0;
    images.forEach((row, r) => {
      if (row.pixels.length !== row.count * perImage)
        throw new PackageError(
          `row ${r}: ${row.pixels.length} pixel values for ${row.count} image(s) of ${c}×${h}×${w}`,
        );
      pixels.set(row.pixels, at);
      at += row.pixels.length;
    });
    const dims = [count, c, h, w];
    const g = this.manifest.graphs.vision;
    const out = await this.vision.run({
      [g.inputs["pixel_values"]!]: new this.ort.Tensor("float32", pixels, dims),
    });
    const features = out[g.outputs["image_features"]!]!;
    return this.features(float32s(features), count * this.manifest.image.tokensPerImage);
  }

  /**
   * AnyRes: every crop of every image in one [crops, C, H, W] batch, and the rows the graph returns
   * (each image's base crop, unpadded grid and newlines) as image_index.
   */
  private async anyResFeatures(images: PrefillRequest["images"], anyres: AnyResLayout): Promise<Tensor> {
    const sizes = images.flatMap((row) => row.sizes ?? []);
    const { index, crops } = featureIndex(sizes, anyres);
    const [c, h, w] = this.manifest.image.pixelShape;
    const given = images.reduce((n, row) => n + row.pixels.length, 0);
    if (given !== crops * c * h * w)
      throw new PackageError(
        `${given} pixel values for images whose AnyRes crops need ${crops} × ${c}×${h}×${w} = ${crops * c * h * w}`,
      );
    const pixels = new Float32Array(given);
    let at = 0;
    for (const row of images) {
      pixels.set(row.pixels, at);
      at += row.pixels.length;
    }
    const g = this.manifest.graphs.vision;
    const out = await this.vision.run({
      [g.inputs["pixel_values"]!]: new this.ort.Tensor("float32", pixels, [crops, c, h, w]),
      [g.inputs["image_index"]!]: new this.ort.Tensor("int64", BigInt64Array.from(index, BigInt), [index.length]),
    });
    return this.features(float32s(out[g.outputs["image_features"]!]!), index.length);
  }

  /**
   * The caches (self-attention, and Flamingo's cross-attention) by present name, each zero tokens
   * long; a shared-buffer decoder's self-attention cache is one buffer of the package's full length
   * per tensor instead, fed as past and bound as present (GroupQueryAttention writes in place).
   */
  private emptyCache(batch: number): Record<string, Tensor> {
    const m = this.manifest;
    const cache: Record<string, Tensor> = {};
    for (const c of this.caches()) {
      const length = this.shares(c) ? (m.maxLength ?? m.contextLength) : 0;
      for (let i = 0; i < c.layers; i++)
        for (const name of [c.presentKey, c.presentValue]) {
          const dims = [batch, c.heads, length, c.headDim];
          const size = batch * c.heads * length * c.headDim;
          // fp16 packages store the cache as float16, which onnxruntime-node holds in a Uint16Array (all bits 0 = +0).
          cache[layerName(name, i)] =
            c.dtype === "float16"
              ? new this.ort.Tensor("float16", new Uint16Array(size), dims)
              : new this.ort.Tensor("float32", new Float32Array(size), dims);
        }
    }
    return cache;
  }

  /** Whether `c` lives in one buffer that past and present share (the self-attention cache of a GroupQueryAttention decoder). */
  private shares(c: CacheSpec): boolean {
    return this.manifest.sharedBuffer && c === this.manifest.cache;
  }

  private caches(): CacheSpec[] {
    const m = this.manifest;
    return m.crossCache ? [m.cache, m.crossCache] : [m.cache];
  }

  /** Embeds `ids` (the last `news` columns of the mask), runs the decoder, keeps the cache; logits per row and column. */
  private async run(ids: readonly (readonly bigint[])[], news: number, extra: Extra): Promise<Float32Array[][]> {
    const m = this.manifest;
    const batch = ids.length;
    const total = this.mask[0]!.length;
    const flat = BigInt64Array.from(ids.flat());
    const e = m.graphs.embedding;
    const embedded = await this.embedding.run({
      [e.inputs["input_ids"]!]: new this.ort.Tensor("int64", flat, [batch, news]),
      ...(extra.image_features ? { [e.inputs["image_features"]!]: extra.image_features } : {}),
    });
    const d = m.graphs.decoder;
    const feeds: Record<string, Tensor> = {
      [d.inputs["inputs_embeds"]!]: embedded[e.outputs["inputs_embeds"]!]!,
      [d.inputs["attention_mask"]!]: new this.ort.Tensor("int64", BigInt64Array.from(this.mask.flat(), BigInt), [
        batch,
        total,
      ]),
    };
    if (m.positionIds) {
      // Position of a column = the real tokens before it (pad columns repeat their neighbour's).
      const positions = this.mask.flatMap((row) => {
        let seen = 0;
        const all = row.map((v) => {
          const p = Math.max(seen + v - 1, 0);
          seen += v;
          return BigInt(p);
        });
        return all.slice(total - news);
      });
      feeds[d.inputs["position_ids"]!] = new this.ort.Tensor("int64", BigInt64Array.from(positions), [batch, news]);
    }
    for (const role of ["cross_attention_states", "media_index"] as const)
      if (extra[role]) feeds[d.inputs[role]!] = extra[role];
    for (const c of this.caches())
      for (let i = 0; i < c.layers; i++) {
        feeds[layerName(c.pastKey, i)] = this.cache[layerName(c.presentKey, i)]!;
        feeds[layerName(c.pastValue, i)] = this.cache[layerName(c.presentValue, i)]!;
      }
    // Shared buffers are bound as their own present; every other output is allocated by the session.
    const fetches: Record<string, Tensor | null> = {};
    for (const name of this.decoder.outputNames) fetches[name] = null;
    for (const c of this.caches().filter((c) => this.shares(c)))
      for (let i = 0; i < c.layers; i++)
        for (const name of [c.presentKey, c.presentValue])
          fetches[layerName(name, i)] = this.cache[layerName(name, i)]!;
    const out = await this.decoder.run(feeds, fetches);
    for (const c of this.caches().filter((c) => !this.shares(c)))
      for (let i = 0; i < c.layers; i++)
        for (const name of [c.presentKey, c.presentValue]) this.cache[layerName(name, i)] = out[layerName(name, i)]!;
    // float16 logits (a decoder that returns them so) are widened for sampling.
    const logits = float32s(out[d.outputs["logits"]!]!);
    const vocab = m.vocabSize;
    return Array.from({ length: batch }, (_, r) =>
      Array.from({ length: news }, (_, j) => logits.slice((r * news + j) * vocab, (r * news + j + 1) * vocab)),
    );
  }
}
