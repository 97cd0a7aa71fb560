// A prompt and its images → the token ids of one prefill row, as the family's Hugging Face
// processor builds them: LLaVA expands each `<image>` tag to one token per feature row, BLIP-2
// (transformers 5) prepends `num_query_tokens` image tokens before the text's own ids, Flamingo
// keeps one `<image>` token per image (its images enter through cross-attention).

import { diagnostic, DiagnosticError, InternalError } from "../../diagnostics/diagnostic.js";
import type { PackageManifest } from "../../onnx/manifest.js";
import { anyResPlan, type Size } from "./anyres.js";
import { renderChat, type PackageText } from "./text.js";

export interface PromptOptions {
  /** Skip the chat template: the prompt is the model's input as written (tags included). */
  readonly raw?: boolean;
}

export interface PromptIds {
  /** The text after the chat template, before image tags are expanded. */
  readonly text: string;
  readonly ids: bigint[];
}

/**
 * Tokenizes one prompt for `images` images; checks that image tags and images agree. An AnyRes
 * package's images differ in their token counts: `sizes` gives each image's [height, width].
 */
export function promptIds(
  manifest: PackageManifest,
  text: PackageText,
  prompt: string,
  images: number,
  options: PromptOptions = {},
  sizes: readonly Size[] = [],
): PromptIds {
  const { tokenId, tokensPerImage, placement } = manifest.image;
  const rendered = options.raw ? prompt : renderChat(text, prompt, placement === "prefix" ? 0 : images);
  // The library's declarations do not resolve under NodeNext; ids are numbers.
  const encoded: number[] = text.tokenizer.encode(rendered).ids;
  const tags = encoded.filter((id) => id === tokenId).length;
  const tag = text.tokenizer.id_to_token(tokenId) ?? `token ${tokenId}`;
  if (placement === "prefix") {
    if (tags > 0 || images > 1)
      throw mismatch(
        `${manifest.family} takes at most one image per prompt, placed before the text; the prompt has ${tags} ${tag} tag${tags === 1 ? "" : "s"} and ${images} image${images === 1 ? "" : "s"} were given`,
        `remove the ${tag} tags from the prompt and pass at most one --image per prompt`,
      );
    const prefix = Array.from({ length: images * tokensPerImage }, () => BigInt(tokenId));
    return { text: rendered, ids: [...prefix, ...encoded.map(BigInt)] };
  }
  if (tags !== images)
    throw mismatch(
      `the prompt has ${tags} ${tag} tag${tags === 1 ? "" : "s"} but ${images} image${images === 1 ? " was" : "s were"} given`,
      options.raw
        ? `write one ${tag} in the prompt where each image goes, in the order of the --image files`
        : "pass one --image per image the prompt needs; the chat template adds the tags itself",
    );
  const anyres = manifest.image.anyres;
  if (anyres && placement === "image-tokens" && sizes.length !== images)
    throw new InternalError(`an AnyRes prompt needs each image's size: ${sizes.length} sizes for ${images} images`);
  // Tokens for the i-th image tag: the processor's expansion (LLaVA-NeXT's by the image's size).
  const repeat = (i: number) =>
    placement !== "image-tokens" ? 1 : anyres ? anyResPlan(sizes[i]!, anyres).tokens : tokensPerImage;
  let seen = 0;
  return {
    text: rendered,
    ids: encoded.flatMap((id) => Array.from({ length: id === tokenId ? repeat(seen++) : 1 }, () => BigInt(id))),
  };
}

function mismatch(message: string, hint: string): DiagnosticError {
  return new DiagnosticError(diagnostic("VLM5007", message, undefined, { hint }));
}

/**
 * Refuses a prompt that leaves no room for a new token; returns how many new tokens fit. The room is
 * the package's cache (maxLength: the spec's prompt + new_tokens), else the LM's whole context.
 */
export function newTokenBudget(manifest: PackageManifest, promptLength: number, maxNewTokens: number): number {
  const limit = manifest.maxLength ?? manifest.contextLength;
  const room = limit - promptLength;
  if (room <= 0) {
    const holds = manifest.maxLength === undefined ? "context holds" : "package holds (prompt and new tokens)";
    throw new DiagnosticError(
      diagnostic(
        "VLM5008",
        `the prompt is ${promptLength} tokens (image tokens included) but ${manifest.model}'s ${holds} ${limit}`,
        undefined,
        { hint: "shorten the prompt, or pass fewer images" },
      ),
    );
  }
  return Math.min(room, maxNewTokens);
}
