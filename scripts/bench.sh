#!/usr/bin/env bash
# One command for the benchmark suite, side by side with TenSEAL (FLARE's configuration) and
# with raw SEAL calls in C++:
#   bash scripts/bench.sh            # routine size: 1,000,000 values per update
#   bash scripts/bench.sh resnet50   # ResNet-50 size: 25,557,032 values (TenSEAL alone takes minutes)
# Results: the terminal tables, and benchmark-results.json (pytest-benchmark JSON with extra_info).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q --disable-pip-version-check "tenseal==0.3.18"
export FHTO_BENCH_VALUES="${1:-${FHTO_BENCH_VALUES:-1000000}}"
exec .venv/bin/python -m pytest benchmarks/ --benchmark-only -s --benchmark-json=benchmark-results.json
