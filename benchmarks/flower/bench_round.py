"""One synthetic FHTO round over a local Flower deployment (a SuperLink and N SuperNodes as real
processes): message sizes, the hospitals' encryption and serialization time, the server's time
per added upload, and the ServerApp's memory per phase against the size of one upload.

    .venv/bin/python benchmarks/flower/bench_round.py [--values 25557032] [--nodes 3]
        [--collect transport|stream] [--out /tmp/fhto-bench-round]

The apps are :mod:`bench_app.server` and :mod:`bench_app.client` (next to this file; put on the
Flower processes' ``PYTHONPATH``). Prints the tables and writes ``OUT/result.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from statistics import median
from typing import List, Optional

from deployed import mib, run_app
from fhto_native import KeySet


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--values", type=int, default=25_557_032, help="update length (default: ResNet-50's)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--collect", choices=["transport", "stream"], default="transport")
    p.add_argument("--preset", default="compact", help="CKKS preset (default: the study's, compact)")
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--out", type=Path, default=Path("/tmp/fhto-bench-round"))
    args = p.parse_args(argv)

    folder = args.out.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "keys").mkdir(parents=True)
    keys = KeySet.generate(args.preset, seed=0)
    keys.save(folder / "keys" / "fhto.keys")
    keys.public_context().save(folder / "keys" / "fhto.pub")
    nodes = {f"supernode-{i + 1}": {"keys": str(folder / "keys" / "fhto.keys"), "partition-id": i,
                                    "key-holder": i == 0, "report": str(folder / f"client-{i}.jsonl")}
             for i in range(args.nodes)}
    settings = {"values": args.values, "public": str(folder / "keys" / "fhto.pub"), "collect": args.collect,
                "key_holder": 0, "timeout": args.timeout}
    result, launcher = run_app(folder, "bench_app.server:app", "bench_app.client:app", nodes, settings, args.timeout)
    started, wall, net = launcher["start_s"], launcher["wall_s"], launcher["traffic"]
    reports = [json.loads(line) for i in range(args.nodes)
               for line in (folder / f"client-{i}.jsonl").read_text().splitlines()]
    trains = [r for r in reports if r["handler"] == "train"]
    decrypts = [r for r in reports if r["handler"] == "decrypt"]
    upload = trains[0]["upload_bytes"]
    result.update({**launcher, "clients": reports, "upload_bytes": upload})
    (folder / "result.json").write_text(json.dumps(result, indent=1))

    s, m, sz = result["seconds"], result["memory"], result["sizes"]
    print(f"{args.values:,} values, {args.nodes} SuperNodes, preset {args.preset}, collect={args.collect}; "
          f"{started:.1f} s to start, {wall:.1f} s wall; "
          f"max abs error of the decrypted mean {result['max_abs_error']:.1e}")
    print("\n| message | bytes |\n|---|---|")
    print(f"| plan (RoundPlan.to_wire, to each node) | {sz['plan']:,} ({mib(sz['plan'])}) |")
    print(f"| upload (HospitalUpdate.to_wire, from each node) | {upload:,} ({mib(upload)}) |")
    print(f"| sum (to the key holder) | {sz['sum']:,} ({mib(sz['sum'])}) |")
    print(f"| plain sum (from the key holder) | {sz['plain']:,} ({mib(sz['plain'])}) |")
    print(f"| Flower's count for the run: to nodes / from nodes "
          f"| {net['outbound-bytes']:,} / {net['inbound-bytes']:,} |")
    print("\n| phase | seconds (median over hospitals) |\n|---|---|")
    for key in ("load-keys", "read-plan", "draw-update", "encrypt", "to-wire", "bytes-record"):
        print(f"| hospital: {key} | {median(r['seconds'][key] for r in trains):.3f} |")
    print(f"| server: add one upload (median of {len(result['adds'])}) | {median(result['adds']):.3f} |")
    for key, value in s.items():
        print(f"| server: {key} | {value:.2f} |")
    if decrypts:
        print(f"| key holder: load keys + decrypt | {decrypts[0]['seconds']['decrypt']:.3f} |")
    print("\n| ServerApp memory | bytes | above baseline | uploads' worth |\n|---|---|---|---|")
    base = m["baseline"]
    for key, value in m.items():
        print(f"| {key} | {mib(value)} | {mib(value - base)} | {(value - base) / upload:.2f} |")
    print(f"| hospital process peak (max) | {mib(max(r['peak'] for r in trains))} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
