"""One federated round under FHTO's multiparty (threshold) keys, timed phase by phase.

    .venv/bin/python benchmarks/multiparty/phases.py [--values 1000000 25557032]
        [--parties 5] [--threshold 3] [--threads 1]

For each update length: a new consortium (``Consortium.create(parties, threshold)``, the
``threshold`` preset) runs round 0 in process (``fl.threshold.key_generation``: key shares, the
collective public key and, for t-of-n, the Shamir exchange); each hospital then encrypts its own
update, uniform in (-1, 1), under the collective public key and signs its upload's tag
(``KeyShare.sign_tag``), and the server adds the upload into its ``Accumulator`` before the next
hospital encrypts, so memory holds the running sum and one upload (plus the plaintext reference
sum). The server serializes the sum; the first ``threshold`` parties each make a decryption share
with ``Party.decryption_share`` (which checks the sum against the hospitals' signed tags);
``multiparty.combine`` decodes the sum from the shares. Reported: each phase's seconds (median
over hospitals or parties), bytes per value of an upload, of the sum and of a share, the largest
error of the combined sum against the plaintext sum next to ``Consortium.error_bound(parties,
public=..., max_abs=1.0)``, and the process's peak resident memory so far. Prints a markdown
table.

At 25,557,032 values an upload is about 614 MB and the running sum about 818 MB; the process
peaks at about 2.6 GiB.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from statistics import median
from typing import Dict, List, Optional, Sequence

import numpy as np

import fhto_native as fh
from fhto_native import multiparty as mp
from fhto_native.fl.threshold import key_generation

#: The round the hospitals sign their tags for.
ROUND = 1


def timed(samples: List[float], call, *args, **kwargs):
    """``call(*args, **kwargs)``, its duration appended to ``samples``."""
    start = time.perf_counter()
    out = call(*args, **kwargs)
    samples.append(time.perf_counter() - start)
    return out


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one_round(values: int, parties: int, threshold: int, threads: int, seed: int) -> Dict[str, object]:
    """Round 0 and one encrypted round of ``values`` values per hospital; the measurements."""
    consortium = mp.Consortium.create(parties, threshold)
    names = [f"hospital {i + 1}" for i in range(parties)]
    gen = key_generation(consortium, names)
    public = gen.public

    encrypt_s: List[float] = []
    tag_s: List[float] = []
    add_s: List[float] = []
    tags: List[bytes] = []
    expected = np.zeros(values, dtype=np.float64)
    server = fh.Accumulator(public, threads=threads)
    upload_bytes = 0
    for i in range(parties):  # hospital by hospital: one upload alive at a time
        update = np.random.default_rng([seed, i]).uniform(-1.0, 1.0, values)
        upload = timed(encrypt_s, public.encrypt, update, parties=parties, threads=threads).to_bytes()
        expected += update
        del update
        tags.append(timed(tag_s, gen.shares[names[i]].sign_tag, public, upload, ROUND).to_bytes())
        upload_bytes = len(upload)
        timed(add_s, server.add, upload)
        del upload

    serialize_s: List[float] = []
    total = timed(serialize_s, server.result).to_bytes()
    del server

    group = list(range(1, threshold + 1))
    share_s: List[float] = []
    shares = []
    for name in names[:threshold]:
        party = mp.Party(gen.shares[name], public, threads=threads)
        shares.append(timed(share_s, party.decryption_share, total, group, round=ROUND, tags=tags))
    share_bytes = shares[0].nbytes

    combine_s: List[float] = []
    out = timed(combine_s, mp.combine, consortium, public, total, shares, threads=threads)
    error = float(np.max(np.abs(out - expected)))
    return {
        "values": values,
        "consortium": consortium.describe(),
        "keygen_s": gen.seconds,
        "keygen_bytes_per_hospital": sorted(set(gen.bytes_per_hospital.values())),
        "encrypt_s": median(encrypt_s),
        "tag_s": median(tag_s),
        "tag_bytes": len(tags[0]),
        "add_s": median(add_s),
        "serialize_s": serialize_s[0],
        "share_s": median(share_s),
        "combine_s": combine_s[0],
        "upload_bytes_per_value": upload_bytes / values,
        "sum_bytes_per_value": len(total) / values,
        "share_bytes_per_value": share_bytes / values,
        "max_abs_error": error,
        "error_bound": consortium.error_bound(parties, public=public, max_abs=1.0),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def duration(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.3f} s"


def seconds(s: float, values: int) -> str:
    return f"{duration(s)} ({values / s / 1e6:.2f} M values/s)"


def table(results: Sequence[Dict[str, object]], parties: int, threshold: int) -> List[str]:
    """The results as a markdown table, one column per update length."""
    rows = [
        ("key generation, whole consortium (round 0, in process)", lambda r: duration(r["keygen_s"])),
        ("key generation: bytes sent + received per hospital",
         lambda r: " / ".join(f"{b:,}" for b in r["keygen_bytes_per_hospital"])),
        (f"encrypt, per hospital (median of {parties})", lambda r: seconds(r["encrypt_s"], r["values"])),
        (f"sign the upload's tag, per hospital (median of {parties})", lambda r: seconds(r["tag_s"], r["values"])),
        (f"server: add an upload into the sum (median of {parties})", lambda r: seconds(r["add_s"], r["values"])),
        ("server: serialize the sum", lambda r: duration(r["serialize_s"])),
        (f"decryption share, per party (median of {threshold})", lambda r: seconds(r["share_s"], r["values"])),
        (f"combine {threshold} shares + decode", lambda r: seconds(r["combine_s"], r["values"])),
        ("upload: bytes per value (and its signed tag)",
         lambda r: f"{r['upload_bytes_per_value']:.3f} (+ {r['tag_bytes']} B)"),
        ("sum: bytes per value", lambda r: f"{r['sum_bytes_per_value']:.3f}"),
        ("share: bytes per value", lambda r: f"{r['share_bytes_per_value']:.3f}"),
        ("max abs error of the combined sum", lambda r: f"{r['max_abs_error']:.2e}"),
        (f"stated bound, error_bound({parties}, max_abs=1)", lambda r: f"{r['error_bound']:.2e}"),
        ("peak resident memory of the process so far", lambda r: f"{r['peak_rss_bytes'] / 2**30:.2f} GiB"),
    ]
    out = ["| phase | " + " | ".join(f"{r['values']:,} values" for r in results) + " |",
           "|---|" + "---|" * len(results)]
    for label, cell in rows:
        out.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--values", type=int, nargs="+", default=[1_000_000, 25_557_032],
                   help="update lengths, one round each (default: 1000000 25557032)")
    p.add_argument("--parties", type=int, default=5, help="hospitals, each holding a key share (default 5)")
    p.add_argument("--threshold", type=int, default=3, help="parties that decrypt together (default 3)")
    p.add_argument("--threads", type=int, default=1, help="threads per call (default 1)")
    p.add_argument("--seed", type=int, default=20261129, help="seed of the hospitals' updates")
    args = p.parse_args(argv)
    if any(v < 1 for v in args.values):
        p.error("--values must be positive")
    if not 2 <= args.parties <= 1000 or not 1 <= args.threshold <= args.parties:
        p.error("--parties must be 2 to 1000 and --threshold 1 to --parties")
    if args.threads < 1:
        p.error("--threads must be at least 1")

    threads = args.threads
    results = []
    for values in args.values:
        results.append(one_round(values, args.parties, args.threshold, threads, args.seed))
        print(f"{values:,} values: done, max abs error {results[-1]['max_abs_error']:.2e}", file=sys.stderr, flush=True)
    print(f"{results[0]['consortium']}; {args.parties} hospitals, threads={threads}, "
          f"fhto_native {fh.__version__}, updates uniform(-1, 1)\n")
    print("\n".join(table(results, args.parties, args.threshold)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
