"""The ``fhto`` command line: ``fhto demo`` (end-to-end engine demo) and ``fhto keygen``."""
from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import List, Optional

import numpy as np

from . import SEAL_VERSION, __version__
from .engine import Accumulator, KeySet
from .params import PRESETS, get_params


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def demo(args: argparse.Namespace) -> int:
    """Several simulated hospitals encrypt weighted updates; a server that holds only the public
    context sums them in a stream; the key holder decrypts the sum and checks it against float64."""
    rng = np.random.default_rng(args.seed)
    out = print if not args.quiet else (lambda *a, **k: None)
    out(f"fhto {__version__} (SEAL {SEAL_VERSION}): {args.hospitals} hospitals, {args.values:,} values each, "
        f"preset {args.preset}")

    t = time.perf_counter()
    keys = KeySet.generate(args.preset)
    server = keys.public_context()  # what the server gets: no secret key
    out(f"  keys       {time.perf_counter() - t:8.3f} s   {keys!r}")

    counts = rng.integers(50, 500, args.hospitals)  # patients per hospital: FedAvg weights
    acc = Accumulator(server, threads=args.threads)
    reference = np.zeros(args.values)
    enc_s, add_s, upload_bytes = [], [], 0
    for i, n_i in enumerate(counts):
        update = rng.uniform(-1, 1, args.values).astype(np.float32)
        reference += n_i * update.astype(np.float64)
        t = time.perf_counter()
        blob = keys.encrypt(update, weight=float(n_i), parties=args.hospitals, threads=args.threads)
        enc_s.append(time.perf_counter() - t)
        upload_bytes += blob.nbytes
        t = time.perf_counter()
        acc.add(blob.to_bytes())  # the server sees only bytes
        add_s.append(time.perf_counter() - t)
        out(f"  hospital {i + 1:3d}/{args.hospitals}: n={n_i:4d}  encrypt {enc_s[-1]:7.3f} s  "
            f"upload {_mib(blob.nbytes):>11}  server add {add_s[-1]:7.3f} s", flush=True)
        del blob, update

    t = time.perf_counter()
    total = acc.result()
    ser_s = time.perf_counter() - t
    t = time.perf_counter()
    fedavg = keys.decrypt(total, threads=args.threads) / counts.sum()
    dec_s = time.perf_counter() - t
    reference /= counts.sum()
    err = float(np.abs(fedavg - reference).max())
    bound = keys.error_bound(args.hospitals) / float(counts.sum())  # noise does not grow with the weights

    values_per_s = args.values / np.median(enc_s)
    out("")
    out(f"  per hospital  encrypt+serialize  median {np.median(enc_s):.3f} s  ({values_per_s / 1e6:.1f} M values/s)")
    out(f"                upload             {_mib(upload_bytes / args.hospitals)}  "
        f"({upload_bytes / args.hospitals / args.values:.2f} bytes/value)")
    out(f"  server        deserialize+add    median {np.median(add_s):.3f} s per hospital")
    out(f"                serialize sum      {ser_s:.3f} s  ({_mib(total.nbytes)})")
    out(f"  key holder    decrypt+decode     {dec_s:.3f} s")
    out(f"  FedAvg max abs error vs float64  {err:.3e}  (worst-case bound {bound:.3e})")
    out(f"  peak memory                      {_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")
    if not err <= bound:
        print(f"error: decrypted mean is off by {err:.3e}, above the bound {bound:.3e}", file=sys.stderr)
        return 1
    return 0


def keygen(args: argparse.Namespace) -> int:
    """Generate a key set (secret, 0600) and its public context (for the server)."""
    keys = KeySet.generate(args.preset)
    keys.save(args.secret)
    keys.public_context().save(args.public)
    print(f"wrote {args.secret} (secret key set, mode 0600) and {args.public} (public context for the server)")
    print(f"{get_params(args.preset).describe()}; fingerprint {keys.fingerprint}")
    return 0


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fhto", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fhto {__version__} (SEAL {SEAL_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="end-to-end demo of encrypted aggregation", description=demo.__doc__)
    p.add_argument("--hospitals", type=_positive, default=10, help="simulated hospitals (default 10)")
    p.add_argument("--values", type=_positive, default=1_000_000, help="values per update (default 1,000,000; ResNet-50: 25557032)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="aggregation", help="parameter preset")
    p.add_argument("--threads", type=_positive, default=None, help="worker threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=demo)

    p = sub.add_parser("keygen", help="generate a key set and its public context", description=keygen.__doc__)
    p.add_argument("--secret", default="fhto.keys", help="secret key set file (default fhto.keys)")
    p.add_argument("--public", default="fhto.pub", help="public context file (default fhto.pub)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="aggregation", help="parameter preset")
    p.set_defaults(func=keygen)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
