// The package manifest (`vlmc-package.json`): the contract between the compiler, which writes a
// generation package, and the runtime, which runs one without the spec. genai_config.json beside it
// follows ONNX Runtime GenAI's schema for other tools; this file says what only vlmc knows (graph
// roles, cache layout, image-token facts, cross-attention caches) in one versioned place.

/** Bumped when a field changes meaning; readers refuse versions they do not know. */
export const MANIFEST_VERSION = 1;
export const MANIFEST_FILE = "vlmc-package.json";

/** The generative families a package can hold; each implies how the graphs are stepped. */
export type PackageFamily = "llava" | "llava-next" | "blip2" | "flamingo";

/**
 * One ONNX graph of the package with the names of its inputs and outputs by role. Roles:
 * vision: in `pixel_values` (and `image_index` with AnyRes), out `image_features`. embedding: in `input_ids`, `image_features`
 * (absent for Flamingo), out `inputs_embeds`. decoder: in `inputs_embeds`, `attention_mask`,
 * `position_ids` (when `positionIds`), and for Flamingo `cross_attention_states`
 * ([batch, media tokens, width], zero media tokens after the prompt step) and `media_index`
 * ([batch, sequence], int64: 1-based index of the latest image at or before each token, 0 = none);
 * out `logits`. Cache tensors are named by `cache`/`crossCache`, not listed here.
 */
export interface PackageGraph {
  /** File name inside the package folder (its external data, if any, sits beside it). */
  readonly file: string;
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: Readonly<Record<string, string>>;
}

/** A key/value cache carried from step to step: `past` names in, `present` names out. */
export interface CacheSpec {
  /** printf-style names with one `%d` for the layer, e.g. `past_key_values.%d.key`. */
  readonly pastKey: string;
  readonly pastValue: string;
  readonly presentKey: string;
  readonly presentValue: string;
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
  readonly dtype: "float32" | "float16" | "bfloat16";
  /** Axis 2 of past/present grows by the new tokens (self-attention) or by new media tokens. */
  readonly lengthAxis: 2;
}

export interface PackageManifest {
  readonly version: typeof MANIFEST_VERSION;
  readonly family: PackageFamily;
  /** The model name of the spec it came from, for messages only. */
  readonly model: string;
  readonly target: "portable" | "ort-cpu" | "ort-cuda";
  readonly graphs: {
    /** pixel_values → image_features (LM embedding space; Flamingo: resampled latents). */
    readonly vision: PackageGraph;
    /** input_ids (+ image_features, N = 0 on decode steps) → inputs_embeds. */
    readonly embedding: PackageGraph;
    /** inputs_embeds, attention_mask, [position_ids], past → logits, present. */
    readonly decoder: PackageGraph;
  };
  readonly vocabSize: number;
  /** Prompt plus generated tokens never exceed this (the LM's context). */
  readonly contextLength: number;
  /**
   * Optional (added after version 1 shipped; readers must not require it): the bound the compiler
   * proved from the spec's `package { prompt, new_tokens }`, prompt (plus a BLIP-2 image prefix)
   * plus new tokens, at most contextLength. A generation loop stops there.
   */
  readonly maxLength?: number;
  readonly hiddenSize: number;
  /** Self-attention cache of the decoder. */
  readonly cache: CacheSpec;
  /** Flamingo: the gated cross-attention keys/values, computed on the prompt step and carried. */
  readonly crossCache?: CacheSpec;
  /** The decoder wants position_ids (learned or rotary positions outside the attention op). */
  readonly positionIds: boolean;
  /** past and present may share one buffer of max length (GroupQueryAttention). */
  readonly sharedBuffer: boolean;
  readonly image: {
    /** The token id marking image positions in input_ids (LLaVA `<image>`, Flamingo `<image>`). */
    readonly tokenId: number;
    /** Feature rows one image yields (576 for LLaVA-1.5, 32 for BLIP-2, latents for Flamingo). */
    readonly tokensPerImage: number;
    /** BLIP-2 prepends image features instead of placing them at tokens the prompt holds. */
    readonly placement: "image-tokens" | "prefix" | "cross-attention";
    /** Input pixel size the vision graph expects: [channels, height, width]. */
    readonly pixelShape: readonly [number, number, number];
    /**
     * Optional (added after version 1 shipped): the width of one feature row, when it is not
     * hiddenSize (Flamingo's latents are in the vision width, which its cross-attention reads).
     */
    readonly featureWidth?: number;
    /**
     * Optional (added after version 1 shipped): LLaVA-NeXT's AnyRes. Then `tokensPerImage` is one
     * crop's feature rows (patchesPerSide²), the vision graph takes every crop of every image as
     * `pixel_values` [crops, channels, height, width] and the rows to return as `image_index` [rows]
     * (int64, into its crops' features with the learned `image_newline` as the row after the last),
     * and an image gives a variable number of rows (src/runtime/generate/anyres.ts).
     */
    readonly anyres?: AnyResLayout;
  };
  readonly tokens: {
    readonly bos?: number;
    readonly eos: readonly number[];
    readonly pad?: number;
  };
  /** Files copied from the checkpoint beside the graphs (tokenizer, processor, chat template). */
  readonly files: readonly string[];
}

