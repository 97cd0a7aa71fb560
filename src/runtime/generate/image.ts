// Image decoding and preprocessing for the vision graph, following the checkpoint's image
// processor config (CLIPImageProcessor, BlipImageProcessor, LlavaImageProcessor and the processors
// that share their fields): resize (shortest edge, or to a fixed size), center crop, rescale,
// normalize; LlavaNextImageProcessor's AnyRes crops (anyres.ts). Decoding and resizing are sharp's
// (libvips); the arithmetic after it is here.
// Resize filters: PIL's BICUBIC and libvips's cubic kernel are both Catmull-Rom with antialiasing
// on downscaling, but they round and sample differently, so pixels may differ by a few levels
// of 255 (docs/generate.md gives the measured difference).

import * as fs from "node:fs";
import sharp, { type KernelEnum, type Metadata } from "sharp";
import { diagnostic, DiagnosticError } from "../../diagnostics/diagnostic.js";
import { patchOutputSize, selectBestResolution, type Size } from "./anyres.js";
import { readPackageJson } from "./package-folder.js";

export interface ImageProcessing {
  /** "shortest-edge": the short side becomes `size` (aspect kept); "fixed": exactly height × width. */
  readonly resize?: { readonly mode: "shortest-edge"; readonly size: number } | FixedSize;
  readonly kernel: keyof KernelEnum;
  readonly crop?: { readonly height: number; readonly width: number };
  /** LLaVA's do_pad: pad to a square of the mean colour before resizing. */
  readonly padToSquare: boolean;
  /**
   * LLaVA-NeXT (image_grid_pinpoints): the whole image resized to `base`, then the image resized
   * into the best pinpoint, padded with black and cut into `patch`-sized crops; each crop then
   * goes through resize, crop, rescale and normalize.
   */
  readonly anyres?: { readonly pinpoints: readonly Size[]; readonly base: Size; readonly patch: number };
  readonly rescale: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

interface FixedSize {
  readonly mode: "fixed";
  readonly height: number;
  readonly width: number;
}

/** PIL resampling codes as Hugging Face configs store them → libvips kernels. */
const KERNELS: Readonly<Record<number, keyof KernelEnum>> = { 0: "nearest", 1: "lanczos3", 2: "linear", 3: "cubic" };

/** Default megapixel limit: far above any processor's input, far below a decompression bomb. */
export const DEFAULT_MAX_MEGAPIXELS = 50;

/**
 * Reads the image processor of a package: preprocessor_config.json (transformers 4), or the
 * `image_processor` entry of processor_config.json (transformers 5 writes only that).
 */
export function readImageProcessing(dir: string): ImageProcessing {
  const config =
    readPackageJson(dir, "preprocessor_config.json") ??
    (readPackageJson(dir, "processor_config.json")?.["image_processor"] as Record<string, unknown> | undefined);
  if (config === undefined)
    throw unsupported(`${dir} has neither preprocessor_config.json nor an image_processor in processor_config.json`);
  const size = config["size"] as Record<string, number> | number | undefined;
  const on = (key: string, fallback: boolean) =>
    typeof config[key] === "boolean" ? (config[key] as boolean) : fallback;
  let resize: ImageProcessing["resize"];
  if (on("do_resize", true)) {
    if (typeof size === "number") resize = { mode: "shortest-edge", size };
    else if (size?.["shortest_edge"] !== undefined) resize = { mode: "shortest-edge", size: size["shortest_edge"] };
    else if (size?.["height"] !== undefined && size["width"] !== undefined)
      resize = { mode: "fixed", height: size["height"], width: size["width"] };
    else throw unsupported(`image processor size ${JSON.stringify(size)} is not shortest_edge or height/width`);
  }
  const resample = typeof config["resample"] === "number" ? config["resample"] : 3;
  const kernel = KERNELS[resample];
  if (kernel === undefined) throw unsupported(`image processor resample ${resample} has no libvips kernel here`);
  const cropSize = config["crop_size"] as Record<string, number> | number | undefined;
  const crop = !on("do_center_crop", false)
    ? undefined
    : typeof cropSize === "number"
      ? { height: cropSize, width: cropSize }
      : { height: cropSize?.["height"] ?? 0, width: cropSize?.["width"] ?? 0 };
  const triple = (key: string, fallback: number): [number, number, number] => {
    const v = config[key];
    return Array.isArray(v) ? [v[0], v[1], v[2]] : typeof v === "number" ? [v, v, v] : [fallback, fallback, fallback];
  };
  const normalize = on("do_normalize", true);
  const anyres = anyResProcessing(config["image_grid_pinpoints"], size, crop);
  return {
    ...(resize ? { resize } : {}),
    kernel,
    ...(crop ? { crop } : {}),
    ...(anyres ? { anyres } : {}),
    // LLaVA-NeXT's do_pad pads the crop axis of a batch, which the package engine does not need.
    padToSquare: !anyres && on("do_pad", false),
    rescale: on("do_rescale", true)
      ? typeof config["rescale_factor"] === "number"
        ? config["rescale_factor"]
        : 1 / 255
      : 1,
    mean: normalize ? triple("image_mean", 0) : [0, 0, 0],
    std: normalize ? triple("image_std", 1) : [1, 1, 1],
  };
}

/** LlavaNextImageProcessor's sizes: the base image's [height, width] and the crops' side. */
function anyResProcessing(
  pinpoints: unknown,
  size: Record<string, number> | number | undefined,
  crop: { height: number } | undefined,
): ImageProcessing["anyres"] {
  if (pinpoints === undefined) return undefined;
  const pairs = Array.isArray(pinpoints) ? pinpoints : [];
  if (
    pairs.length === 0 ||
    !pairs.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v > 0))
  )
    throw unsupported(`image_grid_pinpoints ${JSON.stringify(pinpoints)} is not a list of [height, width] pairs`);
  const edge = typeof size === "number" ? size : size?.["shortest_edge"];
  const base: Size | undefined =
    typeof size === "object" && size["height"] && size["width"]
      ? [size["height"], size["width"]]
      : edge
        ? [edge, edge]
        : undefined;
  const patch = crop?.height || (typeof size === "object" ? size["height"] : undefined) || edge;
  if (!base || !patch) throw unsupported(`image processor size ${JSON.stringify(size)} gives no AnyRes crop size`);
  return { pinpoints: pairs as Size[], base, patch };
}

