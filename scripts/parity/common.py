"""Shared helpers of the parity scripts: a safetensors writer, the hash-based weight generator that
the TypeScript tests reproduce bit for bit, random initialisation of reference modules, key maps,
running a reference in float64, and importing torchvision beside a CPU-only torch.

Needs torch and numpy only (no `safetensors`, no `transformers`).
"""

import importlib.util
import json
import math
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch
from torch import nn

# ---- torchvision ---------------------------------------------------------------------------------


def import_torchvision():
    """Imports torchvision where its compiled operators cannot load. The offline wheel store has
    only CUDA builds of torchvision (0.28 links libtorch_cuda), while torch is the CPU build: the
    extension fails to load, torchvision then registers fake kernels for `torchvision::nms` and
    `qnms` without checking for them, and the import fails. Declaring those two schemas lets it
    finish; the models (ResNet, VisionTransformer) are plain torch and never call the operators.
    Call this before importing torchvision or timm (which imports torchvision)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or "torchvision" in sys.modules or _KEEP:
        return
    try:
        torch.ops.load_library(os.path.join(os.path.dirname(spec.origin), "_C.so"))
    except OSError:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)  # the definitions live as long as the Library object


_KEEP = []  # the Library that declares the two schemas, once declared

# ---- writing a case ------------------------------------------------------------------------------

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def write_spec(path, text):
    """Writes a case's spec in vlmc's own layout (`vlmc fmt`; needs `npm run build` first)."""
    with open(path, "w") as f:
        f.write(text)
    subprocess.run(["node", os.path.join(REPO, "bin", "vlmc.js"), "fmt", "--write", path], check=True)


def save_pretrained(model, folder, shard=None):
    """transformers' save_pretrained, less the generation settings, which play no part here."""
    model.save_pretrained(folder, **({"max_shard_size": shard} if shard else {}))
    for extra in os.listdir(folder):
        if extra != "config.json" and not extra.startswith("model"):
            os.remove(os.path.join(folder, extra))


def perceiver_rules(depth, prefix=""):
    """The key-map rules that name open_flamingo's numbered PerceiverResampler members for std
    perceiver_resampler (std/perceiver.vlm), for keys under `prefix`."""
    parts = (("0.", "attn."), ("1.0.", "ff.norm."), ("1.1.", "ff.fc1."), ("1.3.", "ff.fc2."))
    return [f'"{prefix}layers.{i}.{a}": "layers.{i}.{b}"' for i in range(depth) for a, b in parts]


# ---- safetensors ---------------------------------------------------------------------------------

_ST_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64"}


def write_safetensors(path, tensors):
    """Writes {name: ndarray} as safetensors: 8-byte little-endian header length, the JSON header
    (keys sorted, padded with spaces to a multiple of 8), then the raw little-endian data in key
    order."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C")  # not ascontiguousarray: it turns 0-d into 1-d
        dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        if dtype not in _ST_DTYPES:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        data = a.astype(dtype, copy=False).tobytes()
        header[name] = {"dtype": _ST_DTYPES[dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


# ---- hash-based weights ("recipe") ---------------------------------------------------------------
# For fixtures whose weights would be too large to commit (torchvision's ResNet stem and stages are
# fixed at 64…512 channels), the fixture stores a recipe instead: per tensor a seed, a scale and an
# offset. Element i (0-based) is
#     z = splitmix32-style mix of (seed + (i + 1) * 0x9E3779B9) mod 2^32
#     u = (z >> 8) * 2^-23 - 1                      exactly representable, in [-1, 1)
#     value = f32(f32(u * scale) + offset)
# All steps are exact or single IEEE float32 roundings, so test/parity.test.ts rebuilds the same bits.

RECIPE_GENERATOR = "splitmix32-uniform-v1"


def hash_uniform(seed, n):
    """n float32 values uniform in [-1, 1) from the stream `seed` (see above)."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    z = ((np.uint64(seed) + i * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B)
        z = (z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35)
        z = z ^ (z >> np.uint32(16))
    return (z >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-23) - np.float32(1.0)


def f32(x):
    return float(np.float32(x))


def recipe_values(seed, shape, scale, offset):
    n = int(np.prod(shape)) if len(shape) > 0 else 1
    u = hash_uniform(seed, n)
    return ((u * np.float32(scale)).astype(np.float32) + np.float32(offset)).astype(np.float32).reshape(shape)


# ---- random initialisation of a reference module -------------------------------------------------


