#!/usr/bin/env python3
"""Builds the parity fixtures under test/fixtures/parity/ that are not transformers-only (those are
hf_fixtures.py's): for every case a small spec (`spec.vlm`), random weights (`weights.safetensors`,
or `weights.recipe.json` for the ResNet-sized cases, see common.py; the seed system also writes the
checkpoints its spec names), inputs and the reference outputs (`<graph>.<name>.in.npy` /
`<graph>.<name>.out.npy`) and a manifest (`case.json`). test/parity.test.ts compiles each spec with
its weights, runs it in onnxruntime and compares; it needs no Python.

The references are the libraries themselves: torchvision (VisionTransformer, ResNet), timm (Eva,
configured as LAVIS's EVA ViT-g; Mlp), transformers (BertModel, Blip2QFormerModel, GemmaRMSNorm,
PaliGemma). Only what no installable package holds comes from mirrors.py: open_flamingo's
Perceiver Resampler and MobileVLM's LDPBlock (which composes torchvision and timm classes). Every
file keeps the library's own keys; the spec's `weights` layouts map them to vlmc's names, as
docs/checkpoints.md lists per std block. References run in float64, so the tolerance measures
vlmc's float32 error alone.

Needs torch, torchvision, timm and transformers (the interpreter on the first line has them):
    scripts/parity/make_fixtures.py [CASE...]
With case names, only those folders are rewritten.
"""

import json
import math
import os
import re
import shutil
import sys
import zlib
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import save_model
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    RECIPE_GENERATOR,
    Init,
    import_torchvision,
    perceiver_rules,
    randomize,
    renamer,
    run_double,
    save_pretrained,
    weights_of,
    write_safetensors,
    write_spec,
)

import_torchvision()
import timm  # noqa: E402
import torchvision  # noqa: E402
import transformers as T  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

import mirrors as M  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "parity"))
TOLERANCE = 1e-4
# Above this many bytes of weights a case stores a recipe instead of a safetensors file.
RECIPE_ABOVE_BYTES = 1_000_000

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Case:
    def __init__(self, description, reference, spec, model, key_map, graphs, write=None):
        self.description = description
        self.reference = reference
        self.spec = spec
        self.model = model
        self.key_map = key_map  # reference key → key in weights.safetensors / the recipe; None: no such file
        # graph → (inputs {name: ndarray}, fn(**inputs) → {name: tensor})
        self.graphs = graphs
        # write(folder): checkpoints the library writes after randomising: those the spec's `weights … from`
        # declarations name, or without a key map `checkpoint/`, the case's weights.
        self.write = write


def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def additive(keep):
    """0/1 keep mask → additive float32 mask (0 kept, -10000 dropped), as BERT/LAVIS build them."""
    return ((1.0 - keep.astype(np.float32)) * -10000.0).astype(np.float32)


def padding_mask(rng, b, t, min_keep):
    keep = np.ones((b, t), dtype=np.int64)
    for i in range(1, b):
        keep[i, rng.integers(min_keep, t + 1) :] = 0
    return keep


class Container(nn.Module):
    def __init__(self, **parts):
        super().__init__()
        for k, v in parts.items():
            if isinstance(v, nn.Parameter):
                self.register_parameter(k, v)
            else:
                setattr(self, k, v)


def resnet_tokens(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return x.flatten(2).transpose(1, 2)


# ---- std blocks -----------------------------------------------------------------------------------


@case
def vit(rng):
    net = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64, num_classes=10)
    pixels = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    return Case(
        "std vit (torch_mha, vit_mlp, vit_block, vit_encoder, vit_heads): 32 px, patch 8, width 32, 2 layers, 4 heads",
        "torchvision.models.VisionTransformer",
        f"""import {{ vit }} from "std"

model parity_vit {{
  encoder net = vit(image: 32, patch: 8, width: 32, depth: 2, num_heads: 4, mlp: 64, classes: 10)
  // torchvision's state dict (the path comes from --weights)
  weights net {vit_layout(2)}

  forward(pixels: f32[B, 3, 32, 32]) {{
    return logits: net(pixels)
  }}
}}
""",
        Container(net=net),
        renamer((r"^net\.", "")),
        {"forward": ({"pixels": pixels}, lambda pixels: {"logits": net(pixels)})},
    )


