#!/usr/bin/env bash
# The GPU benchmark in one command: compiles an ort-cuda fp16 package of the TinyLlama-shaped LLaVA
# (bench/specs/tinyllama_llava.vlm, seeded random weights) and measures its prefill and decode
# tokens/s on ONNX Runtime's CUDA provider through vlmc's package engine, beside transformers'
# generate in PyTorch fp16 on the same GPU (bench/generate.py: same shape, its own random values), writing
# bench/results/generate-gpu.md with the card's name. It checks what it needs first and stops with
# what is missing; docs/gpu.md says how to provide it.
#
#   bench/gpu.sh [--new-tokens N] [--runs N]     (extra options go to bench/generate.mjs)

set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "bench/gpu.sh: $*" >&2
  exit 3
}

command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 ||
  fail "no NVIDIA GPU here: nvidia-smi is missing or lists no card"
command -v node >/dev/null || fail "node (20 or later) is not installed"
[ -d node_modules/onnxruntime-node ] || fail "node_modules is missing: run npm ci first"
ORT_LIB=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$ORT_LIB/libonnxruntime_providers_cuda.so" ] ||
  fail "onnxruntime-node has no CUDA provider ($ORT_LIB/libonnxruntime_providers_cuda.so is missing). Its install script fetches it (CUDA 12 build) when npm ci runs without ONNXRUNTIME_NODE_INSTALL=skip on a machine with network access; or copy that file and libonnxruntime_providers_shared.so there from Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0. See docs/generate.md, On a GPU."
[ -f dist/src/index.js ] || npm run build

OUT=bench/out/gpu
rm -rf "$OUT"
mkdir -p "$OUT/checkpoint"
# The package carries a tokenizer and takes eos/bos from the checkpoint folder; decode speed reads
# neither, so the tiny LLaVA fixture's tokenizer stands in, with the ids of TinyLlama's config.
cp test/fixtures/generate/llava/tokenizer.json test/fixtures/generate/llava/tokenizer_config.json "$OUT/checkpoint/"
echo '{"model_type": "llava", "bos_token_id": 1, "eos_token_id": 2, "image_token_index": 31999}' >"$OUT/checkpoint/config.json"

echo "compiling the fp16 package (about 2.2 GB)…"
node bin/vlmc.js compile bench/specs/tinyllama_llava.vlm --package "$OUT/pkg-fp16" --target ort-cuda --precision fp16 \
  --checkpoint "$OUT/checkpoint"

# A small graph on the CUDA provider first: a missing CUDA 12 or cuDNN library fails here, named.
node -e '
const ort = require("onnxruntime-node");
ort.InferenceSession.create(process.argv[1], { executionProviders: ["cuda"] })
  .then(() => console.log("CUDA provider: loads"))
  .catch((e) => { console.error(`bench/gpu.sh: the CUDA provider does not load: ${e.message}`); process.exit(3); });
' "$OUT/pkg-fp16/embedding.onnx"

# PyTorch fp16 on the same GPU, side by side, where python3 has torch with CUDA and transformers.
PYTHON=${PYTHON:-python3}
if "$PYTHON" -c "import torch, transformers; assert torch.cuda.is_available()" 2>/dev/null; then
  TORCH=(--python "$PYTHON" --torch-device cuda --torch-dtype float16)
else
  echo "bench/gpu.sh: $PYTHON has no CUDA PyTorch with transformers: measuring vlmc alone"
  TORCH=(--skip-torch)
fi

node bench/generate.mjs "${TORCH[@]}" --provider cuda --package "cuda-fp16=$OUT/pkg-fp16" --out generate-gpu.md "$@"