/** What the runtime needs to crop an image and pack its features as LlavaNextForConditionalGeneration does. */
export interface AnyResLayout {
  /** The checkpoint's image_grid_pinpoints: [height, width] pixel resolutions, multiples of cropSize. */
  readonly pinpoints: readonly (readonly [number, number])[];
  /** The vision graph's square crop side in pixels. */
  readonly cropSize: number;
  /** Features per crop side (cropSize / patch size): a crop gives patchesPerSide² rows. */
  readonly patchesPerSide: number;
}

/** Checks a parsed manifest's shape; returns the first problem found, or undefined. */
export function manifestProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "the manifest is not a JSON object";
  const m = value as Partial<PackageManifest>;
  if (m.version !== MANIFEST_VERSION) return `manifest version ${String(m.version)} is not ${MANIFEST_VERSION}`;
  if (!m.family || !["llava", "llava-next", "blip2", "flamingo"].includes(m.family))
    return `unknown family ${String(m.family)}`;
  for (const role of ["vision", "embedding", "decoder"] as const) {
    const g = m.graphs?.[role];
    if (!g || typeof g.file !== "string" || typeof g.inputs !== "object" || typeof g.outputs !== "object")
      return `graphs.${role} lacks file, inputs or outputs`;
  }
  for (const key of ["vocabSize", "contextLength", "hiddenSize"] as const)
    if (!Number.isInteger(m[key])) return `${key} is not an integer`;
  if (!m.cache || !Number.isInteger(m.cache.layers)) return "cache is missing or has no layer count";
  if (!m.image || !Number.isInteger(m.image.tokenId)) return "image.tokenId is missing";
  const anyres = m.image.anyres;
  if (
    anyres !== undefined &&
    !(
      Number.isInteger(anyres.cropSize) &&
      Number.isInteger(anyres.patchesPerSide) &&
      Array.isArray(anyres.pinpoints) &&
      anyres.pinpoints.length > 0 &&
      anyres.pinpoints.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v > 0))
    )
  )
    return "image.anyres needs pinpoints ([height, width] pairs), cropSize and patchesPerSide";
  if (!m.tokens || !Array.isArray(m.tokens.eos) || m.tokens.eos.length === 0) return "tokens.eos is empty";
  return undefined;
}

/** `past_key_values.%d.key` → `past_key_values.3.key`. */
export function layerName(pattern: string, layer: number): string {
  return pattern.replace("%d", String(layer));
}

/** ONNX metadata key of every vlmc model: the upper bounds of its input symbols (`{"T": 200}` for `T <= 200`), JSON. */
export const BOUNDS_METADATA = "vlmc.bounds";

/**
 * Scope of the nodes that check an input's bounded sizes at run time (`/check/input ids axis 1: T
 * must be at most 200/Gather`, the name onnxruntime's error shows); the graph reads the input
 * through `${GUARD_SCOPE} NAME/Add` (`Or` for bool), so a reader of the input looks through it.
 */
export const GUARD_SCOPE = "/check/input";
