"""Builds test/fixtures/generate/llava_next/ with transformers: a tiny LlavaNextForConditionalGeneration
(CLIP vision tower, 30 px crops in 6 px patches, a LLaMA) with seeded random weights, the LLaVA
tokenizer of make_fixtures.py, LlavaNextImageProcessorPil with image_grid_pinpoints scaled down from
LLaVA-1.6's, and two images of different aspect ratios (wide 100 × 40, tall 44 × 96) whose best
resolutions are a 1 × 3 and a 3 × 1 grid that unpadding trims (the wide one by transformers'
truncating `int(round(x, 7))`). reference.json holds, per image, the processor's input_ids and
transformers' greedy ids, and a table of AnyRes arithmetic from transformers' own functions
(select_best_resolution, the processor's feature count, the model's unpad_image) for the unit tests;
pixel_values_<image>.npy is the processor's pixels. A third prompt holds both images.

Run: $VLMC_PYTHON scripts/generate/make_llava_next.py
"""

import json
import os
import random
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

# Appended, not prepended: scripts/parity has a make_fixtures.py of its own.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration
from transformers import LlavaNextProcessor
from transformers.image_processing_utils import select_best_resolution
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
from transformers.models.llava_next.modeling_llava_next import (
    get_anyres_image_grid_shape,
    image_size_to_num_patches,
    unpad_image,
)

from make_fixtures import LLAVA_TEMPLATE, MAX_NEW_TOKENS, ROOT, fresh_folder, random_model, train_tokenizer

CROP = 30
PATCH = 6
# The weights seed: one whose greedy choices are not near-ties (min_greedy_margin in reference.json).
SEED = int(os.environ.get("SEED", "7"))
PINPOINTS = [[30, 60], [60, 30], [60, 60], [90, 30], [30, 90]]
# LLaVA-1.6's own pinpoints, for the arithmetic table only.
PINPOINTS_336 = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def picture(width: int, height: int, seed: int) -> Image.Image:
    """Gradients and a few shapes, so that resizing and padding both show in the pixels."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(img)
    r = random.Random(seed)
    for _ in range(3):
        x0, y0 = r.randrange(width - 8), r.randrange(height - 8)
        draw.ellipse([x0, y0, x0 + 8, y0 + 8], fill=(r.randrange(256), r.randrange(256), r.randrange(256)))
    draw.line([0, height - 1, width - 1, 0], fill=(255, 255, 255), width=2)
    return img


def arithmetic(processor: LlavaNextProcessor, pinpoints, crop: int, patch: int, sizes):
    """For each (height, width): transformers' best resolution, grid, unpadded feature grid and token
    count; the model's unpad_image on a tensor of the grid's size must give the processor's count."""
    side = crop // patch
    rows = []
    for h, w in sizes:
        best = select_best_resolution((h, w), pinpoints)
        grid_h, grid_w = get_anyres_image_grid_shape((h, w), pinpoints, crop)
        unpadded = unpad_image(torch.zeros(1, grid_h * side, grid_w * side), (h, w))
        processor.image_processor.image_grid_pinpoints = pinpoints
        processor.patch_size = patch
        count = processor._get_number_of_features(h, w, crop, crop) - 1  # "default": no CLS
        assert count == side * side + unpadded.shape[1] * (unpadded.shape[2] + 1), (h, w)
        rows.append(
            {
                "size": [h, w],
                "best": list(best),
                "grid": [grid_h, grid_w],
                "unpadded": [unpadded.shape[1], unpadded.shape[2]],
                "tokens": count,
            }
        )
    return rows


