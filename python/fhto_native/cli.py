"""The ``fhto`` command line: ``fhto run`` (the federated study), ``fhto demo`` (the engine alone)
and ``fhto keygen``."""
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


def run_study(args: argparse.Namespace) -> int:
    """Hospitals train a treatment-response model together through encrypted aggregation, compared
    with plaintext FedAvg, centralized training and each hospital alone; writes a report folder."""
    from .errors import FhtoError
    from .fl.run import RunConfig, run

    try:
        config = RunConfig(
            dataset="csv" if args.csv else args.dataset,
            files=args.csv or (),
            features=[c.strip() for c in args.features.split(",")] if args.features else (),
            treatment=args.treatment,
            outcome=args.outcome,
            arms=[a.strip() for a in args.arms.split(",")] if args.arms else None,
            hospitals=args.hospitals,
            split=args.split,
            dirichlet_alpha=args.dirichlet_alpha,
            split_column=args.split_column,
            rounds=args.rounds,
            local_epochs=args.local_epochs,
            eta0=args.eta0,
            alpha=args.alpha,
            patience=args.patience,
            decay=args.decay,
            preset=args.preset,
            seed=args.seed,
            out=args.out,
            resume=args.resume,
            min_hospitals=args.min_hospitals,
            timeout=args.timeout,
            compare=not args.no_compare,
            audit=not args.no_audit,
            scheduler_experiment=not args.no_scheduler_experiment,
            n_boot=args.bootstrap,
        )
        run(config, say=(lambda *a, **k: None) if args.quiet else (lambda line: print(line, flush=True)))
    except FhtoError as exc:
        print(f"fhto run: {exc}", file=sys.stderr)
        return 2
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

    p = sub.add_parser("run", help="the federated treatment-optimization study (default: colon trial)",
                       description=run_study.__doc__)
    p.add_argument("--dataset", choices=["colon", "gbsg2"], default="colon",
                   help="bundled randomized trial (default colon: adjuvant chemotherapy, 3 arms)")
    p.add_argument("--csv", nargs="+", metavar="FILE", help="bring your own data: one CSV or Parquet file per hospital")
    p.add_argument("--features", help="with --csv: comma-separated feature columns")
    p.add_argument("--treatment", default="treatment", help="with --csv: the treatment-arm column")
    p.add_argument("--outcome", default="outcome", help="with --csv: the 0/1 outcome column (1 = bad outcome)")
    p.add_argument("--arms", help="with --csv: comma-separated allowed arms (default: those in the files)")
    p.add_argument("--hospitals", type=_positive, default=5, help="simulated hospitals (default 5)")
    p.add_argument("--split", choices=["iid", "dirichlet", "column"], default="dirichlet",
                   help="how patients are split across hospitals (default dirichlet: non-IID)")
    p.add_argument("--dirichlet-alpha", type=float, default=1.0, help="Dirichlet concentration (default 1.0; smaller: less IID)")
    p.add_argument("--split-column", help="with --split column: the column whose values are the hospitals")
    p.add_argument("--rounds", type=_positive, default=40, help="federated rounds (default 40)")
    p.add_argument("--local-epochs", type=_positive, default=2, help="local epochs per round (default 2)")
    p.add_argument("--eta0", type=float, default=0.05, help="base learning rate eta_0 (default 0.05)")
    p.add_argument("--alpha", type=float, default=2000.0, help="variance sensitivity alpha (default 2000)")
    p.add_argument("--patience", type=_positive, default=4, help="rounds without improvement before eta_0 decays")
    p.add_argument("--decay", type=float, default=0.5, help="eta_0 decay factor (default 0.5)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="compact", help="CKKS parameter preset")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="fhto-report", help="report folder (default ./fhto-report)")
    p.add_argument("--resume", action="store_true", help="continue from the last completed round in --out")
    p.add_argument("--min-hospitals", type=_positive, help="hospitals that must report for a round to count")
    p.add_argument("--timeout", type=float, help="seconds a hospital may take per round before it counts as failed")
    p.add_argument("--bootstrap", type=_positive, default=1000, help="bootstrap resamples for the policy value")
    p.add_argument("--no-compare", action="store_true", help="skip plaintext FedAvg, centralized and alone runs")
    p.add_argument("--no-audit", action="store_true", help="skip the membership-inference audit")
    p.add_argument("--no-scheduler-experiment", action="store_true", help="skip the noisy-hospital experiment")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run_study)

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
