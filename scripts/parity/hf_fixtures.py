#!/usr/bin/env python3
"""Builds the Hugging Face parity fixtures under test/fixtures/parity/hf_*/ from transformers' own
classes: each case makes a tiny model from a config object, gives every parameter seeded random
values, writes it with `save_pretrained` (real key names and layout: tied heads left out, one case
sharded through max_shard_size) and records inputs and the model's outputs, computed in float64.

A case folder holds `spec.vlm` (the std blocks with the key map that loads the folder unchanged),
`checkpoint/` (config.json and the safetensors save_pretrained wrote), `<graph>.<name>.in.npy` /
`<graph>.<name>.out.npy` and `case.json`. test/parity.test.ts compiles each spec with
`--weights checkpoint` for the portable and ort-cpu targets and compares; it needs no Python.

Needs torch and transformers 5 (the interpreter on the first line has them):
    scripts/parity/hf_fixtures.py [CASE...]
"""

import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import import_torchvision, perceiver_rules, save_pretrained, write_spec  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
import transformers as T  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROOT = os.path.join(REPO, "test", "fixtures", "parity")
TOLERANCE = 1e-4
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def randomize(model, seed):
    """Seeded values for every parameter (tied ones once): weights ~ N(0, 1/fan_in), embeddings
    N(0, 0.5²), norm scales 1 + N(0, 0.1²), gates N(0, 1), biases and other vectors N(0, 0.1²). transformers'
    own initialisation leaves biases at zero and norms at one, which would hide mistakes."""
    g = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, p in model.named_parameters():
            owner = modules[name.rpartition(".")[0]]
            shape = tuple(p.shape)
            r = torch.randn(shape, generator=g, dtype=torch.float32)
            if name.endswith("_gate"):  # Flamingo's tanh gates: far enough from 0 that both branches count
                v = r
            elif isinstance(owner, nn.Embedding):
                v = r * 0.5
            elif len(shape) >= 2:
                v = r / math.sqrt(p[0].numel())
            elif name.endswith("weight") and "norm" in type(owner).__name__.lower() or name.endswith("layernorm.weight"):
                v = 1 + 0.1 * r
            else:
                v = 0.1 * r
            p.copy_(v)


def run64(model, fn):
    """Runs fn(model) in float64 (the model is copied); returns {name: float32 ndarray}."""
    m = model.double().eval()
    with torch.no_grad():
        out = fn(m)
    model.float()
    return {k: np.ascontiguousarray(v.detach().to(torch.float32).numpy()) for k, v in out.items()}


def f64(x):
    return torch.from_numpy(x).double() if x.dtype == np.float32 else torch.from_numpy(x)


class Case:
    def __init__(self, description, reference, spec, model, graphs, shard=None, rename=None, write=None):
        self.description = description
        self.reference = reference
        self.spec = spec
        self.model = model
        self.graphs = graphs  # graph → (inputs {name: ndarray}, fn(model, **torch inputs) → {name: tensor})
        self.shard = shard  # max_shard_size for save_pretrained
        self.rename = rename  # key → key applied after saving (the Hub's older layout)
        # Writes checkpoint/ itself (several checkpoints the spec names by path); default: save_pretrained.
        self.write = write


def pixels(rng, b, size):
    return rng.standard_normal((b, 3, size, size)).astype(np.float32)


def ids(rng, b, t, vocab):
    return rng.integers(0, vocab, size=(b, t), dtype=np.int64)


# ---- language models -----------------------------------------------------------------------------

LLAMA = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=64)


@case
def hf_llama(rng):
    model = T.LlamaForCausalLM(T.LlamaConfig(**LLAMA))
    x = ids(rng, 2, 7, 64)
    return Case(
        "LLaMA with grouped-query attention (4 heads, 2 KV heads), sharded checkpoint",
        "transformers LlamaForCausalLM, save_pretrained(max_shard_size=20KB)",
        """import { llama } from "std"

model m {
  encoder llm = llama(vocab: 64, width: 32, depth: 2, heads: 4, kv_heads: 2, mlp: 48, context: 64, eps: 1e-5)
  weights llm { "model.": "", "lm_head.": "lm_head." }

  forward(ids: i64[B, T <= 64]) {
    return logits: llm(llm.embed_tokens(ids))
  }
}
""",
        model,
        {"forward": ({"ids": x}, lambda m, ids: {"logits": m(input_ids=ids).logits})},
        shard="20KB",
    )


def gpt2_case(rng, description, rename):
    model = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=16))
    x = ids(rng, 2, 7, 64)
    return Case(
        description,
        "transformers GPT2LMHeadModel",
        """import { gpt2 } from "std"

model m {
  encoder llm = gpt2(vocab: 64, width: 32, depth: 2, heads: 4, mlp: 128, context: 16)
  // transformers 5's layout and the Hub's (no level): the longer prefix wins
  weights llm { "": "", "transformer.": "", "lm_head.": none }

  forward(ids: i64[B, T <= 16]) {
    return logits: llm(llm.wte(ids))
  }
}
""",
        model,
        {"forward": ({"ids": x}, lambda m, ids: {"logits": m(input_ids=ids).logits})},
        rename=rename,
    )


