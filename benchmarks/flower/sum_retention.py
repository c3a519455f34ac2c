"""Memory a server process keeps after each round's sum, with the Accumulator deleted and the
allocator trimmed: is it released, kept, or does it grow from round to round?

    .venv/bin/python benchmarks/flower/sum_retention.py [--values 25557032] [--rounds 3]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
from pathlib import Path
from typing import List, Optional

import numpy as np

from fhto_native import Accumulator, KeySet


def rss() -> int:
    return next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmRSS:"))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--values", type=int, default=25_557_032)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    libc = ctypes.CDLL("libc.so.6")
    keys = KeySet.generate("compact", seed=0)
    public = keys.public_context()
    upload = keys.encrypt(np.zeros(args.values), parties=2).to_bytes()
    before = rss()
    for rnd in range(1, args.rounds + 1):
        acc = Accumulator(public, threads=1)
        acc.add(upload)
        acc.add(upload)
        total = acc.result().to_bytes()
        del acc, total
        gc.collect()
        libc.malloc_trim(0)
        print(f"round {rnd}: {(rss() - before) / 2**20:,.1f} MiB still resident after the sum "
              f"(one upload is {len(upload) / 2**20:,.1f} MiB)")


if __name__ == "__main__":
    main()
