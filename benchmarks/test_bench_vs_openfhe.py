"""Side-by-side benchmark: FHTO's multiparty (threshold) keys against OpenFHE's threshold CKKS.

Run from the repository root (needs OpenFHE's own environment, ``bash scripts/setup-openfhe.sh``;
the module is skipped without it)::

    .venv/bin/python -m pytest benchmarks/test_bench_vs_openfhe.py --benchmark-only -s

Per ciphertext, one thread, 3 parties, N-of-N, both libraries in one run:

* **OpenFHE** (the peer): at module setup, ``benchmarks/multiparty/openfhe_threshold.py`` runs
  once in a subprocess under ``.venv-openfhe/bin/python`` (``OPENFHE_VENV`` names another
  environment, as for the setup script) with ``OMP_NUM_THREADS=1``. Its JSON gives the medians per
  2,048-value ciphertext (ring dimension 4096, one 60-bit prime, scale 2^50, BV key switching):
  ``MakeCKKSPackedPlaintext + Encrypt``, ``EvalAddInPlace``, ``MultipartyDecryptMain``,
  ``MultipartyDecryptFusion`` of 3 shares (decoding included), and the ``Serialize(BINARY)`` sizes
  of a fresh ciphertext and of a share.
* **FHTO**: ``Consortium.create(3, 3)`` (the ``threshold`` preset: N=8192, data primes [48, 48],
  a 60-bit special prime, scale 2^86, bit-packed) and ``key_generation`` for three hospitals. Per
  8,192-value ciphertext, ``threads=1``:

  - ``encrypt``: ``public.encrypt(x, parties=3, threads=1).to_bytes()`` (encode, public-key
    encryption and the bit-packed wire format);
  - ``tag``: ``KeyShare.sign_tag(public, upload, round)``, the hospital's signed linear tag of
    its upload, which the parties check each sum against before they share it (OpenFHE has no
    counterpart);
  - ``add``: ``Accumulator.add`` of a second upload's bytes into a running sum that holds the
    first (each round's setup builds that sum, untimed): checks, unpacking and the addition;
  - ``share``: the share arithmetic, ``_core.mp_decryption_share`` on the sum's bytes (loading
    the sum, ``c1 * s_i``, the flooding noise, the rounding and packing), repeated on one sum;
  - ``share (Party)``: ``Party.decryption_share(sum, parties, round=..., tags=...)``, the public
    API, which adds the rules each party enforces (header checks, SHA-256 of the sum, the three
    signed tags checked against the sum's own tag, the ledger); a party shares a sum only once,
    so each round's setup makes a new ``Party`` (untimed);
  - ``combine``: ``multiparty.combine`` of the 3 shares (checks, decoding, the range check).

Rows are compared per value, values per second on one core: FHTO's time per ciphertext over
8,192, OpenFHE's over 2,048. The ratio is FHTO's values/s over OpenFHE's (above 1: FHTO is
faster), and FHTO's bytes per value over OpenFHE's (below 1: FHTO is smaller). FHTO's encrypt
includes writing the wire format and OpenFHE's does not; FHTO's share and combine load the sum
from bytes and OpenFHE's take it in memory. Nothing about speed is asserted; the combined sum is
checked against ``Consortium.error_bound``. The table is printed at the end of the run.

Targets: uploads and shares at most half OpenFHE's bytes per value; encryption and share
generation at least 5x OpenFHE's values/s per core. Share generation is judged twice: the
arithmetic, and the Party API, whose every call also pays costs that do not depend on the sum's
length (so one ciphertext is its worst case; ``benchmarks/multiparty/phases.py`` measures it at
model sizes).

Options (environment variables):

* ``FHTO_BENCH_MP_ROUNDS``: rounds of each FHTO benchmark (default 200);
* ``FHTO_BENCH_OPENFHE_ARGS``: arguments of the OpenFHE script (default
  ``--ciphertexts 50 --repeats 5``, its own defaults).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

ROOT = Path(__file__).resolve().parent.parent
OPENFHE_VENV = os.environ.get("OPENFHE_VENV", ".venv-openfhe")
OPENFHE_PYTHON = ROOT / OPENFHE_VENV / "bin" / "python"
OPENFHE_SCRIPT = ROOT / "benchmarks" / "multiparty" / "openfhe_threshold.py"
if not OPENFHE_PYTHON.exists():
    pytest.skip(
        f"OpenFHE's environment is missing ({OPENFHE_VENV}/bin/python does not exist); "
        "the FHTO-vs-OpenFHE comparison needs it: bash scripts/setup-openfhe.sh",
        allow_module_level=True,
    )

import fhto_native as fh  # noqa: E402
from fhto_native import _core  # noqa: E402
from fhto_native import multiparty as mp  # noqa: E402
from fhto_native.fl.threshold import KeyGeneration, key_generation  # noqa: E402

PARTIES = 3
HOSPITALS = ["h1", "h2", "h3"]
#: The round the hospitals' tags are signed for.
ROUND = 1
#: Seed of the hospitals' updates (uniform in [-1, 1], one ciphertext each).
SEED = 20261129

#: Phase key: (pytest-benchmark group, OpenFHE's phase in the script's JSON or None where it has
#: no counterpart, target of FHTO's values/s over OpenFHE's or None for an informational row).
PHASES: Dict[str, Tuple[str, Optional[str], Optional[float]]] = {
    "encrypt": ("vs-openfhe encrypt (+ serialize for FHTO)", "encrypt", 5.0),
    "tag": ("vs-openfhe sign the upload's tag (FHTO only)", None, None),
    "add": ("vs-openfhe add one upload into the sum", "add_inplace", None),
    "share": ("vs-openfhe decryption share (arithmetic)", "share_main", 5.0),
    "share_party": ("vs-openfhe decryption share (Party API)", "share_main", 5.0),
    "combine": ("vs-openfhe combine 3 shares + decode", "fusion", None),
}
#: The printed table's label of each phase.
LABELS = {
    "encrypt": "encrypt",
    "tag": "tag + sign an upload",
    "add": "add (into a running sum)",
    "share": "share, arithmetic only",
    "share_party": "share, Party API",
    "combine": "combine 3 shares + decode",
}
#: Target of FHTO's bytes per value over OpenFHE's (at most), for uploads and shares.
BYTES_TARGET = 0.5


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise pytest.UsageError(f"{name} must be an int; got {raw!r}") from None
    if value < 1:
        raise pytest.UsageError(f"{name} must be >= 1; got {value}")
    return value


ROUNDS = _env_int("FHTO_BENCH_MP_ROUNDS", 200)
OPENFHE_ARGS = shlex.split(os.environ.get("FHTO_BENCH_OPENFHE_ARGS", "--ciphertexts 50 --repeats 5"))


def run_openfhe() -> dict:
    """OpenFHE's measurements: its script, run once in its own environment."""
    cmd = [str(OPENFHE_PYTHON), str(OPENFHE_SCRIPT), *OPENFHE_ARGS]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"the OpenFHE script failed (exit {proc.returncode}): {' '.join(cmd[1:])}\n{proc.stderr[-2000:]}",
            pytrace=False,
        )
    return json.loads(proc.stdout)