function unsupported(message: string): DiagnosticError {
  return new DiagnosticError(
    diagnostic("VLM5012", message, undefined, {
      hint: "copy the checkpoint's preprocessor_config.json (or processor_config.json) into the package",
    }),
  );
}

/** Hugging Face's shortest-edge size: the long side scaled and truncated, as `int()` does. */
function shortestEdgeSize(height: number, width: number, size: number): { height: number; width: number } {
  return width <= height
    ? { width: size, height: Math.trunc((size * height) / width) }
    : { height: size, width: Math.trunc((size * width) / height) };
}

export interface ImageOptions {
  /** Refuse images whose header claims more pixels than this many millions. */
  readonly maxMegapixels?: number;
}

export interface PreprocessedImage {
  /** [crops, 3, height, width] values (one crop unless AnyRes). */
  readonly pixels: Float32Array;
  readonly height: number;
  readonly width: number;
  readonly crops: number;
  /** The decoded image's [height, width] (transformers' image_sizes). */
  readonly size: Size;
}

interface Raw {
  readonly width: number;
  readonly height: number;
}

const rawInput = (info: Raw) => ({ raw: { width: info.width, height: info.height, channels: 3 as const } });

async function resized(data: Uint8Array, info: Raw, height: number, width: number, kernel: keyof KernelEnum) {
  return sharp(data, rawInput(info))
    .resize(width, height, { fit: "fill", kernel })
    .raw()
    .toBuffer({ resolveWithObject: true });
}

/**
 * LlavaNextImageProcessor's crops of one RGB image: the whole image resized to the base size, then
 * the image resized into the best pinpoint (aspect kept), padded with black to it (the odd pixel
 * after), and cut into patch × patch tiles in reading order.
 */
async function anyResCrops(
  data: Uint8Array,
  info: Raw,
  anyres: NonNullable<ImageProcessing["anyres"]>,
  kernel: keyof KernelEnum,
): Promise<{ data: Uint8Array; info: Raw }[]> {
  const size: Size = [info.height, info.width];
  const sized = async (h: number, w: number) =>
    h === info.height && w === info.width ? { data, info } : resized(data, info, h, w, kernel);
  const base = await sized(anyres.base[0], anyres.base[1]);
  const best = selectBestResolution(size, anyres.pinpoints);
  const [h, w] = patchOutputSize(size, best);
  const inner = await sized(h, w);
  const top = Math.floor((best[0] - h) / 2);
  const left = Math.floor((best[1] - w) / 2);
  const padded = new Uint8Array(best[0] * best[1] * 3);
  for (let y = 0; y < h; y++)
    padded.set(inner.data.subarray(y * w * 3, (y + 1) * w * 3), ((y + top) * best[1] + left) * 3);
  const p = anyres.patch;
  const crops = [{ data: base.data as Uint8Array, info: base.info as Raw }];
  for (let y0 = 0; y0 < best[0]; y0 += p)
    for (let x0 = 0; x0 < best[1]; x0 += p) {
      const tile = new Uint8Array(p * p * 3);
      for (let y = 0; y < p; y++)
        tile.set(padded.subarray(((y0 + y) * best[1] + x0) * 3, ((y0 + y) * best[1] + x0 + p) * 3), y * p * 3);
      crops.push({ data: tile, info: { width: p, height: p } });
    }
  return crops;
}