def _resnet_case(block, expansion, rng, name):
    net = ResNet(block, [2, 1, 1, 1], num_classes=10)
    pixels = rng.standard_normal((2, 3, 64, 64), dtype=np.float32)
    kind = "BasicBlock" if expansion == 1 else "Bottleneck"
    graphs = {"forward": ({"pixels": pixels}, lambda pixels: {"logits": net(pixels)})}
    tokens_graph = ""
    if expansion == 1:
        graphs["tokens"] = ({"pixels": pixels}, lambda pixels: {"tokens": resnet_tokens(net, pixels)})
        tokens_graph = """
  graph tokens(pixels: f32[B, 3, 64, 64]) {
    return tokens: net(pixels, tokens: true)
  }
"""
    return Case(
        f"std resnet with {kind} (resnet_block, resnet_downsample): layers [2, 1, 1, 1], 64 px, 10 classes"
        + ("; `tokens: true` as a second graph" if expansion == 1 else ""),
        f"torchvision.models.resnet.ResNet({kind}, [2, 1, 1, 1])",
        f"""import {{ resnet }} from "std"

model {name} {{
  encoder net = resnet(layers: [2, 1, 1, 1], expansion: {expansion}, classes: 10)
  // torchvision's state dict (the path comes from --weights)
  weights net {resnet_layout([2, 1, 1, 1], expansion, classes=True)}

  forward(pixels: f32[B, 3, 64, 64]) {{
    return logits: net(pixels)
  }}
{tokens_graph}}}
""",
        Container(net=net),
        renamer((r"^net\.", "")),
        graphs,
    )


@case
def resnet_basic(rng):
    return _resnet_case(BasicBlock, 1, rng, "parity_resnet_basic")


@case
def resnet_bottleneck(rng):
    return _resnet_case(Bottleneck, 4, rng, "parity_resnet_bottleneck")


@case
def eva_vit(rng):
    # timm's Eva configured as LAVIS's create_eva_vit_g builds its VisionTransformer (lavis/models/eva_vit.py):
    # fused qkv without bias plus q_bias / v_bias (the key's bias a zero buffer), erf-GELU MLP fc1/fc2 of
    # int(width · mlp_ratio), pre-norm blocks with LayerNorm eps 1e-6, class token, absolute positions; no
    # rotary embedding, no layer scale (LAVIS's init_values=None), no final norm, pooling or head.
    net = timm.models.eva.Eva(
        img_size=28, patch_size=14, num_classes=0, embed_dim=32, depth=2, num_heads=4, qkv_bias=True, qkv_fused=True,
        mlp_ratio=80 / 32, norm_layer=partial(nn.LayerNorm, eps=1e-6), init_values=None, class_token=True,
        use_abs_pos_emb=True, use_rot_pos_emb=False, use_post_transformer_norm=False, use_fc_norm=False,
    )
    pixels = rng.standard_normal((2, 3, 28, 28), dtype=np.float32)

    def first_layer(pixels):
        (tokens, prefix), = net.forward_intermediates(pixels, indices=[0], return_prefix_tokens=True, output_fmt="NLC", intermediates_only=True)
        return torch.cat([prefix, tokens], dim=1)

    return Case(
        "std eva_vit (patch embed with bias, qkv without bias plus q_bias/v_bias, layer selection)",
        f"timm {timm.__version__} Eva configured as LAVIS's EVA ViT-g (forward_features; forward_intermediates for layer 1)",
        """import { eva_vit } from "std"

model parity_eva_vit {
  encoder net = eva_vit(image: 28, patch: 14, width: 32, depth: 2, heads: 4, mlp: 80)
  weights net { "": "" } // timm's state-dict keys are LAVIS's: no map

  forward(pixels: f32[B, 3, 28, 28]) {
    return last: net(pixels), first_layer: net(pixels, layer: 1)
  }
}
""",
        Container(net=net),
        renamer((r"^net\.", "")),
        {"forward": ({"pixels": pixels}, lambda pixels: {"last": net.forward_features(pixels), "first_layer": first_layer(pixels)})},
    )


