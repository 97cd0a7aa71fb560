// LLaVA-NeXT's AnyRes arithmetic, as transformers 5.18 computes it (image_processing_utils'
// select_best_resolution and get_patch_output_size, modeling_llava_next's unpad_image and
// pack_image_features, LlavaNextProcessor._get_number_of_features): which grid of crops an image
// gets, where its resized picture sits inside the padded grid, which feature rows survive the
// unpadding, and so how many `<image>` tokens the image takes. The processor (image.ts), the prompt
// (prompt.ts) and the package engine (the feature index the vision graph gathers by) all read this
// one module, so the token count the prompt expands to is the count the graph produces.

import type { AnyResLayout } from "../../onnx/manifest.js";

/** [height, width] in pixels. */
export type Size = readonly [number, number];

/**
 * The pinpoint that keeps most of the image's pixels (its effective resolution after a
 * downscale that fits), ties broken by the least wasted area; the first wins a full tie.
 */
export function selectBestResolution(size: Size, pinpoints: readonly Size[]): Size {
  const [height, width] = size;
  let best: Size | undefined;
  let maxEffective = 0;
  let minWasted = Number.POSITIVE_INFINITY;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const effective = Math.min(Math.trunc(width * scale) * Math.trunc(height * scale), width * height);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  if (best === undefined) throw new Error("AnyRes needs at least one pinpoint of positive size");
  return best;
}

/** The image's size resized into `target` with its aspect ratio kept (the long side fills it). */
export function patchOutputSize(size: Size, target: Size): Size {
  const [height, width] = size;
  const [th, tw] = target;
  const scaleW = tw / width;
  const scaleH = th / height;
  return scaleW < scaleH
    ? [Math.min(Math.ceil(height * scaleW), th), tw]
    : [th, Math.min(Math.ceil(width * scaleH), tw)];
}

/** Python's `int(round(x, 7))`: rounded at the 7th decimal, then truncated. */
const truncRounded = (x: number): number => Math.trunc(Number(x.toFixed(7)));

/** A window of the crop grid's feature rows and columns that unpadding keeps. */
export interface Window {
  readonly top: number;
  readonly rows: number;
  readonly left: number;
  readonly cols: number;
}

/**
 * unpad_image on a [height, width] grid of features for an image of `size`: the padding the
 * processor added around the resized image, measured in features, cut off equally on both sides.
 */
export function unpadWindow(size: Size, height: number, width: number): Window {
  const [oh, ow] = size;
  if (ow / oh > width / height) {
    const newHeight = truncRounded(oh * (width / ow));
    const pad = Math.floor((height - newHeight) / 2);
    return { top: pad, rows: height - 2 * pad, left: 0, cols: width };
  }
  const newWidth = truncRounded(ow * (height / oh));
  const pad = Math.floor((width - newWidth) / 2);
  return { top: 0, rows: height, left: pad, cols: width - 2 * pad };
}

/** Everything AnyRes decides for one image: its grid of crops and the feature window kept. */
export interface AnyResPlan {
  /** The chosen pinpoint [height, width] in pixels. */
  readonly best: Size;
  /** Crops down and across (the base crop not counted). */
  readonly grid: Size;
  /** 1 (the whole image resized) + grid crops. */
  readonly crops: number;
  readonly window: Window;
  /** Feature rows the image gives: base crop + the window's rows each ended by `image_newline`. */
  readonly tokens: number;
}

export function anyResPlan(size: Size, layout: AnyResLayout): AnyResPlan {
  const best = selectBestResolution(size, layout.pinpoints);
  const grid: Size = [Math.floor(best[0] / layout.cropSize), Math.floor(best[1] / layout.cropSize)];
  const side = layout.patchesPerSide;
  const window = unpadWindow(size, grid[0] * side, grid[1] * side);
  return {
    best,
    grid,
    crops: 1 + grid[0] * grid[1],
    window,
    tokens: side * side + window.rows * (window.cols + 1),
  };
}

/**
 * The rows the vision graph gathers for a batch of images whose crops run through it together:
 * for each image, its base crop's features, then its grid's features in reading order over the
 * unpadded window with the newline row after each row (pack_image_features). Feature rows are
 * numbered crop by crop (side² per crop, crops of all images in order); the newline is the row
 * after the last crop's.
 */
export function featureIndex(sizes: readonly Size[], layout: AnyResLayout): { index: number[]; crops: number } {
  const side = layout.patchesPerSide;
  const perCrop = side * side;
  const plans = sizes.map((s) => anyResPlan(s, layout));
  const crops = plans.reduce((n, p) => n + p.crops, 0);
  const newline = crops * perCrop;
  const index: number[] = [];
  let first = 0;
  for (const plan of plans) {
    for (let t = 0; t < perCrop; t++) index.push(first * perCrop + t);
    const { top, rows, left, cols } = plan.window;
    for (let y = top; y < top + rows; y++) {
      for (let x = left; x < left + cols; x++) {
        const crop = first + 1 + Math.floor(y / side) * plan.grid[1] + Math.floor(x / side);
        index.push(crop * perCrop + (y % side) * side + (x % side));
      }
      index.push(newline);
    }
    first += plan.crops;
  }
  return { index, crops };
}