/**
 * Decodes an image file and preprocesses it to [crops, 3, height, width] float values. The header is
 * read first: an image claiming more than `maxMegapixels` is refused before decoding.
 */
export async function preprocessImage(
  file: string,
  processing: ImageProcessing,
  options: ImageOptions = {},
): Promise<PreprocessedImage> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw badImage(file, `cannot read it: ${e instanceof Error ? e.message : String(e)}`);
  }
  const limit = (options.maxMegapixels ?? DEFAULT_MAX_MEGAPIXELS) * 1e6;
  let header: Metadata;
  try {
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw badImage(file, `it is not an image sharp can read (${e instanceof Error ? e.message : String(e)})`);
  }
  const claimed = (header.width ?? 0) * (header.height ?? 0);
  if (claimed > limit)
    throw new DiagnosticError(
      diagnostic(
        "VLM5006",
        `${file} claims ${header.width} × ${header.height} pixels (${(claimed / 1e6).toFixed(1)} MP), more than the limit of ${limit / 1e6} MP`,
        undefined,
        { hint: "shrink the image first, or raise the limit with --max-megapixels if you trust the file" },
      ),
    );
  try {
    // Decoded to RGB, EXIF orientation applied as transformers' load_image does; every further
    // step runs on the decoded pixels so that each size follows Hugging Face's arithmetic.
    const decoded = await sharp(bytes, { failOn: "truncated", limitInputPixels: limit, autoOrient: true })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    let { data, info } = decoded;
    if (processing.padToSquare && info.width !== info.height) {
      const side = Math.max(info.width, info.height);
      const background = processing.mean.map((m) => Math.trunc(m * 255));
      ({ data, info } = await sharp(data, rawInput(info))
        .extend({
          top: Math.floor((side - info.height) / 2),
          bottom: side - info.height - Math.floor((side - info.height) / 2),
          left: Math.floor((side - info.width) / 2),
          right: side - info.width - Math.floor((side - info.width) / 2),
          background: { r: background[0]!, g: background[1]!, b: background[2]! },
        })
        .raw()
        .toBuffer({ resolveWithObject: true }));
    }
    // Resize (shortest edge or fixed), then center crop, rescale and normalize: every image, or
    // every AnyRes crop.
    const finish = async (data: Uint8Array, info: Raw) => {
      if (processing.resize) {
        const target =
          processing.resize.mode === "fixed"
            ? processing.resize
            : shortestEdgeSize(info.height, info.width, processing.resize.size);
        if (target.width !== info.width || target.height !== info.height)
          ({ data, info } = await resized(data, info, target.height, target.width, processing.kernel));
      }
      return normalize(data, info.height, info.width, processing);
    };
    if (!processing.anyres) return { ...(await finish(data, info)), crops: 1, size: [info.height, info.width] };
    const crops = await anyResCrops(data, info, processing.anyres, processing.kernel);
    const done = await Promise.all(crops.map((c) => finish(c.data, c.info)));
    const pixels = new Float32Array(done.reduce((n, c) => n + c.pixels.length, 0));
    done.forEach((c, i) => pixels.set(c.pixels, i * c.pixels.length));
    return {
      pixels,
      height: done[0]!.height,
      width: done[0]!.width,
      crops: done.length,
      size: [info.height, info.width],
    };
  } catch (e) {
    if (e instanceof DiagnosticError) throw e;
    throw badImage(file, `it is corrupt or truncated (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Center crop (zero padding where the crop is larger, as Hugging Face's), rescale, normalize, HWC → CHW. */
function normalize(
  data: Uint8Array,
  height: number,
  width: number,
  p: ImageProcessing,
): { pixels: Float32Array; height: number; width: number } {
  const outH = p.crop?.height ?? height;
  const outW = p.crop?.width ?? width;
  const top = Math.floor((height - outH) / 2);
  const left = Math.floor((width - outW) / 2);
  const pixels = new Float32Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    const mean = p.mean[c]!;
    const std = p.std[c]!;
    for (let y = 0; y < outH; y++) {
      const sy = y + top;
      for (let x = 0; x < outW; x++) {
        const sx = x + left;
        const inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        const v = inside ? data[(sy * width + sx) * 3 + c]! : 0;
        pixels[(c * outH + y) * outW + x] = (v * p.rescale - mean) / std;
      }
    }
  }
  return { pixels, height: outH, width: outW };
}

function badImage(file: string, why: string): DiagnosticError {
  return new DiagnosticError(
    diagnostic("VLM5005", `${file}: ${why}`, undefined, {
      hint: "pass a PNG, JPEG, WebP, GIF, TIFF or AVIF file that opens in an image viewer",
    }),
  );
}
