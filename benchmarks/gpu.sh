#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py) on a lent machine with an NVIDIA GPU:
# its own python3 with a CUDA build of PyTorch, no network, nothing to install (the check
# needs only PyTorch, NumPy and pandas). Under 8 minutes; writes gpu.json into $OUT (the
# device tool's return folder) or into the current folder. Record what it prints, with
# the GPU model, in docs/benchmarks.md ("GPU check").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
PYTHONUNBUFFERED=1 timeout 480 python3 benchmarks/gpu_check.py --device cuda \
    --out "${OUT:-.}/gpu.json"