@case
def hf_gpt2(rng):
    return gpt2_case(rng, "GPT-2, LM head tied to wte (absent from the checkpoint), transformers 5's layout", None)


@case
def hf_gpt2_hub(rng):
    # The Hub's openai-community/gpt2 file was saved from GPT2Model: its keys have no `transformer.`.
    return gpt2_case(
        rng,
        "GPT-2, the Hub's layout (h.*, wte, wpe, ln_f without a level)",
        lambda k: k[len("transformer."):] if k.startswith("transformer.") else k,
    )


OPT = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, ffn_dim=48, num_attention_heads=4,
           max_position_embeddings=32, word_embed_proj_dim=32)


@case
def hf_opt(rng):
    model = T.OPTForCausalLM(T.OPTConfig(**OPT))
    x = ids(rng, 2, 7, 64)
    return Case(
        "OPT, LM head tied to the token embeddings (absent from the checkpoint)",
        "transformers OPTForCausalLM",
        """import { opt } from "std"

model m {
  encoder llm = opt(vocab: 64, width: 32, depth: 2, heads: 4, mlp: 48, context: 32)
  weights llm { "model.": "", "lm_head.": none }

  forward(ids: i64[B, T <= 32]) {
    return logits: llm(llm.decoder.embed_tokens(ids))
  }
}
""",
        model,
        {"forward": ({"ids": x}, lambda m, ids: {"logits": m(input_ids=ids).logits})},
    )


@case
def hf_opt_350m(rng):
    config = dict(OPT, word_embed_proj_dim=16, do_layer_norm_before=False)
    model = T.OPTForCausalLM(T.OPTConfig(**config))
    x = ids(rng, 2, 7, 64)
    return Case(
        "OPT-350m's shape: post-LN layers, embeddings narrower than the layers (project_in / project_out)",
        "transformers OPTForCausalLM (do_layer_norm_before=False, word_embed_proj_dim 16)",
        """import { opt } from "std"

model m {
  encoder llm = opt(vocab: 64, width: 32, depth: 2, heads: 4, mlp: 48, context: 32, embed_dim: 16, pre_ln: false)
  weights llm { "model.": "", "lm_head.": none }

  forward(ids: i64[B, T <= 32]) {
    return logits: llm(llm.decoder.embed_tokens(ids))
  }
}
""",
        model,
        {"forward": ({"ids": x}, lambda m, ids: {"logits": m(input_ids=ids).logits})},
    )


@case
def hf_bert(rng):
    model = T.BertModel(T.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=48, max_position_embeddings=16))
    x = ids(rng, 2, 7, 64)
    types = rng.integers(0, 2, size=(2, 7), dtype=np.int64)
    return Case(
        "BERT: hidden states and pooler output, with token types",
        "transformers BertModel",
        """import { bert } from "std"

model m {
  encoder text = bert(vocab: 64, width: 32, depth: 2, heads: 4, ffn: 48, positions: 16)
  weights text { "": "" }

  forward(ids: i64[B, T <= 16], types: i64[B, T]) {
    return hidden: text(ids, types), pooled: text(ids, types, pooled: true)
  }
}
""",
        model,
        {
            "forward": (
                {"ids": x, "types": types},
                lambda m, ids, types: (
                    lambda o: {"hidden": o.last_hidden_state, "pooled": o.pooler_output}
                )(m(input_ids=ids, token_type_ids=types)),
            )
        },
    )


@case
def hf_t5(rng):
    model = T.T5ForConditionalGeneration(T.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=2,
                                                    num_decoder_layers=2, num_heads=4))
    x = ids(rng, 2, 7, 64)
    y = ids(rng, 2, 5, 64)
    return Case(
        "T5 encoder–decoder, LM head tied to `shared` (absent from the checkpoint)",
        "transformers T5ForConditionalGeneration",
        """import { t5 } from "std"

model m {
  encoder lm = t5(vocab: 64, width: 32, depth: 2, heads: 4, head_dim: 8, mlp: 48)
  weights lm { "": "", "encoder.block.": "encoder.blocks.", "decoder.block.": "decoder.blocks." }

  forward(ids: i64[B, 7], decoder_ids: i64[B, 5]) {
    return logits: lm(lm.shared(ids), lm.shared(decoder_ids))
  }
}
""",
        model,
        {
            "forward": (
                {"ids": x, "decoder_ids": y},
                lambda m, ids, decoder_ids: {"logits": m(input_ids=ids, decoder_input_ids=decoder_ids).logits},
            )
        },
    )


