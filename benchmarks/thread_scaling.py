"""Thread scaling of every engine phase on one model-size update.

    .venv/bin/python benchmarks/thread_scaling.py [--values 25557032] [--preset compact] [--repeats 10]

Encrypts the update (random seeds: the production path), adds it into a running sum, and
decrypts the sum, each on 1 and on 2 threads (best of --repeats), and prints one JSON object:
seconds per phase and thread count, and the 2-thread speed-up of each phase. Each call writes
fresh output memory; on a virtual machine the first touches of memory the guest has not used
before cost far more kernel time (page clearing) than later ones, so the first calls are slower
and the default takes the best of 10.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import fhto_native as fh


def _best(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=25_557_032)
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    keys = fh.KeySet.generate(args.preset)
    pub = keys.public_context()
    x = np.random.default_rng(0).uniform(-1, 1, args.values).astype(np.float32)
    upload = keys.encrypt(x, parties=64)
    seconds: dict = {}
    for threads in (1, 2):
        acc = fh.Accumulator(pub, threads=threads).add(upload)
        total = acc.result()
        seconds[threads] = {
            "encrypt": _best(args.repeats, lambda: keys.encrypt(x, parties=64, threads=threads)),
            "add": _best(args.repeats, lambda: acc.add(upload)),
            "decrypt": _best(args.repeats, lambda: keys.decrypt(total, threads=threads)),
        }
    print(json.dumps({
        "values": args.values,
        "preset": args.preset,
        "ciphertexts": -(-args.values // keys.values_per_ciphertext),
        "seconds": seconds,
        "speedup_2_threads": {p: round(seconds[1][p] / seconds[2][p], 2) for p in seconds[1]},
    }, indent=1))


if __name__ == "__main__":
    main()