@case
def perceiver(rng):
    net = M.PerceiverResampler(dim=32, depth=2, dim_head=8, heads=2, num_latents=4, ff_mult=2)
    x = rng.standard_normal((2, 6, 32), dtype=np.float32)
    return Case(
        "std perceiver_resampler (latents attend to [media; latents], flamingo_ff feed-forward)",
        "open_flamingo PerceiverResampler (mirrors.py, open_flamingo's helpers.py line by line)",
        f"""import {{ perceiver_resampler }} from "std"

model parity_perceiver {{
  fusion net = perceiver_resampler(32, depth: 2, heads: 2, head_dim: 8, num_latents: 4, ffn_mult: 2)
  // open_flamingo's PerceiverResampler state dict (the path comes from --weights)
  weights net {{ "": "", {", ".join(perceiver_rules(2))} }}

  forward(x: f32[B, S, 32]) {{
    return latents: net(x)
  }}
}}
""",
        Container(net=net),
        renamer((r"^net\.", "")),
        {"forward": ({"x": x}, lambda x: {"latents": net(x[:, None, None])[:, 0]})},
    )


def llava_projector(dim, out):
    """transformers' LlavaMultiModalProjector (linear_1, GELU, linear_2) from dim to out."""
    # One attention head each, so that any width makes a valid config; the projector reads the widths alone.
    config = T.LlavaConfig(vision_config={"model_type": "clip_vision_model", "hidden_size": dim, "num_attention_heads": 1},
                           text_config={"model_type": "llama", "hidden_size": out, "num_attention_heads": 1})
    return T.models.llava.modeling_llava.LlavaMultiModalProjector(config)


class LogitScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.init_rules = {"logit_scale": ("uniform", 1.5, 2.5)}


@case
def projectors_heads(rng):
    parts = Container(
        lin=nn.Linear(16, 24),
        mlp2=llava_projector(16, 24),
        quick=timm.layers.Mlp(16, 32, 16, act_layer=timm.layers.QuickGELU),
        plain=timm.layers.Mlp(16, 20, 12, act_layer=nn.ReLU, bias=False),
        cls_none=nn.Linear(16, 5),
        cls_first=nn.Linear(16, 5),
        cls_mean=nn.Linear(16, 5),
        contrast=LogitScale(),
        itm=nn.Linear(16, 2),
        lm=nn.Linear(16, 30, bias=False),
    )
    x = rng.standard_normal((2, 7, 16), dtype=np.float32)
    a = rng.standard_normal((3, 16), dtype=np.float32)
    b = rng.standard_normal((4, 16), dtype=np.float32)

    def forward(x, a, b):
        an = a / a.norm(dim=-1, keepdim=True)
        bn = b / b.norm(dim=-1, keepdim=True)
        logits = parts.contrast.logit_scale.exp() * an @ bn.t()
        return {
            "linear_projector": parts.lin(x),
            "mlp2x_gelu": parts.mlp2(x),
            "mlp_quick_gelu": parts.quick(x),
            "mlp_relu_nobias": parts.plain(x),
            "classifier_none": parts.cls_none(a),
            "classifier_cls": parts.cls_first(x[:, 0]),
            "classifier_mean": parts.cls_mean(x.mean(1)),
            "logits_per_a": logits,
            "logits_per_b": logits.t(),
            "itm": parts.itm(x).mean(1),
            "lm_head": parts.lm(x),
            "tied_lm_head": x @ parts.lm.weight.t(),
        }

    return Case(
        "std projectors (linear_projector, mlp2x_gelu, mlp with quick_gelu / relu without bias) and heads "
        "(classifier none/cls/mean, contrastive_head, itm_head, lm_head, tied_lm_head)",
        "transformers LlavaMultiModalProjector, timm.layers.Mlp (QuickGELU; ReLU without bias), torch.nn.Linear compositions as in "
        "CLIPModel and BLIP-2's itm_head",
        """import {
  linear_projector,
  mlp2x_gelu,
  mlp,
  classifier,
  contrastive_head,
  itm_head,
  lm_head,
  tied_lm_head,
} from "std"

model parity_projectors_heads {
  fusion lin = linear_projector(16, 24)
  fusion mlp2 = mlp2x_gelu(16, 24)
  fusion quick = mlp(16, hidden: 32, act: quick_gelu)
  fusion plain = mlp(16, hidden: 20, out: 12, act: relu, bias: false)
  head cls_none = classifier(16, 5)
  head cls_first = classifier(16, 5, pool: "cls")
  head cls_mean = classifier(16, 5, pool: "mean")
  head contrast = contrastive_head(init: 2.0)
  head itm = itm_head(16)
  head lm = lm_head(16, 30)
  head tied = tied_lm_head()

  forward(x: f32[B, T, 16], a: f32[N, 16], b: f32[M, 16]) {
    per_a, per_b = contrast(a, b)
    return linear_projector: lin(x),
      mlp2x_gelu: mlp2(x),
      mlp_quick_gelu: quick(x),
      mlp_relu_nobias: plain(x),
      classifier_none: cls_none(a),
      classifier_cls: cls_first(x),
      classifier_mean: cls_mean(x),
      logits_per_a: per_a,
      logits_per_b: per_b,
      itm: itm(x),
      lm_head: lm(x),
      tied_lm_head: tied(x, lm.weight)
  }
}
""",
        parts,
        renamer(),
        {"forward": ({"x": x, "a": a, "b": b}, forward)},
    )