@case
def hf_t5_gated(rng):
    # As Flan-T5's config says it: tie_word_embeddings False. T5Config turns that argument into
    # scale_decoder_outputs False and then sets tie_word_embeddings back to True; untying takes
    # setting it again.
    config = T.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=1, num_heads=4,
                        feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    config.tie_word_embeddings = False
    model = T.T5ForConditionalGeneration(config)
    # Untied, transformers 5 unties the stacks' embed_tokens from `shared` too; Flan-T5's files hold
    # three equal copies, so share one tensor as they do.
    model.encoder.embed_tokens.weight = model.shared.weight
    model.decoder.embed_tokens.weight = model.shared.weight
    x = ids(rng, 2, 7, 64)
    y = ids(rng, 2, 5, 64)
    return Case(
        "T5 v1.1 / Flan-T5's shape: gated-GELU feed-forward, untied LM head, a shallower decoder",
        "transformers T5ForConditionalGeneration (feed_forward_proj gated-gelu, tie_word_embeddings False)",
        """import { t5 } from "std"

model m {
  encoder lm = t5(vocab: 64, width: 32, depth: 2, decoder_depth: 1, heads: 4, head_dim: 8, mlp: 48, gated: true, tied: false)
  // Flan-T5's files also hold the stacks' embed_tokens, copies of `shared`.
  weights lm {
    "": "",
    "encoder.block.": "encoder.blocks.",
    "decoder.block.": "decoder.blocks.",
    "encoder.embed_tokens.": none,
    "decoder.embed_tokens.": none,
  }

  forward(ids: i64[B, 7], decoder_ids: i64[B, 5]) {
    return logits: lm(lm.shared(ids), lm.shared(decoder_ids))
  }
}
""",
        model,
        {
            "forward": (
                {"ids": x, "decoder_ids": y},
                lambda m, ids, decoder_ids: {"logits": m(input_ids=ids, decoder_input_ids=decoder_ids).logits},
            )
        },
    )


# ---- vision and the seed systems -----------------------------------------------------------------

CLIP_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=16,
                   patch_size=8)


@case
def hf_vit(rng):
    model = T.ViTModel(T.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                                   image_size=16, patch_size=8))
    p = pixels(rng, 2, 16)
    return Case(
        "ViT (HF naming): last hidden state and pooler output",
        "transformers ViTModel",
        """import { hf_vit } from "std"

model m {
  encoder vision = hf_vit(image: 16, patch: 8, width: 32, depth: 2, heads: 4, mlp: 48)
  weights vision { "": "" }

  forward(pixels: f32[B, 3, 16, 16]) {
    return hidden: vision(pixels), pooled: vision(pixels, pooled: true)
  }
}
""",
        model,
        {
            "forward": (
                {"pixels": p},
                lambda m, pixels: (lambda o: {"hidden": o.last_hidden_state, "pooled": o.pooler_output})(
                    m(pixel_values=pixels)
                ),
            )
        },
    )


@case
def hf_clip(rng):
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=8, eos_token_id=2)  # eos 2: pool at argmax(ids), as CLIP's checkpoints do
    model = T.CLIPModel(T.CLIPConfig(text_config=text, vision_config=CLIP_VISION, projection_dim=16))
    p = pixels(rng, 2, 16)
    x = ids(rng, 3, 8, 64)

    def features(m, pixels=None, ids=None):
        out = {}
        if pixels is not None:
            out["image_embeds"] = m.visual_projection(m.vision_model(pixel_values=pixels).pooler_output)
        if ids is not None:
            out["text_embeds"] = m.text_projection(m.text_model(input_ids=ids).pooler_output)
        return out

    return Case(
        "CLIP (the seed system examples/clip.vlm at tiny size): similarity logits and both towers",
        "transformers CLIPModel (forward; image/text: the projections of the towers' pooler outputs)",
        """import { clip_vision, clip_text } from "std"

model clip {
  encoder vision_model = clip_vision(image: 16, patch: 8, width: 32, depth: 2, heads: 4, mlp: 64) frozen
  encoder text_model = clip_text(vocab: 64, context: 8, width: 32, depth: 2, heads: 4, mlp: 48) frozen
  head visual_projection = linear(32, 16, bias: false)
  head text_projection = linear(32, 16, bias: false)
  head param logit_scale: [] = full(2.6592)

  forward(pixels: f32[B, 3, 16, 16], ids: i64[N, 8]) {
    image_embeds = l2_normalize(visual_projection(vision_model(pixels, pooled: true)), axis: -1)
    text_embeds = l2_normalize(text_projection(text_model(ids, pooled: true)), axis: -1)
    logits_per_image = exp(logit_scale) * (image_embeds @ transpose(text_embeds, [1, 0]))
    return logits_per_image: logits_per_image, logits_per_text: transpose(logits_per_image, [1, 0])
  }

  graph image(pixels: f32[B, 3, 16, 16]) {
    return image_embeds: visual_projection(vision_model(pixels, pooled: true))
  }

  graph text(ids: i64[N, 8]) {
    return text_embeds: text_projection(text_model(ids, pooled: true))
  }
}
""",
        model,
        {
            "forward": (
                {"pixels": p, "ids": x},
                lambda m, pixels, ids: (
                    lambda o: {"logits_per_image": o.logits_per_image, "logits_per_text": o.logits_per_text}
                )(m(pixel_values=pixels, input_ids=ids)),
            ),
            "image": ({"pixels": p}, lambda m, pixels: features(m, pixels=pixels)),
            "text": ({"ids": x}, lambda m, ids: features(m, ids=ids)),
        },
    )


