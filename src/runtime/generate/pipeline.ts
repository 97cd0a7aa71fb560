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
import { preprocessImage, readImageProcessing, type ImageOptions, type ImageProcessing } from "./image.js";
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
  const rows: PromptRow[] = [];
  for (const request of requests) {
    const { ids } = promptIds(inputs.manifest, inputs.text, request.prompt, request.images.length, options);
    newTokenBudget(inputs.manifest, ids.length, 1);
    const pixels = new Float32Array(request.images.length * 3 * height * width);
    for (const [i, file] of request.images.entries()) {
      const image = await preprocessImage(file, inputs.imageProcessing, options);
      if (image.height !== height || image.width !== width)
        throw new DiagnosticError(
          diagnostic(
            "VLM5012",
            `the image processor makes ${image.height} × ${image.width} pixels of ${file} but the vision graph takes ${height} × ${width}`,
            undefined,
            { hint: "the package's processor config does not belong to its vision graph: compile the package again" },
          ),
        );
      pixels.set(image.pixels, i * image.pixels.length);
    }
    rows.push({ ids, images: { pixels, count: request.images.length } });
  }
  return rows;
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
