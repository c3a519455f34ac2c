#!/usr/bin/env bash
# A separate Python 3.10 virtualenv with OpenFHE's PyPI wheel, the peer for the threshold-CKKS
# comparison (benchmarks/multiparty/openfhe_threshold.py). Idempotent; prints the path of the
# environment's python. The pin is OpenFHE v1.6.1 (openfhe-python v1.6.1.0) as built for Ubuntu 22.04:
# one CPython 3.10 extension needing glibc 2.34 and GLIBCXX_3.4.29. Its twin 1.6.1.0.24.4 (Ubuntu 24.04)
# is CPython 3.12 only and needs glibc 2.38 and GLIBCXX_3.4.32, so it does not load on Debian 12.
# Environment:
#   OPENFHE_VENV     virtualenv path (default .venv-openfhe)
#   PYTHON310        a Python 3.10 interpreter (default: python3.10 on PATH, then pyenv's 3.10.x)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${OPENFHE_VENV:-.venv-openfhe}"
pin="openfhe==1.6.1.0.22.4"
say() { printf '[setup-openfhe] %s\n' "$*" >&2; }

is_python310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
  local c
  for c in "${PYTHON310:-}" python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && is_python310 "$c" && { command -v "$c"; return 0; }
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  base="$(find_python310)" || { echo "setup-openfhe: Python 3.10 is required (set PYTHON310)" >&2; exit 1; }
  say "creating virtualenv $venv with $base"
  "$base" -m venv "$venv"
fi
py="$venv/bin/python"
is_python310 "$py" || { echo "setup-openfhe: $venv is not a Python 3.10 environment; remove it" >&2; exit 1; }

stamp="$venv/.installed-${pin#openfhe==}"
if [ ! -f "$stamp" ]; then
  say "installing $pin and numpy"
  "$py" -m pip install -q --disable-pip-version-check "$pin" "numpy>=1.23"
  touch "$stamp"
fi

"$py" -c 'import sys, openfhe, numpy; sys.stderr.write("[setup-openfhe] openfhe and numpy import\n")'
cd "$venv/bin" && printf '%s/python\n' "$(pwd)"