@case
def hf_clip_block(rng):
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=8, eos_token_id=2)
    model = T.CLIPModel(T.CLIPConfig(text_config=text, vision_config=CLIP_VISION, projection_dim=16))
    p = pixels(rng, 2, 16)
    x = ids(rng, 3, 8, 64)
    keep = np.ones((3, 8), dtype=np.int64)
    keep[1, 3:] = 0  # padding that the pooled token (at argmax(ids): 4 and 1 here) attends over
    keep[2, 1:] = 0
    return Case(
        "std clip (the whole dual encoder as one component) with a text padding mask",
        "transformers CLIPModel (forward with attention_mask)",
        """import { clip } from "std"

model m {
  encoder c = clip(image: 16, patch: 8, vision_width: 32, vision_depth: 2, vision_heads: 4, vision_mlp: 64,
                   vocab: 64, context: 8, text_width: 32, text_depth: 2, text_heads: 4, text_mlp: 48, embed: 16)
  weights c { "": "" } // CLIPModel's keys are the block's field names

  forward(pixels: f32[B, 3, 16, 16], ids: i64[N, 8], keep: i64[N, 8]) {
    mask = unsqueeze(unsqueeze((cast(keep, f32) - 1.0) * 10000.0, 1), 1)
    per_image, per_text = c(pixels, ids, mask: mask)
    return logits_per_image: per_image, logits_per_text: per_text
  }
}
""",
        model,
        {
            "forward": (
                {"pixels": p, "ids": x, "keep": keep},
                lambda m, pixels, ids, keep: (
                    lambda o: {"logits_per_image": o.logits_per_image, "logits_per_text": o.logits_per_text}
                )(m(pixel_values=pixels, input_ids=ids, attention_mask=keep)),
            ),
        },
    )


LLAVA_SPEC = """import { clip_vision, mlp2x_gelu, llama } from "std"

model llava {
  encoder vision = clip_vision(image: 16, patch: 8, width: 32, depth: 2, heads: 4, mlp: 64) frozen
  fusion proj = mlp2x_gelu(32, 32)
  encoder llm = llama(vocab: 64, width: 32, depth: 2, heads: 4, kv_heads: 2, mlp: 48, context: 64, eps: 1e-5) frozen

  // as in examples/llava.vlm
  weights {
    "vision_tower.vision_model.": "vision.",
    "vision_tower.": "vision.",
    "multi_modal_projector.": "proj.",
    "language_model.model.": "llm.",
    "language_model.lm_head.": "llm.lm_head.",
  }

  forward(pixels: f32[B, 3, 16, 16], ids: i64[B, T <= 60]) {
    prefix = proj(vision(pixels, layer: -2)[:, 1:])
    return logits: llm(concat(prefix, llm.embed_tokens(ids), axis: 1))
  }

  graph image_features(pixels: f32[B, 3, 16, 16]) {
    return image_features: proj(vision(pixels, layer: -2)[:, 1:])
  }
}
"""

IMAGE_TOKEN = 63  # the last id of the tiny vocabularies; text ids stay below it


def llava_case(rng, description, rename):
    config = T.LlavaConfig(vision_config=T.CLIPVisionConfig(**CLIP_VISION), text_config=T.LlamaConfig(**LLAMA),
                           image_token_index=IMAGE_TOKEN, image_seq_length=4)
    model = T.LlavaForConditionalGeneration(config)
    p = pixels(rng, 2, 16)
    x = ids(rng, 2, 6, IMAGE_TOKEN)

    def forward(m, pixels, ids):
        # The 4 image tokens first: vlmc's forward puts the visual prefix before the text.
        placeholders = torch.full((ids.shape[0], 4), IMAGE_TOKEN, dtype=torch.long)
        return {"logits": m(input_ids=torch.cat([placeholders, ids], 1), pixel_values=pixels).logits}

    def image_features(m, pixels):
        f = m.model.get_image_features(pixel_values=pixels, vision_feature_layer=-2,
                                       vision_feature_select_strategy="default")
        f = getattr(f, "pooler_output", f)
        return {"image_features": torch.stack(list(f)) if isinstance(f, (list, tuple)) else f}

    return Case(
        description,
        "transformers LlavaForConditionalGeneration (image tokens placed before the text)",
        LLAVA_SPEC,
        model,
        {"forward": ({"pixels": p, "ids": x}, forward), "image_features": ({"pixels": p}, image_features)},
        rename=rename,
    )


