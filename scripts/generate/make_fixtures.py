"""Builds the tiny generation fixtures under test/fixtures/generate/ with transformers: a LLaVA
(tiny LLaMA + CLIP vision tower) and a BLIP-2 (tiny OPT), each with a real tokenizer.json trained
by the tokenizers library, its processor files, seeded random weights, a committed test image and
what transformers does with them: the processor's input_ids and pixel_values and the greedy ids of
`generate`. vlmc's tests compare its tokenizer, chat template and image preprocessing with these
(no Python needed at test time); the end-to-end test compares its greedy ids.

Run: $VLMC_PYTHON scripts/generate/make_fixtures.py
"""

import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

# Appended, not prepended: scripts/parity has a make_fixtures.py of its own.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    OPTConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "generate")
IMAGE_SIZE = 30
MAX_NEW_TOKENS = 12

CORPUS = [
    "A photo of a cat sitting on a red chair next to the window.",
    "What is shown in this image? Describe the picture in one sentence.",
    "There are two dogs playing in the green grass under a blue sky.",
    "The x-ray shows the chest of a patient; the lungs look clear.",
    "Question: how many people are in the picture? Answer: three people.",
    "A small boat floats on the calm lake at sunset, orange and purple clouds.",
    "USER: <image>\nWhat is this?\nASSISTANT: the answer is yes, no, maybe; colors, shapes and numbers 0 1 2 3 4 5 6 7 8 9.",
]

# llava-hf's llava-1.5 template, without the `{% generation %}` marks that only training uses.
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def train_tokenizer(style: str) -> PreTrainedTokenizerFast:
    """A small BPE: LLaMA-like (Metaspace, bos <s>) or OPT-like (byte level, bos </s>)."""
    if style == "llama":
        specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials, show_progress=False)
        tok.train_from_iterator(CORPUS, trainer)
        bos, eos, pad, unk = "<s>", "</s>", "<pad>", "<unk>"
    else:
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<image>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=360,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(CORPUS, trainer)
        bos, eos, pad, unk = "</s>", "</s>", "<pad>", "<unk>"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    # LLaVA's processor reads the image token from the tokenizer; BLIP-2's registers `<image>` itself.
    extra = {"extra_special_tokens": {"image_token": "<image>"}} if style == "llama" else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk, **extra)


def test_image() -> Image.Image:
    """A 40×34 picture (not square, so resize and crop both matter): gradients and a few shapes."""
    w, h = 40, 34
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse([6, 5, 20, 19], fill=(250, 30, 40))
    draw.rectangle([24, 14, 36, 30], fill=(20, 200, 60))
    draw.line([0, 33, 39, 0], fill=(255, 255, 255), width=2)
    return img


def seeded_init(model: torch.nn.Module, seed: int) -> None:
    """Wider random weights than the default 0.02 so the greedy tokens of a tiny model vary."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() >= 2 or "query_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "bias" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def random_model(cls, config, seed: int, bos: int, eos: int, pad: int):
    torch.manual_seed(0)
    model = cls(config).eval()
    seeded_init(model, seed)
    model.generation_config.bos_token_id = bos
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    return model


def greedy_cases(model, processor, prompts, image, template: bool):
    """The processor's inputs and transformers' greedy ids per prompt, and the smallest gap between
    the best and the second-best logit over all chosen tokens."""
    cases, margin = [], float("inf")
    for prompt in prompts:
        if template:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = processor.apply_chat_template(messages, add_generation_prompt=True)
        else:
            text = prompt
        inputs = processor(images=image, text=text, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, output_scores=True, return_dict_in_generate=True
            )
        ids = out.sequences
        prompt_len = inputs["input_ids"].shape[1]
        # Both models return the prompt's ids followed by the new ones (BLIP-2 passes input_ids on).
        assert ids[0, :prompt_len].tolist() == inputs["input_ids"][0].tolist()
        generated = ids[0, prompt_len:]
        for scores in out.scores:
            top = torch.topk(scores[0], 2).values
            margin = min(margin, float(top[0] - top[1]))
        cases.append(
            {
                "prompt": prompt,
                "text": text,
                "input_ids": inputs["input_ids"][0].tolist(),
                "greedy_ids": generated.tolist(),
                "greedy_text": processor.tokenizer.decode(generated, skip_special_tokens=True),
            }
        )
    return cases, inputs["pixel_values"], margin


def fresh_folder(out) -> None:
    """Empties a fixture folder for remaking, all but its hand-written spec.vlm."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name != "spec.vlm":
            os.remove(os.path.join(out, name))