# -- shared state ------------------------------------------------------------------------------


@dataclass
class Fhto:
    """FHTO's side: round 0 for three hospitals, one upload and signed tag each, their sum and
    its three decryption shares."""

    gen: KeyGeneration
    updates: List[np.ndarray]
    uploads: List[bytes]
    tags: List[bytes]
    total: bytes
    shares: List[mp.DecryptionShare]

    @property
    def consortium(self) -> mp.Consortium:
        return self.gen.consortium

    @property
    def values(self) -> int:
        return self.gen.public.values_per_ciphertext

    def describe(self) -> str:
        return f"FHTO {fh.__version__}: {self.consortium.describe()}, threads=1"

    @classmethod
    def create(cls) -> "Fhto":
        gen = key_generation(mp.Consortium.create(PARTIES, PARTIES), HOSPITALS)
        n = gen.public.values_per_ciphertext
        rng = np.random.default_rng(SEED)
        updates = [rng.uniform(-1.0, 1.0, n) for _ in HOSPITALS]
        uploads = [gen.public.encrypt(x, parties=PARTIES, threads=1).to_bytes() for x in updates]
        tags = [gen.shares[h].sign_tag(gen.public, u, ROUND).to_bytes() for h, u in zip(HOSPITALS, uploads)]
        total = fh.aggregate(uploads, gen.public, threads=1).to_bytes()
        group = list(range(1, PARTIES + 1))
        shares = [mp.Party(gen.shares[h], gen.public, threads=1).decryption_share(total, group, round=ROUND, tags=tags)
                  for h in HOSPITALS]
        return cls(gen, updates, uploads, tags, total, shares)


