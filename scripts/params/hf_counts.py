#!/usr/bin/python3
"""Parameter counts of the transformers classes behind examples/ and std/, built from the published
configurations on the meta device (no weights, no model hub). test/reference-params.test.ts holds
the figures this prints; rerun it when a configuration changes:

    /work/venv/bin/python scripts/params/hf_counts.py
"""

import torch
from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    InstructBlipConfig,
    InstructBlipForConditionalGeneration,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    SiglipVisionConfig,
    SiglipVisionModel,
)


def count(cls, config):
    with torch.device("meta"):
        model = cls(config)
    return sum(p.numel() for p in model.parameters())  # tied weights are one Parameter, counted once


# google/paligemma-3b-pt-224 config.json
PALIGEMMA_TEXT = dict(
    model_type="gemma", hidden_size=2048, intermediate_size=16384, num_attention_heads=8, num_hidden_layers=18,
    num_image_tokens=256, num_key_value_heads=1, vocab_size=257216,
)
PALIGEMMA_VISION = dict(
    model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304, num_attention_heads=16,
    num_hidden_layers=27, num_image_tokens=256, patch_size=14, projection_dim=2048, projector_hidden_act="gelu_fast",
    vision_use_head=False,
)

COUNTS = {
    "paligemma_3b_224": (
        PaliGemmaForConditionalGeneration,
        PaliGemmaConfig(
            text_config=PALIGEMMA_TEXT, vision_config=PALIGEMMA_VISION, projection_dim=2048,
            image_token_index=257152, hidden_size=2048,
        ),
    ),
    # google/gemma-2b config.json
    "gemma_2b": (
        GemmaForCausalLM,
        GemmaConfig(
            vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8,
            num_key_value_heads=1, head_dim=256,
        ),
    ),
    # google/siglip-base-patch16-224, vision tower without its attention-pooling head
    "siglip_base_patch16_224_vision": (SiglipVisionModel, SiglipVisionConfig(vision_use_head=False)),
    # Salesforce/instructblip-vicuna-7b config.json (vision and Q-Former defaults; Vicuna-7B as LLaMA-7B)
    "instructblip_vicuna_7b": (
        InstructBlipForConditionalGeneration,
        InstructBlipConfig(
            text_config=dict(model_type="llama", vocab_size=32001, hidden_size=4096, intermediate_size=11008,
                             num_hidden_layers=32, num_attention_heads=32, rms_norm_eps=1e-6,
                             max_position_embeddings=2048, tie_word_embeddings=False),
            qformer_config=dict(vocab_size=30523),
            num_query_tokens=32,
        ),
    ),
}

if __name__ == "__main__":
    for name, (cls, config) in COUNTS.items():
        print(f"{name}: {count(cls, config):,}")
