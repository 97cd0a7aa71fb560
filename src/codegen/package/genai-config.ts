// genai_config.json in ONNX Runtime GenAI's schema, written from the package manifest, so tools that
// know that format find the graphs, the input/output names, the cache names and the token ids
// where they look for them. vlmc's own runtime reads vlmc-package.json instead.

import type { PackageManifest } from "../../onnx/manifest.js";

/** generation_config.json keys copied into `search` when the checkpoint states them. */
const SEARCH_KEYS = ["do_sample", "top_k", "top_p", "temperature", "repetition_penalty"] as const;

export function genaiConfig(m: PackageManifest, generation: Readonly<Record<string, unknown>>): object {
  const { decoder, embedding, vision } = m.graphs;
  const search: Record<string, unknown> = {
    do_sample: false,
    top_k: 1,
    top_p: 1,
    temperature: 1,
    repetition_penalty: 1,
  };
  for (const key of SEARCH_KEYS) if (generation[key] !== undefined) search[key] = generation[key];
  return {
    model: {
      type: m.family,
      ...(m.tokens.bos !== undefined ? { bos_token_id: m.tokens.bos } : {}),
      eos_token_id: m.tokens.eos.length === 1 ? m.tokens.eos[0] : m.tokens.eos,
      pad_token_id: m.tokens.pad ?? m.tokens.eos[0],
      vocab_size: m.vocabSize,
      context_length: m.contextLength,
      image_token_id: m.image.tokenId,
      decoder: {
        // ONNX Runtime GenAI opens the graphs on the provider the decoder's session options name.
        ...(m.target === "ort-cuda" ? { session_options: { provider_options: [{ cuda: {} }] } } : {}),
        filename: decoder.file,
        hidden_size: m.hiddenSize,
        head_size: m.cache.headDim,
        num_attention_heads: m.hiddenSize / m.cache.headDim,
        num_key_value_heads: m.cache.heads,
        num_hidden_layers: m.cache.layers,
        inputs: {
          ...decoder.inputs,
          past_key_names: m.cache.pastKey,
          past_value_names: m.cache.pastValue,
        },
        outputs: {
          ...decoder.outputs,
          present_key_names: m.cache.presentKey,
          present_value_names: m.cache.presentValue,
        },
      },
      embedding: { filename: embedding.file, inputs: embedding.inputs, outputs: embedding.outputs },
      vision: {
        filename: vision.file,
        inputs: vision.inputs,
        outputs: vision.outputs,
        // AnyRes: the processor's pinpoints and crop, the features per crop side; the newline row
        // is inside vision.onnx (the row after the last crop's that image_index may name).
        ...(m.image.anyres
          ? {
              image_grid_pinpoints: m.image.anyres.pinpoints,
              crop_size: m.image.anyres.cropSize,
              patches_per_side: m.image.anyres.patchesPerSide,
              image_newline: "in-graph",
            }
          : {}),
      },
    },
    search: {
      ...search,
      max_length: m.contextLength,
      past_present_share_buffer: m.sharedBuffer,
    },
  };
}
