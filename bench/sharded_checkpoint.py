"""A full-size sharded checkpoint folder with seeded random weights, as transformers lays it out.

The model is built on the meta device (no memory), so its key names and shapes are transformers'
own; each shard is then filled with random values and written with safetensors, with
`model.safetensors.index.json` beside it, like `save_pretrained(max_shard_size=...)`. Memory stays
near one shard, so a 7B checkpoint (28 GB in fp32) is written on a 24 GB machine.

    python bench/sharded_checkpoint.py --model llava_1_5_7b --out bench/out/llava-1.5-7b-sharded
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration  # noqa: E402

MODELS = {
    "llava_1_5_7b": lambda: LlavaForConditionalGeneration(
        LlavaConfig(
            vision_config=CLIPVisionConfig(
                hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
            ),
            text_config=LlamaConfig(
                vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
            ),
            image_token_index=32000,
            vision_feature_layer=-2,
        )
    ),
}


# transformers 5 keeps LLaVA as model.{vision_tower, multi_modal_projector, language_model} + lm_head in
# memory, and save_pretrained writes the older names (seen in test/fixtures/generate/llava).
SAVED_NAMES = [
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
]


def saved_name(key: str) -> str:
    for old, new in SAVED_NAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="llava_1_5_7b", choices=sorted(MODELS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--shard-bytes", type=int, default=5 * 10**9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with torch.device("meta"):
        model = MODELS[args.model]()
    os.makedirs(args.out, exist_ok=True)
    model.config.save_pretrained(args.out)
    tensors = [(saved_name(k), tuple(v.shape)) for k, v in model.state_dict().items()]
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for key, shape in tensors:
        nbytes = 4 * int(np.prod(shape))
        if shards[-1] and size + nbytes > args.shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((key, shape))
        size += nbytes
    rng = np.random.default_rng(args.seed)
    weight_map = {}
    total = 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        data = {k: (rng.standard_normal(s, dtype=np.float32) * 0.02) for k, s in shard}
        save_file(data, os.path.join(args.out, name), metadata={"format": "pt"})
        total += sum(v.nbytes for v in data.values())
        weight_map.update({k: name for k, _ in shard})
        del data
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"{len(tensors)} tensors, {total / 1e9:.2f} GB in {len(shards)} shards under {args.out}")


if __name__ == "__main__":
    main()
