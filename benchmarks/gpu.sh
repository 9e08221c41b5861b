#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py) on a lent machine with an NVIDIA GPU:
# its own python3 with a CUDA build of PyTorch, no network, nothing to install (the check
# needs only PyTorch, NumPy and pandas). Under 8 minutes; writes gpu.json into $OUT (the
# device tool's return folder) or into the current folder. Record what it prints, with
# the GPU model, in docs/benchmarks.md ("GPU check").
#
# Where zarr and rioxarray import (carried as wheels, see the device tool's README: zarr,
# numcodecs, donfig, crc32c, rioxarray, rasterio, pyproj, affine), it also runs the export
# benchmark with its I/O (a 1024 px cube written and exported on CUDA).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
PYTHONUNBUFFERED=1 timeout 420 python3 benchmarks/gpu_check.py --device cuda \
    --out "${OUT:-.}/gpu.json"
if python3 -c "import zarr, rioxarray" 2>/dev/null; then
    PYTHONUNBUFFERED=1 timeout 120 python3 benchmarks/export.py --sizes 1024 \
        --s2-dates 24 --s1-dates 20 --device cuda || echo "export benchmark with I/O failed"
else
    echo "cube I/O not measured: zarr or rioxarray is missing on this machine"
fi