@case
def hf_llava(rng):
    return llava_case(rng, "LLaVA (seed system, tiny), the layout transformers 5's save_pretrained writes", None)


@case
def hf_llava_hub(rng):
    # The Hub's llava-hf folders keep CLIPVisionModel's `vision_model.` level under `vision_tower.`.
    return llava_case(
        rng,
        "LLaVA (seed system, tiny), the Hub's layout (vision_tower.vision_model.*)",
        lambda k: k.replace("vision_tower.", "vision_tower.vision_model.", 1) if k.startswith("vision_tower.") else k,
    )


@case
def hf_blip2(rng):
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=16,
                  patch_size=8)
    qformer = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                   encoder_hidden_size=32, vocab_size=50)
    config = T.Blip2Config(vision_config=vision, qformer_config=qformer, text_config=OPT, num_query_tokens=4,
                           image_token_index=IMAGE_TOKEN)
    model = T.Blip2ForConditionalGeneration(config)
    p = pixels(rng, 2, 16)
    x = ids(rng, 2, 6, IMAGE_TOKEN)

    def forward(m, pixels, ids):
        placeholders = torch.full((ids.shape[0], 4), IMAGE_TOKEN, dtype=torch.long)
        return {"logits": m(input_ids=torch.cat([placeholders, ids], 1), pixel_values=pixels).logits}

    def visual_prompt(m, pixels):
        image_embeds = m.vision_model(pixel_values=pixels).last_hidden_state
        q = m.qformer(query_embeds=m.query_tokens.expand(pixels.shape[0], -1, -1),
                      encoder_hidden_states=image_embeds).last_hidden_state
        return {"visual_prompt": m.language_projection(q)}

    return Case(
        "BLIP-2 with OPT (seed system, tiny: examples/blip2.vlm's blip2_opt_2_7b), tied head absent",
        "transformers Blip2ForConditionalGeneration (forward, image tokens before the text; visual_prompt: its "
        "vision_model, qformer on query_tokens, language_projection)",
        """import { blip2_vision, qformer, linear_projector, opt } from "std"

model blip2 {
  encoder visual_encoder = blip2_vision(image: 16, patch: 8, width: 32, depth: 2, heads: 4, mlp: 48, post_norm: false) frozen
  encoder ln_vision = layer_norm(32, eps: 1e-6)
  fusion qformer = qformer(width: 32, depth: 2, heads: 4, ffn: 48, queries: 4, kv_width: 32, cross_every: 2)
  fusion language_projection = linear_projector(32, 32)
  encoder llm = opt(vocab: 64, width: 32, depth: 2, heads: 4, mlp: 48, context: 32) frozen

  // as in examples/blip2.vlm
  weights {
    "vision_model.": "visual_encoder.",
    "vision_model.post_layernorm.": "ln_vision.",
    "query_tokens": "qformer.query_tokens",
    "qformer.": "qformer.",
    "language_projection.": "language_projection.",
    "language_model.model.": "llm.",
    "language_model.lm_head.": none,
  }

  forward(pixels: f32[B, 3, 16, 16], ids: i64[B, T <= 28]) {
    prefix = language_projection(qformer(ln_vision(visual_encoder(pixels))))
    return logits: llm(concat(prefix, llm.decoder.embed_tokens(ids), axis: 1))
  }

  graph visual_prompt(pixels: f32[B, 3, 16, 16]) {
    return visual_prompt: language_projection(qformer(ln_vision(visual_encoder(pixels))))
  }
}
""",
        model,
        {"forward": ({"pixels": p, "ids": x}, forward), "visual_prompt": ({"pixels": p}, visual_prompt)},
    )


