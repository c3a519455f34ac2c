"""Write docs/API.md, the API reference, from the public modules' docstrings.

    .venv/bin/python scripts/api_docs.py          # rewrite docs/API.md
    .venv/bin/python scripts/api_docs.py --check  # exit 1 if docs/API.md is out of date

Each module's ``__all__`` is documented in order: classes with their public methods and
properties, functions with their signatures; every entry shows its docstring's first paragraph.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "fhto_native",
    "fhto_native.params",
    "fhto_native.errors",
    "fhto_native.structure",
    "fhto_native.cuda",
    "fhto_native.multiparty",
    "fhto_native.fl.protocol",
    "fhto_native.fl.server",
    "fhto_native.fl.transport",
    "fhto_native.fl.keyholder",
    "fhto_native.fl.threshold",
    "fhto_native.fl.scheduler",
    "fhto_native.fl.validation",
    "fhto_native.fl.checkpoint",
]
OUT = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def first_paragraph(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def document_class(name: str, cls) -> list:
    lines = [f"### `{name}{signature(cls) if not issubclass(cls, BaseException) else ''}`", "", first_paragraph(cls), ""]
    seen = set()
    members = [(m, v) for klass in cls.__mro__ if klass.__module__.startswith("fhto_native")
               for m, v in klass.__dict__.items()]
    for member, value in members:
        if member.startswith("_") or member in seen:
            continue
        seen.add(member)
        target = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        if isinstance(value, property):
            lines.append(f"- `{member}` (property): {first_paragraph(value)}")
        elif inspect.isfunction(target):
            lines.append(f"- `{member}{signature(target)}`: {first_paragraph(target)}")
    return lines + [""]


def render() -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings by `scripts/api_docs.py`; a test keeps it current. "
             "The study (`fhto_native.study`, which needs the `study` extra) is documented in the README.", ""]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", first_paragraph(module), ""]
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                lines += document_class(name, obj)
            elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                lines += [f"### `{name}{signature(obj)}`", "", first_paragraph(obj), ""]
            elif inspect.ismodule(obj) or name.startswith("__"):
                continue
            else:
                lines += [f"- `{name}` = `{obj!r}`"[:200], ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/API.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print("docs/API.md is out of date: run scripts/api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.name} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