@case
def lang_primitives(rng):
    """The primitives issue 16 added, each against torch's own function or HF's class."""
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm

    parts = Container(
        conv=nn.Conv2d(3, 4, 3, padding=1),
        norm=GemmaRMSNorm(8, eps=1e-6),
        q=nn.Linear(8, 8),
        k=nn.Linear(8, 8),
        v=nn.Linear(8, 8),
    )
    img = rng.standard_normal((2, 3, 10, 10), dtype=np.float32)
    x = rng.standard_normal((2, 6, 8), dtype=np.float32)
    lengths = np.array([2, 4], dtype=np.int64)

    def prefix_attention(x, prefix):
        b, t, _ = x.shape
        heads = lambda y: y.view(b, t, 2, 4).transpose(1, 2)  # noqa: E731
        i = torch.arange(t).view(t, 1)
        j = torch.arange(t).view(1, t)
        allowed = (j <= i) | (j < prefix.view(-1, 1, 1, 1))
        y = nn.functional.scaled_dot_product_attention(heads(parts.q(x)), heads(parts.k(x)), heads(parts.v(x)), attn_mask=allowed)
        return y.transpose(1, 2).reshape(b, t, 8)

    def forward(img, x, lengths):
        h = parts.conv(img)
        t = x.shape[1]
        keep = (torch.arange(t) < t - 2).to(x.dtype)
        return {
            "hardswish": nn.functional.hardswish(h),
            "hardsigmoid": nn.functional.hardsigmoid(h),
            "relu6": nn.functional.relu6(h * 4),
            "clamp": torch.clamp(h, min=-0.5, max=0.25),
            "clamp_min": torch.clamp(h, min=0.1),
            "pool_uneven": nn.functional.adaptive_avg_pool2d(h, 3),
            "pool_grid": nn.functional.adaptive_avg_pool2d(h, (5, 2)).flatten(2).transpose(1, 2),
            "gemma_norm": parts.norm(x),
            "prefix_per_sample": prefix_attention(x, lengths),
            "prefix_static": prefix_attention(x, torch.tensor([3, 3])),
            "symbol_scalar": x * keep.view(1, t, 1) / t,
        }

    return Case(
        "primitives for PaliGemma and MobileVLM: hardswish, hardsigmoid, relu6, clamp, adaptive_avg_pool2d (even and uneven "
        "windows), isqrt, Gemma's (1 + weight) RMSNorm, prefix-LM attention (per-sample and static prefix), sizes as scalars",
        "torch.nn.functional (hardswish, hardsigmoid, relu6, adaptive_avg_pool2d, scaled_dot_product_attention with a bool "
        "mask), torch.clamp, transformers' GemmaRMSNorm",
        """model parity_lang_primitives {
  encoder conv = conv2d(3, 4, 3, padding: 1)
  encoder norm = rms_norm(8, offset: 1.0)
  encoder q = linear(8, 8)
  encoder k = linear(8, 8)
  encoder v = linear(8, 8)

  forward(img: f32[B, 3, 10, 10], x: f32[B, T, 8], lengths: i64[B]) {
    h = conv(img)
    grid = isqrt(10)                                     // 3: the pooled grid's side
    keep = cast(arange(T) < T - 2, f32)                  // a size meets a tensor
    hq = q(x)
    hk = k(x)
    hv = v(x)
    return hardswish: hardswish(h),
      hardsigmoid: hardsigmoid(h),
      relu6: relu6(h * 4),
      clamp: clamp(h, min: -0.5, max: 0.25),
      clamp_min: clamp(h, min: 0.1),
      pool_uneven: adaptive_avg_pool2d(h, grid),
      pool_grid: transpose(flatten(adaptive_avg_pool2d(h, [5, 2]), start: 2), [0, 2, 1]),
      gemma_norm: norm(x),
      prefix_per_sample: attention(hq, hk, hv, heads: 2, causal: true, prefix: lengths),
      prefix_static: attention(hq, hk, hv, heads: 2, causal: true, prefix: 3),
      symbol_scalar: x * unsqueeze(unsqueeze(keep, 0), 2) / T
  }
}
""",
        parts,
        renamer(),
        {"forward": ({"img": img, "x": x, "lengths": lengths}, forward)},
    )


