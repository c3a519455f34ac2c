"""docs/API.md is generated from the docstrings and must match them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "api_docs.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