@case
def hf_blip2_retrieval(rng):
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=16,
                  patch_size=8)
    qformer = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                   encoder_hidden_size=32, vocab_size=50, use_qformer_text_input=True)
    config = T.Blip2Config(vision_config=vision, qformer_config=qformer, text_config=OPT, num_query_tokens=4,
                           image_text_hidden_size=16)
    model = T.Blip2ForImageTextRetrieval(config)
    p = pixels(rng, 2, 16)
    x = ids(rng, 2, 6, 50)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=np.int64)

    def itc(m, pixels, ids, text_mask):
        o = m(input_ids=ids, pixel_values=pixels, attention_mask=text_mask, use_image_text_matching_head=False)
        return {"logits_per_image": o.logits_per_image, "logits_per_text": o.logits_per_text}

    def itm(m, pixels, ids, text_mask):
        o = m(input_ids=ids, pixel_values=pixels, attention_mask=text_mask, use_image_text_matching_head=True)
        return {"itm_logits": o.logits_per_image}

    def itg(m, pixels, ids, text_mask):
        # No transformers class computes ITG; this is BLIP-2's definition over transformers' modules:
        # queries see queries, text sees the queries and the text before it (UniLM mask), scored
        # against the word embeddings.
        image_embeds = m.vision_model(pixel_values=pixels).last_hidden_state
        b, q, t = ids.shape[0], 4, ids.shape[1]
        keys = torch.cat([torch.ones(b, q, dtype=text_mask.dtype), text_mask], 1)  # [B, q + t]
        row, col = torch.arange(q + t)[:, None], torch.arange(q + t)[None, :]
        visible = ((col < q) | (col <= row)).to(text_mask.dtype)
        allowed = (keys[:, None, :] * visible[None]).bool()[:, None]  # [B, 1, q + t, q + t]
        mask4 = torch.zeros(allowed.shape, dtype=torch.float64).masked_fill(~allowed, torch.finfo(torch.float64).min)
        embeds = m.embeddings(input_ids=ids, query_embeds=m.query_tokens.expand(b, -1, -1))
        joint = m.qformer(query_embeds=embeds, query_length=q, attention_mask=mask4,
                          encoder_hidden_states=image_embeds).last_hidden_state
        return {"itg_logits": joint[:, q:] @ m.embeddings.word_embeddings.weight.T}

    inputs = {"pixels": p, "ids": x, "text_mask": mask}
    return Case(
        "BLIP-2 stage 1 (examples/blip2.vlm's blip2_qformer_pretrain, tiny): ITC, ITM and ITG through the "
        "Q-Former's text and joint modes (padding and UniLM masks), its text feed-forward and text embeddings",
        "transformers Blip2ForImageTextRetrieval (use_qformer_text_input; ITC as raw cosine similarities, so the "
        "spec's temperature starts at 0); ITG, which no class computes, as its modules composed by BLIP-2's definition",
        """import { blip2_vision, qformer, qformer_text_embeddings, contrastive_head, itm_head, tied_lm_head } from "std"

model blip2_stage1 {
  encoder visual_encoder = blip2_vision(image: 16, patch: 8, width: 32, depth: 2, heads: 4, mlp: 48, post_norm: false) frozen
  encoder ln_vision = layer_norm(32, eps: 1e-6)
  fusion qformer = qformer(width: 32, depth: 2, heads: 4, ffn: 48, queries: 4, kv_width: 32, cross_every: 2, text_ffn: true)
  encoder text_embeddings = qformer_text_embeddings(vocab: 50, width: 32, positions: 512)
  head vision_proj = linear(32, 16)
  head text_proj = linear(32, 16)
  head itc = contrastive_head(init: 0.0) // HF's retrieval model has no temperature
  head itm_head = itm_head(32)
  head itg = tied_lm_head()

  // Blip2ForImageTextRetrieval's checkpoint, component by component: it has no temperature, so
  // `itc` is in no layout and keeps its initialiser.
  weights visual_encoder { "vision_model.": "", "vision_model.post_layernorm.": none }
  weights ln_vision { "vision_model.post_layernorm.": "" }
  weights qformer { "qformer.": "", "query_tokens": "query_tokens" }
  weights text_embeddings { "embeddings.": "" }
  weights vision_proj { "vision_projection.": "" }
  weights text_proj { "text_projection.": "" }
  weights itm_head { "itm_head.": "" }

  // as examples/blip2.vlm's itc and itm, at 4 queries and 6 text tokens
  graph itc(pixels: f32[B, 3, 16, 16], ids: i64[B, 6], text_mask: i64[B, 6]) {
    query_output = qformer(ln_vision(visual_encoder(pixels)))
    pad = (cast(text_mask, f32) - 1.0) * 10000.0
    text_output = qformer(text: text_embeddings(ids), mask: unsqueeze(unsqueeze(pad, 1), 1), mode: "text")
    per_query, per_text = itc(reshape(vision_proj(query_output), [B * 4, 16]), text_proj(text_output[:, 0]))
    s_i2t = reshape(per_query, [B, 4, B])
    s_t2i = reshape(per_text, [B, B, 4])
    i2t = s_i2t[:, 0]
    t2i = s_t2i[:, :, 0]
    for q in range(3) {
      i2t = where(s_i2t[:, q + 1] > i2t, s_i2t[:, q + 1], i2t)
      t2i = where(s_t2i[:, :, q + 1] > t2i, s_t2i[:, :, q + 1], t2i)
    }
    return logits_per_image: i2t, logits_per_text: t2i
  }

  graph itm(pixels: f32[B, 3, 16, 16], ids: i64[B, 6], text_mask: i64[B, 6]) {
    image_embeds = ln_vision(visual_encoder(pixels))
    keys = concat(expand(1.0, [B, 4]), cast(text_mask, f32), axis: 1)
    mask = unsqueeze(unsqueeze((keys - 1.0) * 10000.0, 1), 1)
    joint = qformer(image_embeds, text: text_embeddings(ids), mask: mask, mode: "joint")
    return itm_logits: itm_head(joint[:, 0:4])
  }

  graph itg(pixels: f32[B, 3, 16, 16], ids: i64[B, 6], text_mask: i64[B, 6]) {
    image_embeds = ln_vision(visual_encoder(pixels))
    keys = concat(expand(1.0, [B, 4]), cast(text_mask, f32), axis: 1)
    row = unsqueeze(arange(10), 1)
    col = unsqueeze(arange(10), 0)
    visible = where(col < 4 or col <= row, 0.0, -10000.0)
    mask = unsqueeze(unsqueeze((keys - 1.0) * 10000.0, 1), 1) + visible
    joint = qformer(image_embeds, text: text_embeddings(ids), mask: mask, mode: "joint")
    return itg_logits: itg(joint[:, 4:], text_embeddings.word_embeddings.weight)
  }
}
""",
        model,
        {"itc": (inputs, itc), "itm": (inputs, itm), "itg": (inputs, itg)},
    )


