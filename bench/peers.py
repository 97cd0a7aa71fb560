#!/usr/bin/env python3
"""The PyTorch side of the benchmarks: the peers that vlmc is measured against.

Run with the interpreter that has torch, torchvision and transformers (the first line's):

    $VLMC_PYTHON bench/peers.py build MODEL OUT_DIR      weights, input, peer ONNX (torch.onnx.export)
    $VLMC_PYTHON bench/peers.py export-time MODEL --runs N   times torch.onnx.export N times, prints JSON
    $VLMC_PYTHON bench/peers.py peak OUT_DIR              MatMul (fp32) / MatMulInteger (int8) peak models
    $VLMC_PYTHON bench/peers.py versions                  torch / torchvision / onnx / numpy versions

MODEL is one of MODELS below. `build` writes to OUT_DIR:
    <component>.safetensors  random weights under vlmc's names, one file per component (compiled
                             with `--weights COMPONENT=FILE`; keys relative to the component)
    <input>.npy              a random input, batch 1
    peer.onnx                the same architecture in PyTorch with the same weights, exported by
                             torch.onnx.export at opset 17 (batch axis dynamic, constant folding on)
    meta.json                what bench/inference.mjs needs: spec, model, graph, weight specs,
                             input and output names, parameter count, export time
The weights are drawn as scripts/parity draws them (common.randomize: every parameter and
BatchNorm statistic random) and mapped to vlmc's names with the key maps of scripts/parity.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "parity"))
from common import RESNET_KEYS, VIT_KEYS, Init, import_torchvision, randomize, renamer, write_safetensors  # noqa: E402

import_torchvision()
import torchvision  # noqa: E402
import transformers as T  # noqa: E402
from make_fixtures import Container, llava_projector  # noqa: E402

OPSET = 17


class Peer(Container):
    """scripts/parity's Container with a given forward: parameters under `parts`, computation in `fn`."""

    def __init__(self, fn, **parts):
        super().__init__(**parts)
        self._fn = fn

    def forward(self, x):
        return self._fn(self, x)


def torchvision_model(name, keys):
    """A torchvision classifier under the component `net`, as examples/reference/<name>.vlm declares it."""
    net = getattr(torchvision.models, name)()
    return dict(
        peer=Peer(lambda m, x: m.net(x), net=net),
        components={"net": renamer((r"^net\.", ""), *keys)},
        spec=f"examples/reference/{name}.vlm", model=name, graph="forward",
        input=("pixels", (1, 3, 224, 224)), output="logits",
        description=f"torchvision.models.{name} (examples/reference/{name}.vlm)",
    )


def vit_b_16():
    return torchvision_model("vit_b_16", VIT_KEYS)


def resnet50():
    return torchvision_model("resnet50", RESNET_KEYS)


def clip_config(image, patch, width, depth, heads, mlp):
    return T.CLIPVisionConfig(image_size=image, patch_size=patch, hidden_size=width, num_hidden_layers=depth,
                              num_attention_heads=heads, intermediate_size=mlp)


def clip_vit_b_32_image():
    vision = T.CLIPVisionModel(clip_config(image=224, patch=32, width=768, depth=12, heads=12, mlp=3072))
    proj = nn.Linear(768, 512, bias=False)
    return dict(
        # HF CLIPModel.get_image_features: the pooled (post-LayerNorm class token) output, projected.
        peer=Peer(lambda m, x: m.visual_projection(m.vision_model(pixel_values=x).pooler_output), vision_model=vision,
                  visual_projection=proj),
        components={"vision_model": renamer((r"^vision_model\.", "")), "visual_projection": renamer((r"^visual_projection\.", ""))},
        spec="examples/clip.vlm", model="clip", graph="image",
        input=("pixels", (1, 3, 224, 224)), output="image_embeds",
        description="CLIP ViT-B/32 image tower + visual projection (HF CLIPModel.get_image_features; examples/clip.vlm graph image)",
    )