def packing(model, sizes):
    """The model's own pack_image_features on numbered features (row r of the crops holds r, the
    newline -1): the order of rows it gives is what vlmc's image_index must name."""
    side = (CROP // PATCH) ** 2
    rows = []
    for h, w in sizes:
        crops = image_size_to_num_patches((h, w), PINPOINTS, CROP)
        features = torch.arange(crops * side, dtype=torch.float32).reshape(crops, side, 1)
        packed, _ = model.model.pack_image_features(
            [features], torch.tensor([[h, w]]), "default", image_newline=torch.tensor([-1.0])
        )
        rows.append({"size": [h, w], "rows": [int(v) for v in packed[0][:, 0].tolist()]})
    return rows


def main() -> None:
    tokenizer = train_tokenizer("llama")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ["<s>", "</s>", "<pad>", "<image>"]}
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=CROP, patch_size=PATCH, projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
        ),
        image_token_id=ids["<image>"],
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_grid_pinpoints=PINPOINTS,
        image_seq_length=(CROP // PATCH) ** 2,
    )
    model = random_model(LlavaNextForConditionalGeneration, config, SEED, ids["<s>"], ids["</s>"], ids["<pad>"])
    with torch.no_grad():  # seeded_init leaves 1-D parameters alone; the newline must matter
        model.model.image_newline.copy_(torch.randn(32, generator=torch.Generator().manual_seed(4)) * 0.5)
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessorPil(
            size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP}, image_grid_pinpoints=PINPOINTS
        ),
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    images = {"wide": picture(100, 40, 1), "tall": picture(44, 96, 2)}
    # One image each, then both in one prompt (their tags expand to 95 and 91 tokens, in that order).
    requests = [(["wide"], "What is shown in this image?"), (["tall"], "Describe the picture."),
                (["wide", "tall"], "Compare the two pictures.")]
    out = os.path.join(ROOT, "llava_next")
    fresh_folder(out)
    for name, image in images.items():
        image.save(os.path.join(out, f"{name}.png"))
        pixels = processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
        np.save(os.path.join(out, f"pixel_values_{name}.npy"), pixels.numpy().astype(np.float32))
    cases, margin = [], float("inf")
    for names, prompt in requests:
        content = [{"type": "image"} for _ in names] + [{"type": "text", "text": prompt}]
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = processor(images=[images[n] for n in names], text=text, return_tensors="pt")
        with torch.no_grad():
            result = model.generate(
                **inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, output_scores=True, return_dict_in_generate=True
            )
        prompt_len = inputs["input_ids"].shape[1]
        generated = result.sequences[0, prompt_len:]
        for scores in result.scores:
            top = torch.topk(scores[0], 2).values
            margin = min(margin, float(top[0] - top[1]))
        cases.append(
            {
                "images": [f"{n}.png" for n in names],
                "image_sizes": inputs["image_sizes"].tolist(),
                "prompt": prompt,
                "text": text,
                "input_ids": inputs["input_ids"][0].tolist(),
                "image_tokens": int((inputs["input_ids"][0] == ids["<image>"]).sum()),
                "greedy_ids": generated.tolist(),
                "greedy_text": tokenizer.decode(generated, skip_special_tokens=True),
            }
        )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    r = random.Random(14)
    sizes = [(40, 100), (96, 44), (30, 30), (1, 1), (29, 31), (100, 100), (61, 59), (33, 97)]
    sizes += [(r.randrange(1, 400), r.randrange(1, 400)) for _ in range(40)]
    big = [(480, 640), (640, 480), (1080, 1920), (336, 336), (700, 200), (200, 700), (1000, 1001), (1, 5000)]
    big += [(r.randrange(1, 3000), r.randrange(1, 3000)) for _ in range(40)]
    reference = {
        "made_by": "scripts/generate/make_llava_next.py",
        "max_new_tokens": MAX_NEW_TOKENS,
        "image_token_id": ids["<image>"],
        "min_greedy_margin": margin,
        "cases": cases,
        "packing": packing(model, [(40, 100), (96, 44), (60, 60), (59, 61), (100, 30), (7, 90)]),
        "arithmetic": [
            {"crop": CROP, "patch": PATCH, "pinpoints": PINPOINTS, "rows": arithmetic(processor, PINPOINTS, CROP, PATCH, sizes)},
            {"crop": 336, "patch": 14, "pinpoints": PINPOINTS_336, "rows": arithmetic(processor, PINPOINTS_336, 336, 14, big)},
        ],
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")


if __name__ == "__main__":
    main()