@case
def paligemma(rng):
    """std siglip_vision + paligemma_projector + gemma (prefix-LM) against HF PaliGemmaForConditionalGeneration."""
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    image_token = 299
    config = PaliGemmaConfig(
        text_config=dict(
            model_type="gemma", vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=1, head_dim=8, max_position_embeddings=64, num_image_tokens=4,
        ),
        vision_config=dict(
            model_type="siglip_vision_model", image_size=28, patch_size=14, hidden_size=16, intermediate_size=32,
            num_hidden_layers=1, num_attention_heads=2, projection_dim=32, num_image_tokens=4, vision_use_head=False,
        ),
        projection_dim=32, image_token_index=image_token, hidden_size=32,
    )
    config._attn_implementation = "eager"
    net = PaliGemmaForConditionalGeneration(config)
    pixels = rng.standard_normal((2, 3, 28, 28), dtype=np.float32)
    prompt = rng.integers(0, image_token, (2, 3)).astype(np.int64)
    suffix = rng.integers(0, image_token, (2, 4)).astype(np.int64)

    def forward(pixels, prompt, suffix):
        b = prompt.shape[0]
        ids = torch.cat([torch.full((b, 4), image_token), prompt, suffix], dim=1)
        token_type_ids = torch.cat([torch.zeros(b, 4 + prompt.shape[1]), torch.ones(b, suffix.shape[1])], dim=1).long()
        out = net(input_ids=ids, pixel_values=pixels, token_type_ids=token_type_ids)
        return {"logits": out.logits}

    return Case(
        "PaliGemma at tiny size: std siglip_vision, paligemma_projector and gemma with prefix-LM attention over the "
        "image and the prompt, causal over the suffix; Gemma's (1 + weight) norms, tied head, √width embedding scale",
        "transformers PaliGemmaForConditionalGeneration, save_pretrained (token_type_ids 0 on image and prompt, 1 on the "
        "suffix)",
        """import { siglip_vision, paligemma_projector, gemma } from "std"

model parity_paligemma {
  encoder vision = siglip_vision(image: 28, patch: 14, width: 16, depth: 1, heads: 2, mlp: 32)
  fusion projector = paligemma_projector(16, 32)
  encoder llm = gemma(vocab: 300, width: 32, depth: 2, heads: 4, kv_heads: 1, head_dim: 8, mlp: 64, context: 64)
  // what PaliGemmaForConditionalGeneration.save_pretrained writes (transformers 5 saves the Hub's
  // top-level names, without the vision tower's `vision_model.` level); the tied head is absent
  weights {
    "vision_tower.": "vision.",
    "multi_modal_projector.": "projector.",
    "language_model.model.": "llm.",
  }

  forward(pixels: f32[B, 3, 28, 28], prompt: i64[B, P], suffix: i64[B, S]) {
    image = projector(vision(pixels)) / 32 ** 0.5
    text = concat(llm.embed_tokens(prompt), llm.embed_tokens(suffix), axis: 1)
    return logits: llm(concat(image, text, axis: 1), prefix: 4 + P)
  }
}
""",
        net,
        None,
        {"forward": ({"pixels": pixels, "prompt": prompt, "suffix": suffix}, forward)},
        write=lambda folder: save_pretrained(net, os.path.join(folder, "checkpoint")),
    )


