#!/usr/bin/env bash
# GPU-scale figures on a Stable Diffusion v1.5-shaped model with random weights (one prepared run):
#   train step at 256 px, batch 32, fp16, P.A. loss on, vs a plain diffusers step (ratio, peak memory);
#   generation images/s at 256 px with 25 steps vs the naive per-image loop.
# Usage: bash benchmarks/run_gpu.sh OUT_DIR   (JSON lines in OUT_DIR/gpu_benchmarks.jsonl)
set -euo pipefail
out=${1:-work_dirs/gpu_bench}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 "$here/bench_train_step.py" --preset sd15 --batch 32 --amp fp16 --repeats 5 | tee -a "$out/gpu_benchmarks.jsonl"
python3 "$here/bench_generation.py" --preset sd15 --steps 25 --num-images 32 --batch-size 16 \
    | tee -a "$out/gpu_benchmarks.jsonl"
