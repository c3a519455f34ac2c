"""Flower's own SecAgg+ (``SecAggPlusWorkflow`` + ``secaggplus_mod``, the legacy API driven from a
Message-API ServerApp) on a synthetic update, for comparison with FHTO's round. Adapted from the
Flower 1.42 spike; the launcher is ``benchmarks/flower/secagg_round.py``."""
from __future__ import annotations

#: Each client's sample count (its FedAvg weight; SecAgg+ scales by it over ``max_weight`` = 1000
#: before quantizing, so a small count costs precision).
SAMPLES = 100
#: Each synthetic client's update is uniform in [-SPREAD, SPREAD], drawn from seed 1000 + partition.
SPREAD = 0.05
