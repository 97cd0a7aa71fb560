// Text in, text out over a package folder: the files checked, prompts tokenized and images
// preprocessed (every input problem found before an engine is opened), the engine made by a
// factory the caller passes, tokens generated and decoded into streamed text pieces.

import { diagnostic, DiagnosticError, InternalError } from "../../diagnostics/diagnostic.js";
import type { PackageManifest } from "../../onnx/manifest.js";
import {
  generate,
  generationProblem,
  type GeneratedToken,
  type GenerateOptions,
  type GenerationStats,
  type PromptRow,
} from "./generate.js";
import {
  preprocessImage,
  readImageProcessing,
  type ImageOptions,
  type ImageProcessing,
  type PreprocessedImage,
} from "./image.js";
import { readPackageFolder } from "./package-folder.js";
import { newTokenBudget, promptIds } from "./prompt.js";
import type { StepEngine } from "./step-engine.js";
import { loadPackageText, TextStream, type PackageText } from "./text.js";

/** Opens the engine of a package folder (the package engine, or a test double). */
export type EngineFactory = (dir: string) => Promise<StepEngine>;

export interface GenerateRequest {
  readonly prompt: string;
  /** Image files, in the order of the prompt's image tags. */
  readonly images: readonly string[];
}

export interface TextGenerationOptions extends GenerateOptions, ImageOptions {
  /** Skip the chat template. */
  readonly raw?: boolean;
}

/** What a package needs besides its graphs: manifest, tokenizer, template, image processor. */
export interface PackageInputs {
  readonly dir: string;
  readonly manifest: PackageManifest;
  readonly text: PackageText;
  readonly imageProcessing: ImageProcessing;
}

export function openPackageInputs(dir: string): PackageInputs {
  const { manifest } = readPackageFolder(dir);
  return { dir, manifest, text: loadPackageText(dir), imageProcessing: readImageProcessing(dir) };
}

/** The prefill rows of `requests`: prompt ids per family and images as the vision graph takes them. */
export async function promptRows(
  inputs: PackageInputs,
  requests: readonly GenerateRequest[],
  options: { readonly raw?: boolean } & ImageOptions = {},
): Promise<PromptRow[]> {
  const [, height, width] = inputs.manifest.image.pixelShape;
  anyResAgreement(inputs);
  const rows: PromptRow[] = [];
  for (const request of requests) {
    // Images first: an AnyRes image's size decides how many tokens its tag expands to.
    const images: PreprocessedImage[] = [];
    for (const file of request.images) {
      const image = await preprocessImage(file, inputs.imageProcessing, options);
      if (image.height !== height || image.width !== width)
        throw processorMismatch(
          `the image processor makes ${image.height} × ${image.width} pixels of ${file} but the vision graph takes ${height} × ${width}`,
        );
      images.push(image);
    }
    const sizes = images.map((i) => i.size);
    const { ids } = promptIds(inputs.manifest, inputs.text, request.prompt, request.images.length, options, sizes);
    newTokenBudget(inputs.manifest, ids.length, 1);
    const pixels = new Float32Array(images.reduce((n, i) => n + i.pixels.length, 0));
    let at = 0;
    for (const image of images) {
      pixels.set(image.pixels, at);
      at += image.pixels.length;
    }
    const anyres = inputs.manifest.image.anyres !== undefined;
    rows.push({ ids, images: { pixels, count: request.images.length, ...(anyres ? { sizes } : {}) } });
  }
  return rows;
}

/** An AnyRes package's processor must crop by the pinpoints and crop size its vision graph was built for. */
function anyResAgreement(inputs: PackageInputs): void {
  const want = inputs.manifest.image.anyres;
  const got = inputs.imageProcessing.anyres;
  if (!want && !got) return;
  if (!want || !got)
    throw processorMismatch(
      want
        ? "the package is LLaVA-NeXT's AnyRes but its image processor config has no image_grid_pinpoints"
        : "the image processor config has image_grid_pinpoints but the package's vision graph is not AnyRes",
    );
  if (JSON.stringify(got.pinpoints) !== JSON.stringify(want.pinpoints) || got.patch !== want.cropSize)
    throw processorMismatch(
      `the image processor crops ${got.patch} px tiles by pinpoints ${JSON.stringify(got.pinpoints)}, but the package was built for ${want.cropSize} px and ${JSON.stringify(want.pinpoints)}`,
    );
}

function processorMismatch(message: string): DiagnosticError {
  return new DiagnosticError(
    diagnostic("VLM5012", message, undefined, {
      hint: "the package's processor config does not belong to its vision graph: compile the package again",
    }),
  );
}

export interface TextPiece extends GeneratedToken {
  /** Text this token completes ("" while a character is still partial). */
  readonly text: string;
}

export interface RowResult {
  readonly promptTokens: number;
  readonly tokens: number[];
  readonly text: string;
  readonly stop: GeneratedToken["stop"];
}

export interface TextGenerationResult {
  readonly rows: RowResult[];
  readonly stats: GenerationStats;
}

/**
 * Generates text for `requests` from the package in `dir`, yielding each token with its text
 * piece; returns every row's tokens, text and why it stopped, and the timings. The engine is
 * opened after all inputs are read and released at the end.
 */
export async function* generateText(
  dir: string,
  requests: readonly GenerateRequest[],
  options: TextGenerationOptions,
  openEngine: EngineFactory,
): AsyncGenerator<TextPiece, TextGenerationResult> {
  const problem = generationProblem(options);
  if (problem) throw new DiagnosticError(problem);
  const inputs = openPackageInputs(dir);
  const rows = await promptRows(inputs, requests, options);
  let engine: StepEngine;
  try {
    engine = await openEngine(dir);
  } catch (e) {
    throw engineFailure(e);
  }
  const streams = rows.map(() => new TextStream(inputs.text.tokenizer));
  const results = rows.map((r) => ({
    promptTokens: r.ids.length,
    tokens: [] as number[],
    stop: undefined as RowResult["stop"],
  }));
  try {
    const tokens = generate(engine, rows, options);
    for (;;) {
      let next: IteratorResult<GeneratedToken, GenerationStats>;
      try {
        next = await tokens.next();
      } catch (e) {
        throw engineFailure(e);
      }
      if (next.done) return { rows: results.map((r, i) => ({ ...r, text: streams[i]!.text() })), stats: next.value };
      const t = next.value;
      results[t.row]!.tokens.push(t.token);
      if (t.stop) results[t.row]!.stop = t.stop;
      yield { ...t, text: streams[t.row]!.push(t.token) };
    }
  } finally {
    await engine.release();
  }
}

/** Diagnostics and vlmc's own bugs pass through; what else the engine throws becomes VLM5013. */
function engineFailure(e: unknown): Error {
  if (e instanceof DiagnosticError || e instanceof InternalError) return e;
  return new DiagnosticError(
    diagnostic("VLM5013", `the package engine failed: ${e instanceof Error ? e.message : String(e)}`, undefined, {
      hint: "check that the package was written by this version of vlmc for a target this machine runs",
    }),
  );
}
