#!/usr/bin/env python3
"""Writes test/fixtures/hf-counts.json: transformers' own parameter count for each example model
that mirrors a transformers class, built from the Hub checkpoint's configuration on the meta device
(no memory, no download). test/reference-params.test.ts checks that `vlmc summary` agrees.

    scripts/parity/hf_counts.py
"""

import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
import transformers as T  # noqa: E402

OUT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "hf-counts.json"))

CLIP_L_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                  image_size=336, patch_size=14, projection_dim=768)
# Vicuna-7B v1.5 as llava-hf ships it: 32,000 words plus <image>, <pad> and padding to 32,064.
VICUNA_7B = dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)


def blip2_opt_2_7b():
    vision = T.Blip2VisionConfig(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39,
                                 num_attention_heads=16, image_size=224, patch_size=14, qkv_bias=True)
    qformer = T.Blip2QFormerConfig(vocab_size=30522, encoder_hidden_size=1408)
    # Salesforce/blip2-opt-2.7b: OPT-2.7B with its vocabulary grown to 50,304 for the <image> token.
    text = T.OPTConfig(vocab_size=50304, hidden_size=2560, num_hidden_layers=32, ffn_dim=10240,
                       num_attention_heads=32, max_position_embeddings=2048, word_embed_proj_dim=2560)
    config = T.Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                           text_config=text.to_dict(), num_query_tokens=32)
    return T.Blip2ForConditionalGeneration(config)


def paligemma_3b_224():
    # google/paligemma-3b-pt-224 config.json
    text = dict(model_type="gemma", hidden_size=2048, intermediate_size=16384, num_attention_heads=8,
                num_hidden_layers=18, num_image_tokens=256, num_key_value_heads=1, vocab_size=257216)
    vision = dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                  num_attention_heads=16, num_hidden_layers=27, num_image_tokens=256, patch_size=14,
                  projection_dim=2048, projector_hidden_act="gelu_fast", vision_use_head=False)
    config = T.PaliGemmaConfig(text_config=text, vision_config=vision, projection_dim=2048,
                               image_token_index=257152, hidden_size=2048)
    return T.PaliGemmaForConditionalGeneration(config)


def instructblip_vicuna_7b():
    # Salesforce/instructblip-vicuna-7b config.json (vision and Q-Former defaults; Vicuna-7B as LLaMA-7B)
    text = dict(model_type="llama", vocab_size=32001, hidden_size=4096, intermediate_size=11008,
                num_hidden_layers=32, num_attention_heads=32, rms_norm_eps=1e-6, max_position_embeddings=2048,
                tie_word_embeddings=False)
    config = T.InstructBlipConfig(text_config=text, qformer_config=dict(vocab_size=30523), num_query_tokens=32)
    return T.InstructBlipForConditionalGeneration(config)


MODELS = {
    "examples/clip.vlm#clip": ("CLIPModel (openai/clip-vit-base-patch32)", lambda: T.CLIPModel(T.CLIPConfig())),
    "examples/llava.vlm#llava_1_5_7b": (
        "LlavaForConditionalGeneration (llava-hf/llava-1.5-7b-hf)",
        lambda: T.LlavaForConditionalGeneration(
            T.LlavaConfig(vision_config=CLIP_L_336, text_config=VICUNA_7B, image_token_index=32000)
        ),
    ),
    "examples/llava.vlm#llava_next": (
        "LlavaNextForConditionalGeneration (llava-hf/llava-v1.6-vicuna-7b-hf)",
        lambda: T.LlavaNextForConditionalGeneration(
            T.LlavaNextConfig(vision_config=CLIP_L_336, text_config=VICUNA_7B, image_token_index=32000)
        ),
    ),
    "examples/blip2.vlm#blip2_opt_2_7b": ("Blip2ForConditionalGeneration (Salesforce/blip2-opt-2.7b)", blip2_opt_2_7b),
    "examples/paligemma.vlm#paligemma_3b_224": (
        "PaliGemmaForConditionalGeneration (google/paligemma-3b-pt-224)",
        paligemma_3b_224,
    ),
    "examples/instructblip.vlm#instructblip_vicuna_7b": (
        "InstructBlipForConditionalGeneration (Salesforce/instructblip-vicuna-7b)",
        instructblip_vicuna_7b,
    ),
}


def main():
    counts = {}
    for key, (what, make) in MODELS.items():
        with torch.device("meta"):
            model = make()
        counts[key] = {"class": what, "parameters": sum(p.numel() for p in model.parameters())}
        print(key, counts[key]["parameters"])
    counts["_generated_by"] = f"scripts/parity/hf_counts.py, transformers {T.__version__}"
    with open(OUT, "w") as f:
        json.dump(counts, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
