"""Builds test/fixtures/generate/flamingo/: a tiny Flamingo outside vlmc and its greedy generation
for a prompt with two interleaved images, the reference of test/generate.test.ts's Flamingo case.

The model is transformers' CLIPVisionModel and LlamaForCausalLM (layers run one by one) with
open_flamingo's Perceiver Resampler and tanh-gated cross-attention blocks (the torch loops of
scripts/parity/mirrors.py, written from open_flamingo's helpers.py and flamingo_lm.py; open_flamingo
itself is not installed), a block before every LLaMA layer. Every parameter, the gates included, gets
seeded random values (hf_fixtures.randomize: gates N(0, 1), far from 0).

The greedy loop recomputes the whole forward at every step, in float64, with no cache: media
locations are the prompt's `<image>` tokens, each text token attends only to the latents of the most
recent image at or before it, tokens before the first image get none. The seed is chosen so that no
step is a near-tie (smallest top-1/top-2 margin > 1e-3), no new token is eos or `<image>`, the
new tokens are not one token repeated, and the images in swapped order give other greedy ids (so the
test notices a mix-up of the two images).

Writes model.safetensors (open_flamingo / HF key names; spec.vlm's weights map renames them),
pixels.npy [2, 3, 16, 16], config.json, the tokenizer files of test/fixtures/package/flamingo and
reference.json (input ids, greedy ids, per-step margins and last-position logits).

Run: $VLMC_PYTHON scripts/generate/flamingo_reference.py
"""

import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
import transformers as T  # noqa: E402

import hf_fixtures  # noqa: E402  (randomize)
import mirrors as M  # noqa: E402  (open_flamingo's Perceiver Resampler and gated cross-attention)

ROOT = os.path.join(HERE, "..", "..", "test", "fixtures")
OUT = os.path.join(ROOT, "generate", "flamingo")
IMAGE, PATCH, VISION, LATENTS, WIDTH, LAYERS, VOCAB = 16, 8, 16, 3, 32, 2, 64
BOS, EOS, IMAGE_TOKEN = 1, 2, 3
# Two <image> tokens at different positions: tokens 2-4 see image 1 only, tokens 6- image 2 only.
PROMPT = [BOS, IMAGE_TOKEN, 10, 11, 12, IMAGE_TOKEN, 13, 14, 15]
MAX_NEW_TOKENS = 8


def build(seed):
    torch.manual_seed(seed)
    vision = T.CLIPVisionModel(T.CLIPVisionConfig(hidden_size=VISION, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, image_size=IMAGE, patch_size=PATCH))
    llama = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=48,
                                             num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                                             rms_norm_eps=1e-6, max_position_embeddings=64, bos_token_id=BOS,
                                             eos_token_id=EOS, pad_token_id=0, attn_implementation="eager"))
    perceiver = M.PerceiverResampler(dim=VISION, depth=1, dim_head=8, heads=2, num_latents=LATENTS, ff_mult=2)
    gated = nn.ModuleList(M.GatedCrossAttentionBlock(dim=WIDTH, dim_visual=VISION, dim_head=8, heads=2, ff_mult=2) for _ in range(LAYERS))
    model = nn.ModuleDict({"vision": vision, "llama": llama, "perceiver": perceiver, "gated": gated})
    hf_fixtures.randomize(model, seed)
    return model


def logits(m, pixels, ids):
    """open_flamingo's forward for one row: pixels [N, 3, H, W], ids [T] → logits [T, vocab]."""
    v = m["vision"]
    feats = v.post_layernorm(v(pixel_values=pixels).last_hidden_state[:, 1:])  # class token dropped
    media = m["perceiver"](feats[None, :, None])  # [1, N, latents, D]
    media_locations = (ids == IMAGE_TOKEN)[None]
    lm = m["llama"].model
    h = lm.embed_tokens(ids[None])
    positions = torch.arange(ids.shape[0])[None]
    rotary = lm.rotary_emb(h, positions)
    causal = torch.full((ids.shape[0],) * 2, torch.finfo(h.dtype).min, dtype=h.dtype).triu(1)[None, None]
    for block, layer in zip(m["gated"], lm.layers):
        h = block(h, media, media_locations)
        h = layer(h, attention_mask=causal, position_ids=positions, position_embeddings=rotary)
        h = h[0] if isinstance(h, tuple) else h
    return m["llama"].lm_head(lm.norm(h))[0]


def greedy(model, pixels):
    m = model.double().eval()
    ids, margins, steps = list(PROMPT), [], []
    with torch.no_grad():
        for _ in range(MAX_NEW_TOKENS):
            last = logits(m, torch.from_numpy(pixels).double(), torch.tensor(ids))[-1]
            top = last.topk(2).values
            margins.append(float(top[0] - top[1]))
            steps.append(last.float().tolist())
            ids.append(int(last.argmax()))
    model.float()
    return ids[len(PROMPT):], margins, steps


def tensors(model):
    """HF CLIP and LLaMA keys under LLaVA-like prefixes, open_flamingo's keys for its own modules."""
    out = {f"vision_tower.{k}": v for k, v in model["vision"].state_dict().items()}
    out.update({f"language_model.{k}": v for k, v in model["llama"].state_dict().items()})
    out.update({f"perceiver.{k}": v for k, v in model["perceiver"].state_dict().items()})
    for i, block in enumerate(model["gated"]):
        out.update({f"lang_encoder.gated_cross_attn_layers.{i}.{k}": v for k, v in block.state_dict().items()})
    return {k: v.contiguous() for k, v in out.items()}


def main():
    rng = np.random.default_rng(14)
    pixels = rng.standard_normal((2, 3, IMAGE, IMAGE)).astype(np.float32)
    for seed in range(14, 400):
        model = build(seed)
        new, margins, steps = greedy(model, pixels)
        usable = min(margins) > 1e-3 and EOS not in new and IMAGE_TOKEN not in new and len(set(new)) >= 3
        if usable and greedy(model, pixels[::-1].copy())[0] != new:
            break
    else:
        sys.exit("no seed without near-ties, eos or <image> among the new tokens")
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors(model), os.path.join(OUT, "model.safetensors"))
    np.save(os.path.join(OUT, "pixels.npy"), pixels)
    model["llama"].config.to_json_file(os.path.join(OUT, "config.json"))
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(ROOT, "package", "flamingo", name), OUT)
    reference = {
        "seed": seed,
        "max_new_tokens": MAX_NEW_TOKENS,
        "input_ids": PROMPT,
        "greedy_ids": new,
        "min_margin": min(margins),
        "margins": margins,
        "logits": steps,
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")
    print(f"seed {seed}: greedy {new}, smallest margin {min(margins):.4g}")


if __name__ == "__main__":
    main()
