#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build FHTO with the CUDA path, run the GPU tests and time the
# batched NTT of a ResNet-50-sized update (6,240 polynomials of N = 4096 per prime) on the GPU
# against SEAL's NTT on one CPU core; prints one table. Takes well under 5 minutes.
#   bash scripts/device-check.sh            (uses .venv, creating it with scripts/setup.sh if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
py=.venv/bin/python
"$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
  -C cmake.define.FHTO_CUDA=ON -C build-dir="${FHTO_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhto/build-cuda}" .
"$py" -m pytest -q tests -k "cuda or gpu"
"$py" - <<'PY'
import time

import numpy as np

import fhto_native as fh
from fhto_native import _core, cuda

print(f"device: {cuda.device() or 'none'}; CUDA path compiled: {cuda.compiled()}")
if not cuda.available():
    raise SystemExit("no usable CUDA device")
keys = fh.KeySet.generate("compact", seed=1)
ctx = keys.public_context()._core
rows = []
for trials in (16, 6240):
    t0 = time.perf_counter()
    _core.cuda_check_ntt_device(ctx, trials)  # includes SEAL's CPU NTTs for the reference
    both = time.perf_counter() - t0
    t0 = time.perf_counter()
    _core.cuda_check_ntt_host(ctx, trials)
    host = time.perf_counter() - t0
    rows.append((trials, both, host))
print("| polynomials (N=4096) | GPU check incl. SEAL reference, s | host driver + SEAL, s |")
print("|---|---|---|")
for trials, both, host in rows:
    print(f"| {trials} | {both:.3f} | {host:.3f} |")
PY