def llava_image(m, x):
    # HF LLaVA-1.5 image path: CLIP ViT-L/14-336 hidden state of the penultimate layer, class token
    # dropped, through the two-layer GELU projector. Only the layers it needs run (HF runs all 24
    # and discards the last; torch.onnx.export would drop that dead layer anyway).
    v = m.vision
    h = v.pre_layrnorm(v.embeddings(x))
    for layer in v.encoder.layers[:-1]:
        h = layer(h, None)
        h = h[0] if isinstance(h, tuple) else h
    return m.proj(h[:, 1:])


def llava_1_5_image():
    vision = T.CLIPVisionModel(clip_config(image=336, patch=14, width=1024, depth=24, heads=16, mlp=4096))
    proj = llava_projector(1024, 4096)
    return dict(
        peer=Peer(llava_image, vision=vision, proj=proj),
        components={"vision": renamer((r"^vision\.", "")), "proj": renamer((r"^proj\.", ""))},
        spec="examples/llava.vlm", model="llava_1_5_7b", graph="image_features",
        input=("pixels", (1, 3, 336, 336)), output="image_features",
        description="LLaVA-1.5 image path: CLIP ViT-L/14-336 (penultimate layer) + mlp2x_gelu projector (examples/llava.vlm graph image_features)",
    )


def blip2_stage(m, x):
    queries = m.query_tokens.expand(x.shape[0], -1, -1)
    return m.language_projection(m.qformer(query_embeds=queries, encoder_hidden_states=x).last_hidden_state)


def blip2_qformer():
    qformer = T.Blip2QFormerModel(T.Blip2QFormerConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                       intermediate_size=3072, encoder_hidden_size=1408,
                                                       cross_attention_frequency=2))
    return dict(
        peer=Peer(blip2_stage, qformer=qformer, query_tokens=nn.Parameter(torch.zeros(1, 32, 768)), language_projection=nn.Linear(768, 2560)),
        components={
            "qformer": renamer((r"^qformer\.", ""), (r"^query_tokens$", "query_tokens")),
            "language_projection": renamer((r"^language_projection\.", "")),
        },
        spec="bench/specs/blip2_qformer.vlm", model="blip2_qformer_stage", graph="forward",
        input=("image_embeds", (1, 257, 1408)), output="visual_prompt",
        description="BLIP-2 OPT-2.7B Q-Former stage: 32 queries over EVA ViT-g features [1, 257, 1408], 12 layers, "
        "cross-attention every 2nd, + language projection 768 → 2560 (HF Blip2QFormerModel + query_tokens + language_projection)",
    )


MODELS = {f.__name__: f for f in (vit_b_16, resnet50, clip_vit_b_32_image, llava_1_5_image, blip2_qformer)}


def component_of(name, components):
    """The vlmc component a peer state-dict name belongs to: the peer's attribute of the same name
    (BLIP-2's top-level `query_tokens` belongs to the Q-Former, as in std/qformer.vlm)."""
    top = name.split(".")[0]
    if top == "query_tokens":
        return "qformer"
    return top if top in components else None


def make(name, seed):
    torch.manual_seed(seed)
    c = MODELS[name]()
    peer = c["peer"].eval()
    randomize(peer, Init("torch", seed))
    return c, peer


def export(peer, x, c, path):
    in_name, out_name = c["input"][0], c["output"]
    # Not under torch.no_grad(): without autograd, nn.MultiheadAttention (torchvision's ViT) takes
    # its fused fast path, aten::_native_multi_head_attention, which torch 1.13 cannot export.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            peer, (x,), path, opset_version=OPSET, input_names=[in_name], output_names=[out_name],
            dynamic_axes={in_name: {0: "B"}, out_name: {0: "B"}}, do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter, as with torch 1.13 (the dynamo one needs onnxscript)
        )


