"""Every Python snippet in the README runs as written, in order, in one namespace."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def snippets():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_snippets():
    assert len(snippets()) >= 3


def test_every_readme_snippet_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("cryptography")
    monkeypatch.chdir(tmp_path)  # snippets write key files into the working folder
    namespace: dict = {}
    for i, code in enumerate(snippets()):
        exec(compile(code, f"README.md snippet {i + 1}", "exec"), namespace)