def ldp_layout():
    """std ldp_projector's key map for MobileVLM's LDPBlock state dict (std/mobilevlm.vlm)."""
    rules = ['"mlp.1.": "mlp.fc1."', '"mlp.3.": "mlp.fc2."']
    parts = (("block.0.0.", "dw_conv."), ("block.0.1.", "dw_norm."), ("block.1.", "se."), ("block.2.0.", "project_conv."),
             ("block.2.1.", "project_norm."))
    rules += [f'"mb_block.{k}.{a}": "mb_block.{k - 1}.{b}"' for k in (1, 2) for a, b in parts]
    return "{ " + ", ".join(rules) + " }"


@case
def mobilevlm_ldp(rng):
    net = M.LDPBlock(SimpleNamespace(mm_hidden_size=12, hidden_size=32))
    x = rng.standard_normal((2, 36, 12), dtype=np.float32)
    return Case(
        "std ldp_projector (MobileVLM's lightweight downsample projector) on a 6×6 token grid: GELU MLP, two MobileNetV3 "
        "inverted residuals (depthwise stride 1 and 2, LayerNorm2d, hardswish, hardsigmoid squeeze-excite) → 9 tokens",
        "MobileVLM's LDPBlock (mirrors.py, verbatim) from torchvision's InvertedResidual and SqueezeExcitation and timm's "
        "LayerNormAct2d",
        f"""import {{ ldp_projector }} from "std"

model parity_mobilevlm_ldp {{
  fusion projector = ldp_projector(12, 32)
  // MobileVLM's LDPBlock state dict (the path comes from --weights)
  weights projector {ldp_layout()}

  forward(x: f32[B, 36, 12]) {{
    return projector(x)
  }}
}}
""",
        Container(projector=net),
        renamer((r"^projector\.", "")),
        {"forward": ({"x": x}, lambda x: {"output": net(x)})},
    )


# ---- seed systems (examples/*.vlm at tiny sizes) --------------------------------------------------


def vit_layout(depth):
    """std vit's key map for a torchvision VisionTransformer state dict: `encoder_layer_{i}` and the
    MLP's nn.Sequential indices named (std/vit.vlm)."""
    rules = ['"": ""', '"encoder.layers.encoder_layer_": "encoder.layers."']
    for i in range(depth):
        layer = f"encoder.layers.encoder_layer_{i}.mlp."
        rules += [f'"{layer}0.": "encoder.layers.{i}.mlp.linear_1."', f'"{layer}3.": "encoder.layers.{i}.mlp.linear_2."']
    return "{ " + ", ".join(rules) + " }"


def resnet_layout(layers, expansion, classes=False):
    """std resnet's key map for a torchvision ResNet state dict: each projection shortcut's
    nn.Sequential indices named (std/resnet.vlm); without `classes`, the classifier dropped."""
    rules = ['"": ""'] if classes else ['"": ""', '"fc.": none']
    for i, blocks in enumerate(layers):
        if blocks and (i > 0 or expansion > 1):  # block 0 of layer1 keeps its shape in BasicBlock ResNets
            rules += [f'"layer{i + 1}.0.downsample.{a}.": "layer{i + 1}.0.downsample.{b}."' for a, b in (("0", "conv"), ("1", "bn"))]
    return "{ " + ", ".join(rules) + " }"