# ---- Flamingo: no transformers class ---------------------------------------------------------------

# Flamingo exists in no library vlmc's environment has (open_flamingo is not installed): its
# Perceiver Resampler and gated cross-attention are the plain PyTorch loops of mirrors.py, written
# from open_flamingo's helpers.py and flamingo_lm.py. Everything else is transformers' own: the CLIP
# vision tower, and LLaMA's embeddings, decoder layers, norm and head, run layer by layer with the
# cross-attention blocks in front of every second layer, as open_flamingo's FlamingoLMMixin does.


@case
def hf_flamingo(rng):
    import mirrors as M  # noqa: E402  (the open_flamingo loops only)

    n_img, n_lat = 2, 3
    vision = T.CLIPVisionModel(T.CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                                                  num_attention_heads=2, image_size=16, patch_size=8))
    llama = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
                                             num_attention_heads=4, max_position_embeddings=32,
                                             attn_implementation="eager"))
    perceiver = M.PerceiverResampler(dim=24, depth=2, dim_head=8, heads=2, num_latents=n_lat, ff_mult=2)
    gated = nn.ModuleList(
        M.GatedCrossAttentionBlock(dim=32, dim_visual=24, dim_head=8, heads=2, ff_mult=2) if (i + 1) % 2 == 0 else nn.Identity() for i in range(4)
    )
    model = nn.ModuleDict({"vision": vision, "llama": llama, "perceiver": perceiver, "gated": gated})
    p = rng.standard_normal((2, n_img, 3, 16, 16), dtype=np.float32)
    x = ids(rng, 2, 10, 50)
    media_locations = np.zeros((2, 10), dtype=bool)
    media_locations[0, [1, 5]] = True
    media_locations[1, 3] = True

    def latents(m, pixels):
        # open_flamingo's _encode_vision_x: the last layer after the final LayerNorm, class token dropped.
        v = m["vision"]  # transformers 5's CLIPVisionModel holds the tower's modules directly
        feats = v.post_layernorm(v(pixel_values=pixels).last_hidden_state[:, 1:])
        return m["perceiver"](feats[:, None, None])[:, 0]

    def forward(m, pixels, ids, media_locations):
        b, t = ids.shape
        media = latents(m, pixels.reshape(b * n_img, 3, 16, 16)).reshape(b, n_img, n_lat, 24)
        lm = m["llama"].model
        h = lm.embed_tokens(ids)
        positions = torch.arange(t)[None]
        rotary = lm.rotary_emb(h, positions)
        causal = torch.full((t, t), torch.finfo(h.dtype).min, dtype=h.dtype).triu(1)[None, None]
        for block, layer in zip(m["gated"], lm.layers):
            if not isinstance(block, nn.Identity):
                h = block(h, media, media_locations)
            h = layer(h, attention_mask=causal, position_ids=positions, position_embeddings=rotary)
            h = h[0] if isinstance(h, tuple) else h
        return {"logits": m["llama"].lm_head(lm.norm(h))}

    def write(ckpt):
        save_pretrained(vision, os.path.join(ckpt, "vision"))
        save_pretrained(llama, os.path.join(ckpt, "llm"))
        # open_flamingo's checkpoint keys: `perceiver.*`, `lang_encoder.gated_cross_attn_layers.*`.
        tensors = {f"perceiver.{k}": v for k, v in perceiver.state_dict().items()}
        for i, block in enumerate(gated):
            tensors.update({f"lang_encoder.gated_cross_attn_layers.{i}.{k}": v for k, v in block.state_dict().items()})
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(ckpt, "flamingo.safetensors"))

    perceiver_map = ",\n".join(f"    {rule}" for rule in perceiver_rules(2, "perceiver."))
    xattn_map = ",\n".join(
        f'    "lang_encoder.gated_cross_attn_layers.{i}.ff.{a}": "gated_cross_attn_layers.{i}.ff.{b}"'
        for i in (1, 3)
        for a, b in (("0.", "norm."), ("1.", "fc1."), ("3.", "fc2."))
    )
    return Case(
        "Flamingo (seed system examples/flamingo.vlm, tiny): CLIP tokens after post_layernorm, Perceiver Resampler "
        "per image, gated cross-attention before every 2nd LLaMA layer; three checkpoints (HF CLIP, HF LLaMA, "
        "open_flamingo's keys)",
        "transformers CLIPVisionModel and LlamaForCausalLM (layers run one by one); open_flamingo's Perceiver and "
        "gated cross-attention as reference loops in torch (scripts/parity/mirrors.py), no library class exists",
        f"""import {{ clip_vision, perceiver_resampler, flamingo_lm, llama }} from "std"

model seed_flamingo {{
  encoder vision = clip_vision(image: 16, patch: 8, width: 24, depth: 2, heads: 2, mlp: 48) frozen
  fusion perceiver = perceiver_resampler(24, depth: 2, heads: 2, head_dim: 8, num_latents: 3, ffn_mult: 2)
  encoder llm = llama(vocab: 50, width: 32, depth: 4, heads: 4, mlp: 48, context: 32) frozen
  fusion xattn = flamingo_lm(32, 4, cross_every: 2, media_width: 24, heads: 2, head_dim: 8, ffn_mult: 2)

  weights vision from "checkpoint/vision" {{ "": "" }} // transformers 5's CLIPVisionModel: no vision_model. level
  weights llm from "checkpoint/llm" {{ "model.": "", "lm_head.": "lm_head." }}
  // open_flamingo numbers its nn.Sequential members; the map names them.
  weights perceiver from "checkpoint/flamingo.safetensors" {{
    "perceiver.": "",
{perceiver_map},
  }}
  weights xattn from "checkpoint/flamingo.safetensors" {{
    "lang_encoder.": "",
{xattn_map},
  }}

  forward(pixels: f32[B, N, 3, 16, 16], ids: i64[B, T <= 32], media_locations: bool[B, T]) {{
    h = vision(reshape(pixels, [B * N, 3, 16, 16]))
    feats = vision.post_layernorm(h[:, 1:])
    latents_per_image = perceiver(feats) // [B·N, 3, 24]
    media = reshape(latents_per_image, [B, N * 3, 24])
    text_time = cumsum(media_locations, axis: 1) // [B, T], i64
    media_time = reshape(expand(unsqueeze(arange(N) + 1, 1), [N, 3]), [N * 3])
    media_mask = unsqueeze(where(unsqueeze(text_time, 2) == media_time, 0.0, -10000.0), 1) // [B, 1, T, N·3]
    text_has_media = unsqueeze(cast(text_time > 0, f32), 2) // [B, T, 1]
    x = xattn(llm.embed_tokens(ids), media, llm.layers, media_mask, text_has_media)
    return logits: llm.lm_head(llm.norm(x))
  }}

  graph media_latents(pixels: f32[B, 3, 16, 16]) {{
    return latents: perceiver(vision.post_layernorm(vision(pixels)[:, 1:]))
  }}
}}
""",
        model,
        {
            "forward": ({"pixels": p, "ids": x, "media_locations": media_locations}, forward),
            "media_latents": ({"pixels": p[:, 0]}, lambda m, pixels: {"latents": latents(m, pixels)}),
        },
        write=write,
    )


