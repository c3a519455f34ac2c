"""Flower's own SecAgg+ on a synthetic update over a local Flower deployment: seconds per round
and per protocol stage, and bytes per message (what each message's records hold).

    .venv/bin/python benchmarks/flower/secagg_round.py [--values 241] [--nodes 3] [--rounds 2]
        [--poll SECONDS] [--out /tmp/fhto-secagg-round]

Without ``--poll`` the ServerApp uses Flower's own ``send_and_receive`` (3 s between pulls);
``--poll 0.05`` pulls as often as FHTO's exchange does. The apps are :mod:`secagg.server` and
:mod:`secagg.client` (next to this file). Prints a table and writes ``OUT/result.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from statistics import median
from typing import List, Optional

from deployed import run_app

STAGES = ("setup", "share_keys", "collect_masked_vectors", "unmask")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--values", type=int, default=241, help="update length (default: the study model's)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--poll", type=float, help="seconds between pulls (default: Flower's own send_and_receive)")
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--out", type=Path, default=Path("/tmp/fhto-secagg-round"))
    args = p.parse_args(argv)

    folder = args.out.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    nodes = {f"supernode-{i + 1}": {"partition-id": i} for i in range(args.nodes)}
    settings = {"values": args.values, "rounds": args.rounds, "poll": args.poll}
    result, launcher = run_app(folder, "secagg.server:app", "secagg.client:app", nodes, settings, args.timeout)
    result.update(launcher)
    (folder / "result.json").write_text(json.dumps(result, indent=1))

    net = launcher["traffic"]
    print(f"SecAgg+ {args.values:,} values, {args.nodes} SuperNodes, {args.rounds} rounds, poll "
          f"{'Flower (3 s)' if args.poll is None else f'{args.poll:g} s'}; {launcher['start_s']:.1f} s to start, "
          f"{launcher['wall_s']:.1f} s wall; max abs error of the aggregate {result['max_abs_error']:.1e}")
    print(f"rounds: {', '.join(f'{s:.2f} s' for s in result['rounds'])}")
    print("\n| stage | seconds (median over rounds) | bytes per message to a node | from a node |\n|---|---|---|---|")
    for stage in STAGES:
        rows = [e for e in result["exchanges"] if e["stage"] == stage]
        if rows:
            print(f"| {stage} | {median(e['seconds'] for e in rows):.2f} "
                  f"| {median(b for e in rows for b in e['sent']):,.0f} "
                  f"| {median(b for e in rows for b in e['received']):,.0f} |")
    per_round = {k: sum(sum(e[k]) for e in result["exchanges"]) / args.rounds for k in ("sent", "received")}
    print(f"| all four, per round (all nodes) | {median(result['rounds']):.2f} | {per_round['sent']:,.0f} "
          f"| {per_round['received']:,.0f} |")
    print(f"\nFlower's count for the run: to nodes {net['outbound-bytes']:,} B, from nodes {net['inbound-bytes']:,} B")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
