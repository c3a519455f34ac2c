#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build FHTO with the CUDA path, run the CUDA tests (host-side
# and GPU) and the GPU benchmark at the ResNet-50 size, and print one table. Under 5 minutes.
#
#   bash scripts/device-check.sh
#
# Python: .venv when there is one (scripts/setup.sh makes it), else python3 with numpy, pytest,
# pytest-benchmark, pybind11, scikit-build-core, cmake and ninja already installed (torch or cupy
# for the GPU-array tests); the build then goes to a folder on PYTHONPATH. SEAL: the build fetches
# its source unless SEAL_DIR names a SEAL 4.1 install; on an offline machine, bring one (a copy of
# the install this project caches under ~/.cache/fhto/seal-*/ works) and set SEAL_DIR, or place it
# at .device/seal. Set FHTO_BENCH_UPLOADS for another number of uploads in the sum (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SEAL_DIR:-}" ] && [ -d .device/seal ]; then
  export SEAL_DIR="$PWD/.device/seal/lib/cmake/SEAL-4.1"
fi
target=()
if [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=${PYTHON:-python3}
  site="${FHTO_SITE:-/tmp/fhto-site}"
  target=(--target "$site" --upgrade)
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --no-index "${target[@]}" \
  -C cmake.define.FHTO_CUDA=ON -C build-dir="${FHTO_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhto/build-cuda}" .
"$py" -c "from fhto_native import cuda; print('device:', cuda.device() or 'none', '| CUDA path compiled:', cuda.compiled())"
"$py" -m pytest -q -p no:cacheprovider tests/engine/test_cuda.py
FHTO_BENCH_VALUES=resnet50 "$py" -m pytest -q -p no:cacheprovider benchmarks/test_bench_cuda.py \
  --benchmark-only --benchmark-columns=median,min,max,rounds