# ---- writing -------------------------------------------------------------------------------------


def build(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    torch.manual_seed(0)
    c = CASES[name](rng)
    randomize(c.model, sum(map(ord, name)))
    c.model.eval()
    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    ckpt = os.path.join(folder, "checkpoint")
    if c.write:
        c.write(ckpt)
    else:
        save_pretrained(c.model, ckpt, c.shard)
    if c.rename:
        single = os.path.join(ckpt, "model.safetensors")
        save_file({c.rename(k): v for k, v in load_file(single).items()}, single, metadata={"format": "pt"})
    write_spec(os.path.join(folder, "spec.vlm"), c.spec)
    graphs = {}
    for graph, (inputs, fn) in c.graphs.items():
        outputs = run64(c.model, lambda m: fn(m, **{k: f64(v) for k, v in inputs.items()}))
        entry = {"inputs": {}, "outputs": {}}
        for k, v in inputs.items():
            entry["inputs"][k] = f"{graph}.{k}.in.npy"
            np.save(os.path.join(folder, entry["inputs"][k]), v)
        for k, v in outputs.items():
            entry["outputs"][k] = f"{graph}.{k}.out.npy"
            np.save(os.path.join(folder, entry["outputs"][k]), v)
        graphs[graph] = entry
    manifest = {
        "description": c.description,
        "reference": f"{c.reference}; transformers {T.__version__}, torch {torch.__version__}",
        "weights": None if c.write else "checkpoint",
        "tolerance": TOLERANCE,
        "graphs": graphs,
    }
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(folder) for n in ns)
    print(f"{name}: {size} bytes")


def main(argv):
    names = argv or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit(f"unknown case {n}; cases: {', '.join(CASES)}")
        build(n)


if __name__ == "__main__":
    main(sys.argv[1:])