class Init:
    """Draws the values of one case's parameters: torch.randn / torch.rand under the case's seed
    ("torch" mode, weights committed as safetensors), or the hash generator ("recipe" mode, a
    uniform with the same mean and standard deviation; the recipe is committed instead)."""

    def __init__(self, mode, seed):
        assert mode in ("torch", "recipe")
        self.mode = mode
        self.recipe = {}  # reference name → (seed, scale, offset)
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, name, shape, mean, std):
        if self.mode == "torch":
            return torch.randn(shape, generator=self.generator, dtype=torch.float32) * std + mean
        return self._recipe(name, shape, std * math.sqrt(3.0), mean)

    def uniform(self, name, shape, lo, hi):
        if self.mode == "torch":
            return torch.rand(shape, generator=self.generator, dtype=torch.float32) * (hi - lo) + lo
        return self._recipe(name, shape, (hi - lo) / 2, (hi + lo) / 2)

    def _recipe(self, name, shape, scale, offset):
        seed = zlib.crc32(name.encode("utf-8"))
        scale, offset = f32(scale), f32(offset)
        self.recipe[name] = (seed, scale, offset)
        return torch.from_numpy(recipe_values(seed, tuple(shape), scale, offset))


NORMS = (nn.LayerNorm, nn.BatchNorm2d)


def _rule(module, leaf, tensor):
    """(kind, a, b) for one parameter or buffer, by the type of the module that owns it."""
    custom = getattr(module, "init_rules", {})
    if leaf in custom:
        return custom[leaf]
    if isinstance(module, nn.MultiheadAttention):
        if leaf == "in_proj_weight":
            return ("normal", 0.0, 1 / math.sqrt(tensor.shape[1]))
        return ("normal", 0.0, 0.1)
    if isinstance(module, nn.Linear):
        return ("normal", 0.0, 1 / math.sqrt(module.in_features)) if leaf == "weight" else ("normal", 0.0, 0.1)
    if isinstance(module, nn.Conv2d):
        fan_in = tensor[0].numel() if leaf == "weight" else 1
        return ("normal", 0.0, 1 / math.sqrt(fan_in)) if leaf == "weight" else ("normal", 0.0, 0.1)
    if isinstance(module, nn.Embedding):
        return ("normal", 0.0, 0.5)
    if isinstance(module, NORMS) or getattr(module, "is_norm", False):
        if leaf == "weight":
            return ("normal", 1.0, 0.1)
        if leaf == "running_var":
            return ("uniform", 0.5, 1.5)
        return ("normal", 0.0, 0.1)  # bias, running_mean
    return ("normal", 0.0, 0.5)


def randomize(model, init):
    """Gives every floating-point parameter and buffer of `model` new random values (in place).
    Non-persistent buffers (rotary frequencies, Gemma's embedding scale, timm EVA's zero key bias)
    are derived, not learned, and stay as the module computed them."""
    modules = dict(model.named_modules())
    persistent = model.state_dict(keep_vars=True).keys()
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point() or name not in persistent:
                continue
            owner, _, leaf = name.rpartition(".")
            kind, a, b = _rule(modules[owner], leaf, tensor)
            shape = tuple(tensor.shape)
            value = init.normal(name, shape, a, b) if kind == "normal" else init.uniform(name, shape, a, b)
            tensor.copy_(value)


def renamer(*rules):
    """A key map from (regex, replacement) rules applied in order; a replacement of None drops the key."""

    def key_map(name):
        for pattern, repl in rules:
            if re.search(pattern, name):
                if repl is None:
                    return None
                name = re.sub(pattern, repl, name)
        return name

    return key_map


# torchvision's state-dict keys → the parameter names of examples/reference/*.vlm, which declare no
# layouts (fullsize.py and bench/peers.py write weights under those names; std/vit.vlm, std/resnet.vlm).
VIT_KEYS = [(r"encoder\.layers\.encoder_layer_(\d+)\.", r"encoder.layers.\1."), (r"\.mlp\.0\.", ".mlp.linear_1."), (r"\.mlp\.3\.", ".mlp.linear_2.")]
RESNET_KEYS = [(r"\.downsample\.0\.", ".downsample.conv."), (r"\.downsample\.1\.", ".downsample.bn.")]


def weights_of(model, key_map):
    """The reference's float tensors under vlmc's names: `key_map(name)` gives the vlmc name or None
    (dropped: a tied duplicate, BatchNorm's num_batches_tracked). Parameters shared under two names
    (tied weights) appear once."""
    out = {}
    seen = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point():
            continue
        target = key_map(name)
        if target is None:
            continue
        if target in out:
            raise ValueError(f"two reference tensors map to {target}")
        out[target] = tensor.detach().to(torch.float32).numpy().copy()
        seen[target] = name
    return out, seen


def run_double(fn, inputs):
    """Calls fn on the inputs as float64 (integer and bool inputs unchanged); outputs as float32."""
    args = {}
    for k, v in inputs.items():
        t = torch.from_numpy(np.array(v))
        args[k] = t.double() if t.is_floating_point() else t
    with torch.no_grad():
        outs = fn(**args)
    return {k: v.detach().to(torch.float32).numpy() for k, v in outs.items()}
