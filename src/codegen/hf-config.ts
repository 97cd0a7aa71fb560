// Checking a Hugging Face folder's config.json against the spec: a checkpoint of a 32-layer model
// loaded into a spec that says 24 fails on shapes only when some width differs too, and a wrong
// head count never shows in any shape. For each std block that mirrors a transformers class, the
// table names the config's `model_type`s and which config field each block argument is.

import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { ComponentInfo } from "../ir/graph.js";

interface ConfigMap {
  /** `model_type` values of the config section that describes this block. */
  readonly types: readonly string[];
  /** Block argument → config field. */
  readonly fields: Readonly<Record<string, string>>;
}

const LLAMA: ConfigMap = {
  types: ["llama"],
  fields: {
    vocab: "vocab_size",
    width: "hidden_size",
    depth: "num_hidden_layers",
    heads: "num_attention_heads",
    kv_heads: "num_key_value_heads",
    mlp: "intermediate_size",
    theta: "rope_theta",
  },
};

const VISION_TOWER = {
  image: "image_size",
  patch: "patch_size",
  width: "hidden_size",
  depth: "num_hidden_layers",
  heads: "num_attention_heads",
  mlp: "intermediate_size",
};

/** std block name → how its arguments appear in transformers' config. */
export const HF_CONFIGS: Readonly<Record<string, ConfigMap>> = {
  llama: LLAMA,
  opt: {
    types: ["opt"],
    fields: {
      vocab: "vocab_size",
      width: "hidden_size",
      depth: "num_hidden_layers",
      heads: "num_attention_heads",
      mlp: "ffn_dim",
      context: "max_position_embeddings",
      embed_dim: "word_embed_proj_dim",
    },
  },
  gpt2: {
    types: ["gpt2"],
    fields: {
      vocab: "vocab_size",
      width: "n_embd",
      depth: "n_layer",
      heads: "n_head",
      mlp: "n_inner",
      context: "n_positions",
    },
  },
  clip_vision: { types: ["clip_vision_model"], fields: VISION_TOWER },
  blip2_vision: { types: ["blip_2_vision_model"], fields: VISION_TOWER },
  clip_text: {
    types: ["clip_text_model"],
    fields: {
      vocab: "vocab_size",
      context: "max_position_embeddings",
      width: "hidden_size",
      depth: "num_hidden_layers",
      heads: "num_attention_heads",
      mlp: "intermediate_size",
    },
  },
  bert: {
    types: ["bert"],
    fields: {
      vocab: "vocab_size",
      width: "hidden_size",
      depth: "num_hidden_layers",
      heads: "num_attention_heads",
      ffn: "intermediate_size",
      positions: "max_position_embeddings",
      type_vocab: "type_vocab_size",
    },
  },
  qformer: {
    types: ["blip_2_qformer"],
    fields: {
      width: "hidden_size",
      depth: "num_hidden_layers",
      heads: "num_attention_heads",
      ffn: "intermediate_size",
      kv_width: "encoder_hidden_size",
      cross_every: "cross_attention_frequency",
    },
  },
  hf_vit: { types: ["vit"], fields: VISION_TOWER },
  t5: {
    types: ["t5"],
    fields: {
      vocab: "vocab_size",
      width: "d_model",
      depth: "num_layers",
      decoder_depth: "num_decoder_layers",
      heads: "num_heads",
      head_dim: "d_kv",
      mlp: "d_ff",
    },
  },
};

type Json = Readonly<Record<string, unknown>>;

/** The config and every nested `*_config` object, with the dotted path each sits at. */
function sections(config: Json, at = ""): { at: string; section: Json }[] {
  const out = [{ at, section: config }];
  for (const [key, value] of Object.entries(config))
    if (key.endsWith("_config") && typeof value === "object" && value !== null && !Array.isArray(value))
      out.push(...sections(value as Json, `${at}${key}.`));
  return out;
}

/**
 * Compares each component with the config section of its architecture (found by `model_type`;
 * a component whose block has no transformers class, or whose section is absent or ambiguous,
 * is not compared). Every disagreeing field is reported at the component's declaration.
 */
export function checkConfig(
  config: Json,
  configFile: string,
  components: readonly ComponentInfo[],
  report: (d: Diagnostic) => void,
): void {
  const all = sections(config);
  for (const c of components) {
    const table = HF_CONFIGS[c.block];
    if (!table || !c.config) continue;
    const found = all.filter(({ section }) => table.types.includes(String(section["model_type"])));
    if (found.length !== 1) continue;
    const { at, section } = found[0]!;
    for (const [arg, field] of Object.entries(table.fields)) {
      const spec = c.config[arg];
      const file = section[field];
      if (spec === undefined || typeof file !== "number" || file === spec) continue;
      report(
        diagnostic(
          "VLM4206",
          `${configFile} says ${at}${field} = ${file}, but ${c.name} = ${c.block}(…) has ${arg}: ${spec}`,
          c.span,
          {
            hint: `the checkpoint is not the model this spec describes; set ${arg}: ${file} or load another checkpoint`,
          },
        ),
      );
    }
  }
}