def cmd_build(args):
    start = time.time()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    c, peer = make(args.model, args.seed)
    os.makedirs(args.out, exist_ok=True)
    weights_specs = []
    tensors = 0
    for comp, key_map in c["components"].items():
        owned = {k: v for k, v in peer.state_dict(keep_vars=True).items() if component_of(k, c["components"]) == comp}
        weights = {}
        for k, v in owned.items():
            if not v.is_floating_point():
                continue
            target = key_map(k)
            if target is None:
                continue
            weights[target] = v.detach().to(torch.float32).numpy().copy()
        path = os.path.join(args.out, f"{comp}.safetensors")
        write_safetensors(path, weights)
        weights_specs.append(f"{comp}={path}")
        tensors += len(weights)
    in_name, shape = c["input"]
    x = np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    np.save(os.path.join(args.out, f"{in_name}.npy"), x)
    t0 = time.perf_counter()
    export(peer, torch.from_numpy(x), c, os.path.join(args.out, "peer.onnx"))
    export_s = time.perf_counter() - t0
    with torch.no_grad():
        y = peer(torch.from_numpy(x)).numpy()
    np.save(os.path.join(args.out, f"{c['output']}.torch.npy"), y.astype(np.float32))
    params = sum(p.numel() for p in peer.parameters())
    meta = {
        "name": args.model,
        "description": c["description"],
        "spec": c["spec"],
        "model": c["model"],
        "graph": c["graph"],
        "weights": weights_specs,
        "input": {"name": in_name, "shape": list(shape), "file": os.path.join(args.out, f"{in_name}.npy")},
        "output": c["output"],
        "torch_output": os.path.join(args.out, f"{c['output']}.torch.npy"),
        "peer": os.path.join(args.out, "peer.onnx"),
        "peer_bytes": os.path.getsize(os.path.join(args.out, "peer.onnx")),
        "params": params,
        "opset": OPSET,
        "export_seconds": export_s,
        "torch": torch.__version__,
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({"model": args.model, "tensors": tensors, "params": params, "export_s": round(export_s, 2), "seconds": round(time.time() - start, 1)}))


def cmd_export_time(args):
    """torch.onnx.export of MODEL, timed `runs` times after one untimed warm-up (the first export
    pays for importing and compiling torch.onnx's passes); the model is built once."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    c, peer = make(args.model, args.seed)
    x = torch.from_numpy(np.random.default_rng(args.seed).standard_normal(c["input"][1], dtype=np.float32))
    times = []
    first = None
    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        path = os.path.join(d, "peer.onnx")
        for i in range(args.runs + 1):
            t0 = time.perf_counter()
            export(peer, x, c, path)
            dt = time.perf_counter() - t0
            if i == 0:
                first = dt
            else:
                times.append(dt)
            size = os.path.getsize(path)
            os.remove(path)
    print(json.dumps({"model": args.model, "seconds": times, "first": first, "bytes": size, "load": load}))


def cmd_peak(args):
    """Two models for the peak throughput measured beside the inference figures: a large fp32 MatMul
    (A input [M, K] × B constant [K, N]) and a MatMulInteger (uint8 A × int8 B → int32), the
    kernels ORT's fp32 and int8 (dynamic-quantized) MatMuls run on."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def peak_model(graph):
        # IR version 8 goes with opset 17; onnx 1.23 would write its own newest (14), which
        # onnxruntime 1.30 refuses ("max supported IR version: 13").
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)

    n = args.size
    rng = np.random.default_rng(0)
    os.makedirs(args.out, exist_ok=True)
    b = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "B")
    g = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "peak_fp32",
                          [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])], [b])
    onnx.save(peak_model(g), os.path.join(args.out, "matmul_fp32.onnx"))
    bi = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "B")
    azp = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero_point")
    g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B", "a_zero_point"], ["Y"])], "peak_int8",
                          [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
                          [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])], [bi, azp])
    onnx.save(peak_model(g), os.path.join(args.out, "matmul_int8.onnx"))
    print(json.dumps({"size": n, "flops": 2 * n * n * n}))


def cmd_versions(_args):
    import onnx

    print(json.dumps({"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__, "numpy": np.__version__}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_build)
    p = sub.add_parser("export-time")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", default=None)
    p.add_argument("--first", action="store_true", help="(always on) also report the untimed warm-up export")
    p.set_defaults(fn=cmd_export_time)
    p = sub.add_parser("peak")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=2048)
    p.set_defaults(fn=cmd_peak)
    p = sub.add_parser("versions")
    p.set_defaults(fn=cmd_versions)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
