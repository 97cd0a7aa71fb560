"""A reference StepEngine in transformers for the optional end-to-end test: a checkpoint folder of
test/fixtures/generate/ run without a cache (every call recomputes the whole sequence), so it
checks vlmc's prompt ids, pixels and loop against transformers' own forward. One JSON request per
stdin line, one JSON answer per stdout line:
  {"op": "prefill", "rows": [[ids…]…], "images": [{"pixels": [...], "count": n}…]} → {"logits": [[…]…]}
  {"op": "step", "tokens": [id…]} → {"logits": [[…]…]}
Usage: python scripts/generate/torch_engine.py CHECKPOINT_DIR
"""

import json
import os
import sys

import torch

# Appended, not prepended: scripts/parity has a make_fixtures.py of its own.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
from transformers import Blip2ForConditionalGeneration, LlavaForConditionalGeneration  # noqa: E402


def main() -> None:
    folder = sys.argv[1]
    config = json.load(open(f"{folder}/config.json"))
    cls = {"llava": LlavaForConditionalGeneration, "blip-2": Blip2ForConditionalGeneration}[config["model_type"]]
    model = cls.from_pretrained(folder).eval()
    size = config["vision_config"]["image_size"]
    rows, pixels = [], []

    def logits():
        out = []
        with torch.no_grad():
            for ids, pix in zip(rows, pixels):
                kwargs = {"pixel_values": pix} if pix is not None else {}
                out.append(model(input_ids=torch.tensor([ids]), **kwargs).logits[0, -1].tolist())
        return out

    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "prefill":
            rows = [list(r) for r in request["rows"]]
            pixels = [
                torch.tensor(im["pixels"], dtype=torch.float32).reshape(im["count"], 3, size, size) if im["count"] else None
                for im in request["images"]
            ]
        else:
            for row, token in zip(rows, request["tokens"]):
                row.append(token)
        print(json.dumps({"logits": logits()}), flush=True)


if __name__ == "__main__":
    main()
