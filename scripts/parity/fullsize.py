#!/usr/bin/env python3
"""Full-size parity reference for the optional suite (test/parity-optional.test.ts):

    $VLMC_PYTHON scripts/parity/fullsize.py MODEL OUT_DIR [--batch N]

MODEL is resnet50 or vit_b_16 (torchvision.models.<MODEL>, the architectures of
examples/reference/<MODEL>.vlm). Writes to OUT_DIR:
    weights.safetensors  random weights under vlmc's names (prefix `net.`, key maps of std/resnet.vlm
                         and std/vit.vlm), every parameter and BatchNorm statistic randomised
    pixels.npy           a random input [N, 3, 224, 224]
    logits.npy           torchvision's output for it, computed in float64
and prints one JSON line with the output's magnitude.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESNET_KEYS, VIT_KEYS, Init, import_torchvision, randomize, renamer, run_double, weights_of, write_safetensors  # noqa: E402

import_torchvision()
import torchvision  # noqa: E402

MODELS = {
    "resnet50": (lambda: torchvision.models.resnet50(), RESNET_KEYS),
    "vit_b_16": (lambda: torchvision.models.vit_b_16(), VIT_KEYS),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    build, keys = MODELS[args.model]
    net = build().eval()
    randomize(net, Init("torch", args.seed))
    weights, _ = weights_of(net, renamer((r"^", "net."), *keys))
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "weights.safetensors"), weights)

    pixels = np.random.default_rng(args.seed).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)
    np.save(os.path.join(args.out, "pixels.npy"), pixels)
    net.double()
    logits = run_double(lambda pixels: {"logits": net(pixels)}, {"pixels": pixels})["logits"]
    np.save(os.path.join(args.out, "logits.npy"), logits)
    print(json.dumps({"model": args.model, "tensors": len(weights), "max_abs_logit": float(np.abs(logits).max()), "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