@dataclass
class Comparison:
    fhto: Fhto
    openfhe: dict
    seconds: Dict[str, float] = field(default_factory=dict)
    max_error: Optional[float] = None

    def openfhe_describe(self) -> str:
        p = self.openfhe["parameters"]
        return (
            f"OpenFHE {self.openfhe['wheel_version']}: N={p['ring_dimension']}, {p['ciphertext_modulus_bits']}-bit "
            f"modulus, scale 2^{p['log2_scale']:g}, {p['key_switch_technique']} key switching, "
            f"{p['slots_used']} values per ciphertext, OMP_NUM_THREADS={p['omp_num_threads']}, "
            f"{self.openfhe['ciphertexts_per_pass']} ciphertexts x {self.openfhe['repeats']} passes"
        )

    def theirs(self, phase: str) -> Optional[dict]:
        """OpenFHE's measurements of the phase (None where it has no counterpart)."""
        key = PHASES[phase][1]
        return None if key is None else self.openfhe["phases"][key]

    def rates(self, phase: str) -> Tuple[Optional[float], Optional[float]]:
        """Values per second of FHTO (None before its benchmark ran) and of OpenFHE (None: no counterpart)."""
        theirs = self.theirs(phase)
        s = self.seconds.get(phase)
        return (None if s is None else self.fhto.values / s), (None if theirs is None else theirs["values_per_second"])

    def bytes_per_value(self) -> Dict[str, Tuple[float, float]]:
        """Upload and share: (FHTO, OpenFHE) bytes per value."""
        theirs = self.openfhe["bytes_per_value"]
        n = self.fhto.values
        return {
            "upload": (len(self.fhto.uploads[0]) / n, theirs["ciphertext_fresh"]),
            "share": (self.fhto.shares[0].nbytes / n, theirs["share_main"]),
        }

    def record(self, phase: str, benchmark) -> None:
        """Store FHTO's median and the comparison in the benchmark's extra_info."""
        stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
        median = stats.stats.median if stats is not None else None
        theirs = self.theirs(phase)
        extra = benchmark.extra_info
        extra.update(config=self.fhto.describe(), values_per_ciphertext=self.fhto.values)
        if theirs is not None:
            extra.update(
                openfhe_call=self.openfhe["phase_calls"][PHASES[phase][1]],
                openfhe_seconds_per_ciphertext=theirs["seconds_per_ciphertext"],
                openfhe_values_per_second=theirs["values_per_second"],
            )
        if median is None:
            return
        self.seconds[phase] = median
        ours, theirs_rate = self.rates(phase)
        extra.update(median_s=median, values_per_second=ours)
        if theirs_rate is None:
            return
        ratio = ours / theirs_rate
        extra.update(fhto_over_openfhe=round(ratio, 3))
        target = PHASES[phase][2]
        if target is not None:
            extra.update(target=target, verdict="met" if ratio >= target else "missed")

    def table(self) -> List[str]:
        def us(s: Optional[float]) -> str:
            return "n/a" if s is None else f"{s * 1e6:,.1f} us"

        def rate(r: Optional[float]) -> str:
            return "n/a" if r is None else f"{r / 1e6:.2f} M"

        n, m = self.fhto.values, int(self.openfhe["parameters"]["slots_used"])
        rows = [("phase", f"FHTO / {n:,} values", "FHTO values/s", f"OpenFHE / {m:,} values",
                 "OpenFHE values/s", "FHTO / OpenFHE", "target", "result")]
        for phase, label in LABELS.items():
            ours, theirs = self.rates(phase)
            openfhe = self.theirs(phase)
            ratio = None if ours is None or theirs is None else ours / theirs
            target = PHASES[phase][2]
            verdict = "-" if target is None or ratio is None else (
                "met" if ratio >= target else f"missed by {target / ratio:.2f}x")
            rows.append((
                label, us(self.seconds.get(phase)), rate(ours),
                "-" if openfhe is None else us(openfhe["seconds_per_ciphertext"]),
                "-" if openfhe is None else rate(theirs),
                "-" if openfhe is None else "n/a" if ratio is None else f"{ratio:.2f}x",
                "-" if target is None else f">= {target:g}x", verdict,
            ))
        for what, (ours, theirs) in self.bytes_per_value().items():
            ratio = ours / theirs
            verdict = "met" if ratio <= BYTES_TARGET else f"missed by {ratio / BYTES_TARGET:.2f}x"
            rows.append((f"{what} bytes per value", f"{ours:.3f}", "", f"{theirs:.3f}", "", f"{ratio:.3f}",
                         f"<= {BYTES_TARGET:g}", verdict))
        if self.max_error is not None:
            bound = self.fhto.consortium.error_bound(PARTIES, public=self.fhto.gen.public, max_abs=1.0)
            rows.append(("max abs error of a 3-party sum", f"{self.max_error:.2e}", f"(bound {bound:.2e})",
                         f"{self.openfhe['max_abs_error']:.2e}", "", "", "", ""))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        out = []
        for j, r in enumerate(rows):
            out.append("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths))))
            if j == 0:
                out.append("  ".join("-" * w for w in widths))
        tag = len(self.fhto.tags[0])
        return ([f"  {self.fhto.describe()}", f"  {self.openfhe_describe()}",
                 f"  FHTO's signed tag: {tag} B per upload, not counted in the upload's bytes", ""] + out)


@pytest.fixture(scope="module")
def comparison(bench_summary: list):
    state = Comparison(fhto=Fhto.create(), openfhe=run_openfhe())
    yield state
    bench_summary.append(("FHTO vs OpenFHE: threshold CKKS, 3 parties, per value on one core", state.table()))


# -- the phases ----------------------------------------------------------------------------------


def test_encrypt(benchmark, comparison: Comparison) -> None:
    """Hospital: encode + public-key encrypt + serialize one ciphertext's worth of values."""
    benchmark.group = PHASES["encrypt"][0]
    f = comparison.fhto
    x = f.updates[0]
    public = f.gen.public
    upload = benchmark.pedantic(lambda: public.encrypt(x, parties=PARTIES, threads=1).to_bytes(),
                                rounds=ROUNDS, warmup_rounds=1, iterations=1)
    assert len(upload) == len(f.uploads[0]) == public.encrypted_size(f.values, mode="public_key")
    comparison.record("encrypt", benchmark)
    benchmark.extra_info.update(upload_bytes=len(upload), bytes_per_value=len(upload) / f.values)


def test_tag(benchmark, comparison: Comparison) -> None:
    """Hospital: the signed tag of its upload for the round."""
    benchmark.group = PHASES["tag"][0]
    f = comparison.fhto
    share = f.gen.shares[HOSPITALS[0]]
    tag = benchmark.pedantic(lambda: share.sign_tag(f.gen.public, f.uploads[0], ROUND).to_bytes(),
                             rounds=ROUNDS, warmup_rounds=1, iterations=1)
    assert tag == f.tags[0]  # a tag is a function of the upload, the round and the keys
    comparison.record("tag", benchmark)
    benchmark.extra_info.update(tag_bytes=len(tag))


def test_add(benchmark, comparison: Comparison) -> None:
    """Server: deserialize + add a second upload into a running sum holding the first."""
    benchmark.group = PHASES["add"][0]
    f = comparison.fhto

    def setup():
        acc = fh.Accumulator(f.gen.public, threads=1)
        acc.add(f.uploads[0])
        return (acc,), {}

    benchmark.pedantic(lambda acc: acc.add(f.uploads[1]), setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    comparison.record("add", benchmark)


def test_share(benchmark, comparison: Comparison) -> None:
    """Party 1: the share arithmetic on the 3-party sum, without the rules or the ledger."""
    benchmark.group = PHASES["share"][0]
    f = comparison.fhto
    c = f.consortium
    secret = f.gen.shares[HOSPITALS[0]]._data_secret()
    lam = [1] * (len(c.params.coeff_modulus_bits) - 1)  # N-of-N: no Lagrange weight; one per data prime
    payload = benchmark.pedantic(
        lambda: _core.mp_decryption_share(f.gen.public._core, f.total, secret, lam, c.flood_bits, c.round_bits, None, 1),
        rounds=ROUNDS, warmup_rounds=1, iterations=1,
    )
    assert len(payload) == len(f.shares[0].payload)
    comparison.record("share", benchmark)


def test_share_party(benchmark, comparison: Comparison) -> None:
    """Party 1: ``Party.decryption_share`` of the 3-party sum with its tags; a new Party per round (untimed)."""
    benchmark.group = PHASES["share_party"][0]
    f = comparison.fhto
    group = list(range(1, PARTIES + 1))

    def setup():
        return (mp.Party(f.gen.shares[HOSPITALS[0]], f.gen.public, threads=1),), {}

    share = benchmark.pedantic(lambda party: party.decryption_share(f.total, group, round=ROUND, tags=f.tags),
                               setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    comparison.record("share_party", benchmark)
    benchmark.extra_info.update(share_bytes=share.nbytes, bytes_per_value=share.nbytes / f.values)


def test_combine(benchmark, comparison: Comparison) -> None:
    """Anyone: combine the 3 shares and decode; checks the sum against the stated error bound."""
    benchmark.group = PHASES["combine"][0]
    f = comparison.fhto
    c = f.consortium
    values = benchmark.pedantic(lambda: mp.combine(c, f.gen.public, f.total, f.shares, threads=1),
                                rounds=ROUNDS, warmup_rounds=1, iterations=1)
    comparison.record("combine", benchmark)
    error = float(np.max(np.abs(values - np.sum(f.updates, axis=0))))
    bound = c.error_bound(PARTIES, public=f.gen.public, max_abs=1.0)
    comparison.max_error = error
    benchmark.extra_info.update(max_abs_error=error, error_bound=bound)
    assert error <= bound, f"the combined sum is off by {error:.3g}, above the stated bound {bound:.3g}"
