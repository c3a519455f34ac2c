"""Shared options and fixtures for the fhto_native micro-benchmarks.

Model-size update length
------------------------
The "model size" benchmarks encrypt, sum and decrypt one flat update of ``FHTO_BENCH_VALUES``
values (default 1,000,000, which keeps a routine run short). Set it through the environment or
the equivalent command-line option (the option wins when both are given)::

    FHTO_BENCH_VALUES=25557032 .venv/bin/python -m pytest benchmarks/ --benchmark-only
    .venv/bin/python -m pytest benchmarks/ --benchmark-only --bench-values=25557032

25,557,032 is the parameter count of ResNet-50; the named size ``resnet50`` means the same
(``FHTO_BENCH_VALUES=resnet50``). Underscores are allowed (``1_000_000``).

Parameter preset
----------------
``FHTO_BENCH_PRESET`` / ``--bench-preset`` picks the key set's parameter preset
(``aggregation``, the default, or ``conservative``). The per-ciphertext benchmarks always use
exactly one ciphertext's worth of values (4096 for ``aggregation``).

End-of-run summary
------------------
A benchmark module may append ``(title, lines)`` to the ``bench_summary`` fixture; every such
section is printed after pytest-benchmark's tables (``test_bench_vs_tenseal.py`` prints its
FHTO-vs-TenSEAL comparison this way).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import fhto_native

#: Default model-size update length: short enough for a routine run.
DEFAULT_VALUES = 1_000_000

#: Named update lengths accepted by FHTO_BENCH_VALUES / --bench-values.
NAMED_SIZES = {"resnet50": 25_557_032}

#: Party budget every benchmark batch is encrypted for. Each benchmarked sum holds two
#: contributions, so any budget >= 2 works; 1000 is a realistic federation size whose range
#: (about 370 per value with the aggregation preset) comfortably covers values in [-1, 1].
PARTIES = 1000

#: Seed of the random updates, so every run encrypts the same data.
SEED = 20240601


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fhto-bench", "fhto_native benchmarks")
    group.addoption(
        "--bench-values",
        action="store",
        default=None,
        help=(
            "length of the model-size update (int, or 'resnet50' for 25557032); "
            f"overrides FHTO_BENCH_VALUES; default {DEFAULT_VALUES}"
        ),
    )
    group.addoption(
        "--bench-preset",
        action="store",
        default=None,
        help="parameter preset of the key set; overrides FHTO_BENCH_PRESET; default 'aggregation'",
    )


def _parse_values(text: str) -> int:
    text = text.strip().lower()
    if text in NAMED_SIZES:
        return NAMED_SIZES[text]
    try:
        n = int(text)
    except ValueError:
        raise pytest.UsageError(
            f"FHTO_BENCH_VALUES / --bench-values must be a positive int or one of {sorted(NAMED_SIZES)}; got {text!r}"
        ) from None
    if n < 1:
        raise pytest.UsageError(f"FHTO_BENCH_VALUES / --bench-values must be positive; got {n}")
    return n


_VALUES_KEY = pytest.StashKey[int]()
_PRESET_KEY = pytest.StashKey[str]()
_SUMMARY_KEY = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    # Validate the options once, up front, so a typo fails the run with one clear message.
    raw = config.getoption("--bench-values") or os.environ.get("FHTO_BENCH_VALUES")
    config.stash[_VALUES_KEY] = _parse_values(raw) if raw else DEFAULT_VALUES
    preset = config.getoption("--bench-preset") or os.environ.get("FHTO_BENCH_PRESET") or "aggregation"
    if preset not in fhto_native.PRESETS:
        raise pytest.UsageError(
            f"FHTO_BENCH_PRESET / --bench-preset must be one of {sorted(fhto_native.PRESETS)}; got {preset!r}"
        )
    config.stash[_PRESET_KEY] = preset


@pytest.fixture(scope="session")
def bench_values(pytestconfig: pytest.Config) -> int:
    """Length of the model-size update."""
    return pytestconfig.stash[_VALUES_KEY]


@pytest.fixture(scope="session")
def bench_preset(pytestconfig: pytest.Config) -> str:
    """Parameter preset of the benchmark key set."""
    return pytestconfig.stash[_PRESET_KEY]


@pytest.fixture(scope="session")
def bench_summary(pytestconfig: pytest.Config) -> list:
    """Sections ``(title, lines)`` printed at the end of the run (see the module docstring)."""
    return pytestconfig.stash.setdefault(_SUMMARY_KEY, [])


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for title, lines in config.stash.get(_SUMMARY_KEY, []):
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def keys(bench_preset: str) -> fhto_native.KeySet:
    """The hospitals' key set (secret key included)."""
    return fhto_native.KeySet.generate(bench_preset)


@pytest.fixture(scope="session")
def pub(keys: fhto_native.KeySet) -> fhto_native.PublicContext:
    """The server's public context (no secret key)."""
    return keys.public_context()


@pytest.fixture(scope="session")
def per_ct_values(keys: fhto_native.KeySet) -> int:
    """Values one ciphertext carries (4096 with the aggregation preset)."""
    return keys.values_per_ciphertext


@pytest.fixture(scope="session")
def parties() -> int:
    """Party budget the benchmark batches are encrypted for (see PARTIES)."""
    return PARTIES


def _random_update(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=n).astype(np.float32)


@pytest.fixture(scope="session")
def ct_update(per_ct_values: int) -> np.ndarray:
    """A float32 update in [-1, 1] that fills exactly one ciphertext."""
    return _random_update(per_ct_values, SEED)


@pytest.fixture(scope="session")
def model_update(bench_values: int) -> np.ndarray:
    """A float32 model-size update in [-1, 1]."""
    return _random_update(bench_values, SEED + 1)


@pytest.fixture(scope="session")
def ct_encrypted(keys: fhto_native.KeySet, ct_update: np.ndarray) -> fhto_native.EncryptedUpdate:
    return keys.encrypt(ct_update, parties=PARTIES, threads=1)


@pytest.fixture(scope="session")
def model_encrypted(keys: fhto_native.KeySet, model_update: np.ndarray) -> fhto_native.EncryptedUpdate:
    return keys.encrypt(model_update, parties=PARTIES)