@case
def seed_healthcare(rng):
    # torchvision's ResNet with its classifier as a torchvision checkpoint has one (dropped by the key map),
    # transformers' BertModel and Blip2QFormerModel, BLIP-2's query tokens ([1, Q, W], a top-level key beside
    # `qformer.` as Blip2ForConditionalGeneration holds them), the new ln_vision and outcome head.
    note = T.BertModel(T.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, max_position_embeddings=16))
    qformer = T.Blip2QFormerModel(T.Blip2QFormerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                       intermediate_size=64, encoder_hidden_size=512,
                                                       cross_attention_frequency=2))
    fusion = Container(
        query_tokens=nn.Parameter(torch.zeros(1, 4, 32)), qformer=qformer, ln_vision=nn.LayerNorm(512),
        outcome=nn.Linear(64, 2),
    )
    model = Container(image=ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10), note=note, fusion=fusion)
    pixels = rng.standard_normal((2, 3, 64, 64), dtype=np.float32)
    ids = rng.integers(0, 60, (2, 9))
    keep = padding_mask(rng, 2, 9, 4)
    mask = additive(keep)[:, None, None, :]

    def queries(pixels):
        e = fusion.ln_vision(resnet_tokens(model.image, pixels))
        return qformer(query_embeds=fusion.query_tokens.expand(e.shape[0], -1, -1), encoder_hidden_states=e).last_hidden_state

    def forward(pixels, ids, mask):
        # BertModel takes the 0/1 padding mask; the spec, as examples/healthcare.vlm, the additive one made from it.
        note_feature = note(input_ids=ids, attention_mask=(mask[:, 0, 0] == 0).long()).pooler_output
        return {"logits": fusion.outcome(torch.cat([queries(pixels).mean(1), note_feature], dim=1))}

    def write(folder):
        save_pretrained(note, os.path.join(folder, "checkpoint", "note"))
        # The clinical model's trained part, saved as one torch module (safetensors' save_model).
        save_model(fusion, os.path.join(folder, "checkpoint", "fusion.safetensors"))

    return Case(
        "seed system examples/healthcare.vlm at tiny size: ResNet feature map as tokens, ln_vision, Q-Former, pooled BERT note "
        "feature with a padding mask, linear classifier; image_queries graph. Loaded from a torchvision ResNet state dict "
        "(recipe, with its classifier), BertModel.save_pretrained, and the fusion part's state dict (Blip2QFormerModel under "
        "`qformer.`, top-level query_tokens)",
        "torchvision ResNet(BasicBlock, [1, 1, 1, 1]) + transformers BertModel (pooler_output, attention_mask) + transformers "
        "Blip2QFormerModel on BLIP-2's query_tokens",
        f"""import {{ resnet, bert, qformer, classifier }} from "std"

const OUTCOMES = 2
const NOTE_TOKENS = 16

model seed_healthcare {{
  encoder image = resnet(layers: [1, 1, 1, 1], expansion: 1, classes: 0) frozen
  encoder note = bert(vocab: 60, width: 32, depth: 2, heads: 4, ffn: 64, positions: 16) frozen
  fusion ln_vision = layer_norm(512)
  fusion qformer = qformer(width: 32, depth: 2, heads: 4, ffn: 64, queries: 4, kv_width: 512, cross_every: 2)
  head outcome = classifier(2 * 32, OUTCOMES)

  // a torchvision ResNet state dict (the path comes from --weights)
  weights image {resnet_layout([1, 1, 1, 1], 1)}
  weights note from "checkpoint/note" {{ "": "" }}
  weights qformer from "checkpoint/fusion.safetensors" {{ "qformer.": "", "query_tokens": "query_tokens" }}
  weights ln_vision from "checkpoint/fusion.safetensors" {{ "ln_vision.": "" }}
  weights outcome from "checkpoint/fusion.safetensors" {{ "outcome.": "" }}

  forward(pixels: f32[B, 3, 64, 64], ids: i64[B, T <= NOTE_TOKENS], mask: f32[B, 1, 1, T]) {{
    patches = image(pixels, tokens: true) // [B, 4, 512]
    expect tokens(patches) == 4
    queries = qformer(ln_vision(patches)) // [B, 4, 32]
    expect tokens(queries) == 4
    note_feature = note(ids, mask: mask, pooled: true) // [B, 32]
    fused = concat(mean(queries, axis: 1), note_feature, axis: 1)
    return logits: outcome(fused)
  }}

  graph image_queries(pixels: f32[B, 3, 64, 64]) {{
    return queries: qformer(ln_vision(image(pixels, tokens: true)))
  }}

  stage align {{ train ln_vision, qformer }}
  stage finetune {{ train ln_vision, qformer, outcome }}
}}
""",
        model,
        renamer((r"^image\.", ""), (r"^(note|fusion)\.", None)),  # the recipe holds the ResNet alone
        {
            "forward": ({"pixels": pixels, "ids": ids, "mask": mask}, forward),
            "image_queries": ({"pixels": pixels}, lambda pixels: {"queries": queries(pixels)}),
        },
        write=write,
    )


