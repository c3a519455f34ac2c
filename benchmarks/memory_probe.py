"""Peak-memory probes, each run in a fresh process so earlier allocations cannot hide a peak.

    python benchmarks/memory_probe.py encrypt --values 25557032 [--preset compact]
    python benchmarks/memory_probe.py server  --values 25557032 --uploads 100 [--preset compact] [--fresh-buffers]

``encrypt``: peak resident memory while one hospital encrypts its update, above what the
process held before (the input already in memory); target: the ciphertexts plus a small constant.
``server``: peak while an Accumulator sums ``--uploads`` uploads that arrive one at a time
(read from a file, as from a socket, into one reused receive buffer; ``--fresh-buffers`` reads
each into new memory instead); target: about three uploads' worth (the running sum, which holds
full ciphertexts and so two uploads' worth, plus the upload being read).
Prints one JSON object. Linux only: it resets and reads the kernel's peak-RSS counter.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

import fhto_native as fh


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak-RSS counter to the current RSS and return the current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def _update(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random(n, dtype=np.float32)
    x *= 2
    x -= 1
    return x


def probe_encrypt(args: argparse.Namespace) -> dict:
    keys = fh.KeySet.generate(args.preset)
    keys.encrypt(_update(8192, 0))  # warm up: thread-local pools, first-use allocations
    x = _update(args.values, 1)
    base = _reset_peak()
    t = time.perf_counter()
    update = keys.encrypt(x, parties=args.uploads)
    seconds = time.perf_counter() - t
    peak = _status("VmHWM") - base
    return {
        "probe": "encrypt",
        "values": args.values,
        "input_bytes": x.nbytes,
        "ciphertext_bytes": update.nbytes,
        "peak_above_input_bytes": peak,
        "overhead_bytes": peak - update.nbytes,
        "seconds": round(seconds, 3),
    }


def probe_server(args: argparse.Namespace) -> dict:
    keys = fh.KeySet.generate(args.preset)
    server = keys.public_context()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "upload.fhto")
        keys.encrypt(_update(args.values, 2), parties=args.uploads).save(path)
        upload_bytes = os.path.getsize(path)
        acc = fh.Accumulator(server)
        base = _reset_peak()
        t = time.perf_counter()
        if args.fresh_buffers:
            for _ in range(args.uploads):
                with open(path, "rb") as f:
                    data = f.read()  # one upload arrives in new memory
                acc.add(data)
                del data
        else:
            buffer = bytearray(upload_bytes)  # one receive buffer, reused for every upload
            for _ in range(args.uploads):
                with open(path, "rb") as f:
                    if f.readinto(buffer) != upload_bytes:
                        raise RuntimeError("short read")
                acc.add(buffer)
            del buffer
        seconds = time.perf_counter() - t
        peak = _status("VmHWM") - base
        total = acc.result()
        check = keys.decrypt(total)[:4] / args.uploads  # the sum is real: mean of identical uploads
    return {
        "probe": "server",
        "values": args.values,
        "uploads": args.uploads,
        "upload_bytes": upload_bytes,
        "sum_bytes": total.nbytes,
        "peak_bytes": peak,
        "peak_in_uploads": round(peak / upload_bytes, 3),
        "seconds": round(seconds, 3),
        "seconds_per_upload": round(seconds / args.uploads, 4),
        "receive": "new bytes per upload" if args.fresh_buffers else "one reused buffer",
        "first_values_of_mean": [round(float(v), 6) for v in check],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=["encrypt", "server"])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--preset", default="compact", choices=sorted(fh.PRESETS))
    parser.add_argument("--fresh-buffers", action="store_true",
                        help="server: read each upload into new memory (f.read) instead of one reused buffer")
    args = parser.parse_args()
    result = probe_encrypt(args) if args.probe == "encrypt" else probe_server(args)
    result["preset"] = args.preset
    print(json.dumps(result))


if __name__ == "__main__":
    main()