def save_case(name, model, processor, prompts, image, template: bool) -> None:
    # The smallest logit gap is recorded because near-ties make greedy ids sensitive to the pixels:
    # the libvips resize differs from PIL's by a few levels at edges, so an exact comparison of ids
    # feeds the processor's pixel_values (pixel_values.npy).
    cases, pixels, margin = greedy_cases(model, processor, prompts, image, template)
    out = os.path.join(ROOT, name)
    fresh_folder(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    image.save(os.path.join(out, "image.png"))
    np.save(os.path.join(out, "pixel_values.npy"), pixels.numpy().astype(np.float32))
    tok = processor.tokenizer
    probes = ["Hello world, what is in the image?", "x-ray: lungs 123", " two  spaces", "<image>\nA cat"]
    reference = {
        "made_by": "scripts/generate/make_fixtures.py",
        "max_new_tokens": MAX_NEW_TOKENS,
        "image_token_id": model.config.image_token_id,
        "eos_token_id": model.generation_config.eos_token_id,
        "min_greedy_margin": margin,
        "cases": cases,
        "tokenizer_probes": [
            {"text": t, "ids": tok(t)["input_ids"], "decoded": tok.decode(tok(t)["input_ids"], skip_special_tokens=True)}
            for t in probes
        ],
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")


def llava(image: Image.Image) -> None:
    tokenizer = train_tokenizer("llama")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ["<s>", "</s>", "<pad>", "<image>"]}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=IMAGE_SIZE, patch_size=6, projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
        ),
        image_token_id=ids["<image>"],
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(IMAGE_SIZE // 6) ** 2,
    )
    model = random_model(LlavaForConditionalGeneration, config, 1, ids["<s>"], ids["</s>"], ids["<pad>"])
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
        patch_size=6,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    save_case("llava", model, processor, ["What is shown in this image?", "Describe the picture."], image, True)
    # LLaVA's pad-to-square variant of the processor (do_pad), for the pixel parity test only.
    padded = LlavaImageProcessorPil(
        do_pad=True, size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    pixels = padded(images=image, return_tensors="pt")["pixel_values"].numpy().astype(np.float32)
    np.save(os.path.join(ROOT, "llava", "pixel_values_pad.npy"), pixels)


def blip2(image: Image.Image) -> None:
    tokenizer = train_tokenizer("opt")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ["</s>", "<pad>", "<image>"]}
    config = Blip2Config(
        vision_config=Blip2VisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=IMAGE_SIZE, patch_size=6,
        ),
        qformer_config=Blip2QFormerConfig(
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            encoder_hidden_size=16, vocab_size=64, max_position_embeddings=32,
        ),
        text_config=OPTConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
            max_position_embeddings=128, word_embed_proj_dim=32,
            bos_token_id=ids["</s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
        ),
        num_query_tokens=4,
        image_token_id=ids["<image>"],
    )
    model = random_model(Blip2ForConditionalGeneration, config, 2, ids["</s>"], ids["</s>"], ids["<pad>"])
    processor = Blip2Processor(
        image_processor=BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        num_query_tokens=4,
    )
    save_case("blip2", model, processor, ["Question: what is in the picture? Answer:", "A photo of"], image, False)


if __name__ == "__main__":
    image = test_image()
    llava(image)
    blip2(image)