# ---- writing ---------------------------------------------------------------------------------------


def param_bytes(model):
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def build(name):
    seed = seed_of(name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    c = CASES[name](rng)
    model = c.model
    mode = "recipe" if param_bytes(model) > RECIPE_ABOVE_BYTES else "torch"
    init = Init(mode, seed)
    randomize(model, init)
    model.eval()
    # Without a key map the case's own checkpoint folder (c.write) is the weights, as a user's would be.
    weights, sources = weights_of(model, c.key_map) if c.key_map else ({}, {})

    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    write_spec(os.path.join(folder, "spec.vlm"), c.spec)
    if c.write:
        c.write(folder)
    if not c.key_map:
        weights_file = "checkpoint"
    elif mode == "torch":
        weights_file = "weights.safetensors"
        write_safetensors(os.path.join(folder, weights_file), weights)
    else:
        weights_file = "weights.recipe.json"
        tensors = []
        for target in sorted(weights):
            s, scale, offset = init.recipe[sources[target]]
            sample = [float(v) for v in weights[target].reshape(-1)[:2]]
            tensors.append({"name": target, "shape": list(weights[target].shape), "seed": s, "scale": scale, "offset": offset, "sample": sample})
        with open(os.path.join(folder, weights_file), "w") as f:
            json.dump({"generator": RECIPE_GENERATOR, "tensors": tensors}, f, indent=1)
            f.write("\n")

    model.double()
    graphs = {}
    report = []
    for graph, (inputs, fn) in c.graphs.items():
        outputs = run_double(fn, inputs)
        entry = {"inputs": {}, "outputs": {}}
        for k, v in inputs.items():
            file = f"{graph}.{k}.in.npy"
            np.save(os.path.join(folder, file), np.array(v, order="C"))
            entry["inputs"][k] = file
        for k, v in outputs.items():
            file = f"{graph}.{k}.out.npy"
            np.save(os.path.join(folder, file), np.array(v, dtype=np.float32, order="C"))
            entry["outputs"][k] = file
            report.append(f"{graph}.{k} {list(v.shape)} max|y| {np.abs(v).max():.3g}")
        graphs[graph] = entry
    manifest = {
        "description": c.description,
        "reference": c.reference,
        "weights": weights_file,
        "tolerance": TOLERANCE,
        "graphs": graphs,
    }
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    print(f"{name}: {len(weights)} tensors ({mode}), {size / 1024:.0f} KiB; " + "; ".join(report))


def main(argv):
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(unknown)}; cases: {', '.join(CASES)}")
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if not argv:
        shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT, exist_ok=True)
    for name in names:
        build(name)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(ROOT) for n in files)
    print(f"total fixture size: {total / 1024 / 1024:.2f} MiB in {ROOT}")


if __name__ == "__main__":
    main(sys.argv[1:])
