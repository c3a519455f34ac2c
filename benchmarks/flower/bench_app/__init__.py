"""A synthetic FHTO round over Flower, for measuring (not part of the package).

The ServerApp (:mod:`bench_app.server`) sends each SuperNode a round plan, sums the encrypted
updates that come back in the engine's :class:`~fhto_native.Accumulator` over a public context,
and has the key holder decrypt the sum. Each ClientApp (:mod:`bench_app.client`) encrypts a
random update of the plan's length with the key set named in its node config. The launcher is
``benchmarks/flower/bench_round.py``; these modules must be importable by the Flower processes
(it puts ``benchmarks/flower`` on their ``PYTHONPATH``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

#: The weight every synthetic hospital encrypts its contribution with (its sample count).
SAMPLES = 100
#: Each synthetic hospital's update is uniform in [-SPREAD, SPREAD].
SPREAD = 0.05


def rss() -> int:
    """This process's resident memory now, in bytes."""
    return _status("VmRSS")


def peak() -> int:
    """This process's peak resident memory since the last :func:`reset_peak`, in bytes."""
    return _status("VmHWM")


def reset_peak() -> None:
    """Start a new peak (Linux: ``/proc/self/clear_refs``, value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def append_json(path: str, entry: Mapping[str, object]) -> None:
    """One JSON line appended to ``path`` (a process's own report)."""
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
