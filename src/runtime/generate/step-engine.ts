// The seam between the generation loop (sampling, stopping, streaming, batching of prompts) and
// the engine that runs a package's graphs with a key/value cache. The loop never sees ONNX; the
// engine never sees text. A package engine implements this over the graphs a manifest names.

import type { PackageManifest } from "../../onnx/manifest.js";
import type { Size } from "./anyres.js";

/** Images of one prompt row, already preprocessed to the vision graph's pixel layout. */
export interface RowImages {
  /** [images, channels, height, width] values, row-major (AnyRes: every crop of each image in turn, see `sizes`). */
  readonly pixels: Float32Array;
  readonly count: number;
  /**
   * AnyRes (the manifest's image.anyres): each image's [height, width] as decoded, which decides its
   * crops (anyres.ts); `pixels` then holds each image's crops in turn, [crops, channels, height, width].
   */
  readonly sizes?: readonly Size[];
}

export interface PrefillRequest {
  /** Token ids per row, unpadded; rows may differ in length (the engine pads and masks). */
  readonly rows: readonly (readonly bigint[])[];
  /** Per row, its images in prompt order (empty for text-only rows). */
  readonly images: readonly RowImages[];
}

export interface StepEngine {
  readonly manifest: PackageManifest;
  /** Runs vision, embedding and the decoder over the prompts; returns the last position's logits per row. */
  prefill(request: PrefillRequest): Promise<Float32Array[]>;
  /** Feeds one new token per row (the cache grows by one); returns the next logits per row. */
  step(tokens: readonly bigint[]): Promise<Float32Array[]>;
  /** Releases sessions and cache buffers. */
  release(): Promise<void>;
}
