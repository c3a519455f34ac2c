"""Micro-benchmarks of the fhto_native CKKS engine (pytest-benchmark).

Run from the repository root (the project's pytest config collects only ``tests/``, so the
benchmarks never run as part of the normal test suite and must be named explicitly)::

    .venv/bin/python -m pytest benchmarks/ --benchmark-only

Model size defaults to 1,000,000 values; for the ResNet-50 size (25,557,032 values)::

    FHTO_BENCH_VALUES=25557032 .venv/bin/python -m pytest benchmarks/ --benchmark-only

(``--bench-values=25557032`` or ``FHTO_BENCH_VALUES=resnet50`` do the same; see conftest.py.)

Three result tables, one per pytest-benchmark group:

* ``per-ciphertext``: exactly one ciphertext's values (4096 with the aggregation preset) on one
  thread, for the four phases of a round: encode+encrypt+serialize (hospital),
  deserialize+add into an accumulator that already holds one batch (server), serialize the sum
  (server), decrypt+decode the sum (key holder);
* ``model-size``: the same four phases on a whole update, on every core (``threads=None``);
* ``encrypt-scaling``: model-size encryption on 1 and on 2 threads; the table's ratio column
  shows the speed-up.

Every benchmark records ``values``, ``ciphertexts``, ``bytes`` (of the batch it produces or
consumes), ``bytes_per_value`` and ``values_per_second`` (from the median time) in
``extra_info``, so ``--benchmark-json`` output carries throughput and wire size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import fhto_native  # noqa: E402

#: Rounds of the model-size benchmarks (each round is a whole update; keep the run short).
MODEL_ROUNDS = 3
#: Untimed warm-up rounds of the model-size benchmarks (first-touch allocation, thread start).
MODEL_WARMUP = 1
#: Rounds of the per-ciphertext benchmarks that need fresh state (an accumulator) every round.
PER_CT_SETUP_ROUNDS = 200


@dataclass
class Case:
    """One benchmark size: what to encrypt, on how many threads, into which table."""

    #: pytest-benchmark group (one result table per group).
    group: str
    values: np.ndarray
    encrypted: fhto_native.EncryptedUpdate
    threads: Optional[int]
    #: None: let pytest-benchmark calibrate rounds (fast, stateless phases).
    rounds: Optional[int]
    setup_rounds: int
    warmup_rounds: int


@pytest.fixture(params=["per-ciphertext", "model-size"])
def case(request: pytest.FixtureRequest) -> Case:
    if request.param == "per-ciphertext":
        ct = request.getfixturevalue("ct_update")
        return Case(
            group=f"per-ciphertext: {ct.size} values, 1 thread",
            values=ct,
            encrypted=request.getfixturevalue("ct_encrypted"),
            threads=1,
            rounds=None,
            setup_rounds=PER_CT_SETUP_ROUNDS,
            warmup_rounds=1,
        )
    model = request.getfixturevalue("model_update")
    return Case(
        group=f"model-size: {model.size} values, all cores",
        values=model,
        encrypted=request.getfixturevalue("model_encrypted"),
        threads=None,
        rounds=MODEL_ROUNDS,
        setup_rounds=MODEL_ROUNDS,
        warmup_rounds=MODEL_WARMUP,
    )


def _run(benchmark, case: Case, target, *args):
    """Time a stateless call: calibrated for small inputs, a few fixed rounds for large ones."""
    if case.rounds is None:
        return benchmark(target, *args)
    return benchmark.pedantic(
        target, args=args, rounds=case.rounds, warmup_rounds=case.warmup_rounds, iterations=1
    )


def _record(benchmark, update: fhto_native.EncryptedUpdate, **extra) -> None:
    """Store size and throughput of the batch a benchmark produced or consumed."""
    info = benchmark.extra_info
    info["values"] = update.value_count
    info["ciphertexts"] = update.ciphertext_count
    info["bytes"] = update.nbytes
    info["bytes_per_value"] = round(update.bytes_per_value, 4)
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    if stats is not None and stats.stats.median > 0:
        info["values_per_second"] = round(update.value_count / stats.stats.median)
    info.update(extra)


def _sum_of_two(pub: fhto_native.PublicContext, case: Case) -> fhto_native.Accumulator:
    acc = fhto_native.Accumulator(pub, threads=case.threads)
    acc.add(case.encrypted)
    acc.add(case.encrypted)
    return acc


def _expected_ciphertexts(keys: fhto_native.KeySet, n: int) -> int:
    v = keys.values_per_ciphertext
    return (n + v - 1) // v


# -- the four phases of a round --------------------------------------------------------------


def test_encrypt(benchmark, keys, parties: int, case: Case) -> None:
    """Hospital: encode + encrypt + serialize one update (symmetric, seeded)."""
    benchmark.group = case.group

    def encrypt(values):
        return keys.encrypt(values, parties=parties, threads=case.threads)

    update = _run(benchmark, case, encrypt, case.values)
    assert update.value_count == case.values.size
    assert update.ciphertext_count == _expected_ciphertexts(keys, case.values.size)
    _record(benchmark, update, threads=case.threads, mode=update.mode)


def test_add(benchmark, pub, case: Case) -> None:
    """Server: deserialize (expand seeds) + add one upload into a running sum of one upload.

    Each round gets a fresh accumulator already holding the same batch (built untimed in
    ``setup``), so the party budget is never exceeded and every round does the same work.
    """
    benchmark.group = case.group
    update = case.encrypted

    def setup():
        acc = fhto_native.Accumulator(pub, threads=case.threads)
        acc.add(update)
        return (acc,), {}

    def add(acc):
        return acc.add(update)

    acc = benchmark.pedantic(
        add, setup=setup, rounds=case.setup_rounds, warmup_rounds=case.warmup_rounds, iterations=1
    )
    assert acc.contributions == 2
    _record(benchmark, update, threads=case.threads)


def test_serialize_sum(benchmark, pub, case: Case) -> None:
    """Server: serialize the running sum of two uploads (``Accumulator.result()``)."""
    benchmark.group = case.group
    acc = _sum_of_two(pub, case)
    total = _run(benchmark, case, acc.result)
    assert total.contributions == 2
    assert total.value_count == case.values.size
    _record(benchmark, total, threads=case.threads)


def test_decrypt(benchmark, keys, pub, case: Case) -> None:
    """Key holder: deserialize + decrypt + decode the sum of two uploads."""
    benchmark.group = case.group
    total = _sum_of_two(pub, case).result()

    def decrypt(update):
        return keys.decrypt(update, threads=case.threads)

    out = _run(benchmark, case, decrypt, total)
    expected = 2.0 * case.values.astype(np.float64)
    assert out.shape == expected.shape
    assert np.max(np.abs(out - expected)) <= keys.error_bound(2)
    _record(benchmark, total, threads=case.threads)


# -- thread scaling --------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_encrypt_scaling(benchmark, keys, parties: int, model_update: np.ndarray, threads: int) -> None:
    """Model-size encode + encrypt + serialize on 1 vs 2 threads (compare the two rows)."""
    benchmark.group = f"encrypt-scaling: {model_update.size} values"

    def encrypt(values):
        return keys.encrypt(values, parties=parties, threads=threads)

    update = benchmark.pedantic(
        encrypt, args=(model_update,), rounds=MODEL_ROUNDS, warmup_rounds=MODEL_WARMUP, iterations=1
    )
    assert update.value_count == model_update.size
    _record(benchmark, update, threads=threads)
