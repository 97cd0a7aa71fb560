"""PyTorch side of bench/generate.mjs: a LLaMA shaped like TinyLlama-1.1B (width 2048, 22 layers,
32 heads, 4 KV heads, MLP 5632, vocab 32000) with seeded random weights, run by transformers'
`generate` at batch 1 (fp32 on the CPU by default; --device cuda --dtype float16 for bench/gpu.sh): decode tokens/s, prefill time of a 32-token prompt and of a
LLaVA-1.5-sized prompt (576 image positions + 32 text tokens, the LM's share of LLaVA's prefill),
the time to the first token, and the weight bytes a decode step reads. Prints one JSON object.

--save DIR writes the model with save_pretrained (safetensors), so that vlmc packages can be
compiled from the same weights and measured by bench/generate.mjs side by side.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "parity"))
from common import import_torchvision  # noqa: E402

import_torchvision()  # transformers imports torchvision when it is installed
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

TINYLLAMA = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


def build(seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(**TINYLLAMA)
    model = LlamaForCausalLM(config).eval()
    # No eos: every run decodes exactly the tokens asked for.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def sync(ids) -> None:
    """Waits for the GPU's queued work, so that wall-clock times cover it."""
    if ids.is_cuda:
        torch.cuda.synchronize()


def timed_generate(model, ids, new_tokens: int) -> float:
    sync(ids)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    sync(ids)
    elapsed = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + new_tokens
    return elapsed


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--image-tokens", type=int, default=576)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="save_pretrained the model here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = build(args.seed)
    build_s = time.perf_counter() - start
    if args.save:
        model.save_pretrained(args.save)
    dtype = getattr(torch, args.dtype)
    model = model.to(device=args.device, dtype=dtype)
    value_bytes = torch.finfo(dtype).bits // 8

    g = torch.Generator().manual_seed(args.seed + 1)
    prompt = torch.randint(3, TINYLLAMA["vocab_size"], (1, args.prompt_tokens), generator=g).to(args.device)
    llava_prompt = torch.randint(
        3, TINYLLAMA["vocab_size"], (1, args.image_tokens + args.prompt_tokens), generator=g
    ).to(args.device)

    timed_generate(model, prompt, 2)  # warm-up
    first, full, decode, llava_first = [], [], [], []
    for _ in range(args.runs):
        t1 = timed_generate(model, prompt, 1)
        tn = timed_generate(model, prompt, args.new_tokens)
        first.append(t1)
        full.append(tn)
        decode.append((args.new_tokens - 1) / (tn - t1))
        llava_first.append(timed_generate(model, llava_prompt, 1))

    params = sum(p.numel() for p in model.parameters())
    embedding = model.model.embed_tokens.weight.numel()
    print(
        json.dumps(
            {
                "model": "LlamaForCausalLM, TinyLlama-1.1B shape, random weights (seed %d)" % args.seed,
                "config": TINYLLAMA,
                "dtype": args.dtype,
                "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                "threads": torch.get_num_threads(),
                "parameters": params,
                "weight_bytes": params * value_bytes,
                # A decode step reads every weight once except the embedding table (one row).
                "weight_bytes_per_token": (params - embedding) * value_bytes,
                "new_tokens": args.new_tokens,
                "prompt_tokens": args.prompt_tokens,
                "llava_prompt_tokens": args.image_tokens + args.prompt_tokens,
                "build_seconds": build_s,
                "decode_tokens_per_second": summary(decode),
                "time_to_first_token_seconds": summary(first),
                "generate_seconds": summary(full),
                "llava_prefill_seconds": summary(llava_first),
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "software": {
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
