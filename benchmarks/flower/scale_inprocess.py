"""One encrypted round of the aggregation server with 100 synthetic hospitals in this process:
time by phase and bytes per message, for the study model's size and for 1,000,000 values.

Each hospital is a callable behind :class:`fhto_native.fl.transport.InProcess`: it draws a random
update, and returns a :class:`HospitalUpdate` whose payload is
``KeySet.encrypt(contribution(update, loss), weight=n, parties=hospitals)``.
:class:`fhto_native.fl.server.Server` then sums the uploads one at a time and the key holder
decrypts the sum; the result is checked against the plaintext FedAvg of the same updates.

    .venv/bin/python benchmarks/flower/scale_inprocess.py [--hospitals 100] [--values 241 1000000]
        [--checkpoint OUT/checkpoints/encrypted/state.json]

``--checkpoint`` takes the study model's size from a real run's checkpoint (its weights' length)
instead of the first ``--values``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from statistics import median
from typing import Dict, List, Optional

import numpy as np

from fhto_native import KeySet
from fhto_native.fl import checkpoint as checkpoint_file
from fhto_native.fl.keyholder import KeyHolder
from fhto_native.fl.protocol import HospitalUpdate, RoundPlan, contribution
from fhto_native.fl.scheduler import AdaptiveLR
from fhto_native.fl.server import Server
from fhto_native.fl.transport import InProcess

#: The study model's size (colon trial, hidden 16) as a `fhto flower` checkpoint records it.
STUDY_VALUES = 241


def one_round(values: int, hospitals: int, keys: KeySet, seed: int, threads: Optional[int]) -> Dict[str, object]:
    rng = np.random.default_rng(seed)
    updates = {f"hospital {i + 1}": rng.uniform(-0.05, 0.05, values) for i in range(hospitals)}
    counts = {name: int(rng.integers(50, 200)) for name in updates}
    encrypt_s: List[float] = []
    wire: List[int] = []

    def hospital(name: str):
        def fit(plan: RoundPlan) -> HospitalUpdate:
            t0 = time.perf_counter()
            batch = keys.encrypt(contribution(updates[name], 0.5), weight=counts[name], parties=plan.parties,
                                 threads=threads)
            update = HospitalUpdate(name, plan.round, payload=batch.to_bytes())
            encrypt_s.append(time.perf_counter() - t0)
            update.seconds["encrypt"] = encrypt_s[-1]
            wire.append(len(update.to_wire()))
            return update

        return fit

    server = Server(np.zeros(values), InProcess({name: hospital(name) for name in updates}),
                    lambda w: {"loss": 1.0}, AdaptiveLR(), public_context=keys.public_context(),
                    key_holder=KeyHolder(keys, min_contributions=2), min_hospitals=hospitals)
    plan = server.configure_round(1)["hospital 1"]
    record = server.run_round()
    reference = sum(counts[n] * updates[n] for n in updates) / sum(counts.values())
    seconds = record["seconds"]
    return {
        "values": values, "hospitals": record["reported"],
        "encrypt_median_s": median(encrypt_s), "encrypt_total_s": sum(encrypt_s),
        "aggregate_s": seconds["aggregate"], "add_per_upload_s": seconds["aggregate"] / hospitals,
        "decrypt_s": seconds["decrypt"],
        "plan_bytes": len(plan.to_wire()), "update_bytes": int(median(wire)), "sum_bytes": record["bytes"]["sum"],
        "plain_bytes": 8 * (values + 2), "max_abs_error": float(np.max(np.abs(server.weights - reference))),
    }


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hospitals", type=int, default=100)
    p.add_argument("--values", type=int, nargs="+", default=[STUDY_VALUES, 1_000_000])
    p.add_argument("--checkpoint", type=Path, help="a server checkpoint: the study model's size is its weights' length")
    p.add_argument("--preset", default="compact", help="CKKS preset (default: the study's, compact)")
    p.add_argument("--threads", type=int, help="encryption threads per hospital (default: every core)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sizes = list(args.values)
    if args.checkpoint:
        sizes[0] = len(checkpoint_file.decode(args.checkpoint.read_bytes())["weights"])
    keys = KeySet.generate(args.preset, seed=args.seed)
    rows = [one_round(n, args.hospitals, keys, args.seed, args.threads) for n in sizes]
    print(f"{args.hospitals} hospitals, preset {args.preset}, encryption threads {args.threads or 'all'}; "
          "server: one Accumulator thread; key holder: one thread")
    print(f"| values | encrypt + serialize, per hospital (median) | all hospitals | aggregate ({args.hospitals} adds + "
          "sum serialized) | per upload | decrypt | RoundPlan.to_wire() | HospitalUpdate.to_wire() | sum | plain sum "
          "| max abs error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['values']:,} | {1e3 * r['encrypt_median_s']:.2f} ms | {r['encrypt_total_s']:.3f} s "
              f"| {1e3 * r['aggregate_s']:.1f} ms | {1e3 * r['add_per_upload_s']:.3f} ms "
              f"| {1e3 * r['decrypt_s']:.2f} ms "
              f"| {r['plan_bytes']:,} B | {r['update_bytes']:,} B | {r['sum_bytes']:,} B | {r['plain_bytes']:,} B "
              f"| {r['max_abs_error']:.1e} |")


if __name__ == "__main__":
    main()
