"""Side-by-side benchmark: FHTO against TenSEAL configured as NVIDIA FLARE configures it for HE.

Run from the repository root (needs ``tenseal``; the module is skipped without it)::

    .venv/bin/python -m pytest benchmarks/test_bench_vs_tenseal.py --benchmark-only

At the ResNet-50 size (25,557,032 values)::

    FHTO_BENCH_VALUES=25557032 .venv/bin/python -m pytest benchmarks/test_bench_vs_tenseal.py --benchmark-only

That run takes minutes, nearly all of it TenSEAL's (about 10 s per hospital to encrypt on a 2-core
machine, and the deserialize+add benchmark encrypts every upload again, untimed);
``FHTO_BENCH_TENSEAL_HOSPITALS=3`` shortens it. Peak memory is a few GB (one TenSEAL upload of
about 1.5 GB plus the server's running sum).

A federated round of ``H`` hospitals, each with its own float32 update in [-1, 1] (drawn from
``numpy.random.default_rng(i)`` for hospital ``i``, so both peers encrypt exactly the same data):

* **FHTO**: a ``KeySet`` of the ``compact`` preset (N=4096, one 56-bit prime, scale 2^37,
  bit-packed). Hospital: ``keys.encrypt(update, weight=1, parties=H).to_bytes()``. Server:
  ``Accumulator(keys.public_context())`` adding the uploaded bytes, then ``result()``. Key holder:
  ``keys.decrypt(sum_bytes)``. Every call uses ``FHTO_BENCH_VS_THREADS`` threads (default: every
  core this process may run on).
* **TenSEAL** (NVIDIA FLARE's HE setup): ``ts.context(CKKS, poly_modulus_degree=8192,
  coeff_mod_bit_sizes=[60, 40, 40], encryption_type=SYMMETRIC)`` with ``global_scale = 2**40``.
  Hospital: the update (as float64) in chunks of 4096 values, ``ts.ckks_vector(ctx, chunk)
  .serialize()`` each. Server: ``ts.ckks_vector_from(server_ctx, blob)`` per chunk, added in place
  (``add_``) into a running list of sums, then ``serialize()`` per chunk. Key holder:
  ``ts.ckks_vector_from(ctx, blob).decrypt()`` per chunk, concatenated. Each chunk is one
  ciphertext, so each TenSEAL call runs on one thread.

  The server's context: ``ctx.copy().make_context_public()`` is refused for a symmetric context
  (``ValueError: make_context_public is not supported for symmetric encryption``), so the server
  gets ``ts.context_from(ctx.serialize(save_secret_key=False))``: the parameters without any key
  (``is_public()``), which is all ``ckks_vector_from`` and addition need; it cannot decrypt.

Result tables (pytest-benchmark groups, one FHTO row and one TenSEAL row each):

* ``vs-tenseal encrypt+serialize per hospital``: one round per hospital;
* ``vs-tenseal deserialize+add per hospital``: one round per hospital, each adding one upload
  into the server's running sum (the first round of either peer only loads the first upload;
  each upload is encrypted, untimed, in its round's setup and never stored, so memory holds one
  upload and one running sum at a time);
* ``vs-tenseal serialize aggregate``: the server serializing the sum (informational, no target);
* ``vs-tenseal decrypt aggregate``: the key holder deserializing and decrypting the sum.

FHTO runs its per-hospital rounds over all ``H`` hospitals; TenSEAL over its first
``FHTO_BENCH_TENSEAL_HOSPITALS`` (default ``H``), and its aggregate is the sum of those. The
decrypt tests check the decrypted mean (sum / hospitals) against the float64 mean: FHTO's max abs
error must be at most 1e-6; TenSEAL's is reported. Each benchmark's ``extra_info`` holds its
numbers and, once both peers ran, the TenSEAL/FHTO ratio, the target and the verdict; the same
comparison is printed as one table at the end of the run.

Options (environment variables; the update length is the suite's ``FHTO_BENCH_VALUES`` /
``--bench-values``, see conftest.py):

* ``FHTO_BENCH_VS_PRESET``: FHTO's parameter preset (default ``compact``; e.g. ``aggregation``);
* ``FHTO_BENCH_HOSPITALS``: hospitals ``H`` (default 10);
* ``FHTO_BENCH_TENSEAL_HOSPITALS``: hospitals TenSEAL encrypts and sums (1..H, default H);
* ``FHTO_BENCH_VS_THREADS``: FHTO's threads per call (default: all cores; 1 compares per core).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
try:  # any ImportError (not installed, or a broken install) skips the module
    import tenseal as ts
except ImportError as exc:
    pytest.skip(
        f"TenSEAL is not importable ({exc}); the FHTO-vs-TenSEAL comparison needs it (pip install tenseal)",
        allow_module_level=True,
    )

import fhto_native  # noqa: E402

#: TenSEAL's values per chunk: one N=8192 CKKS ciphertext holds 4096 slots.
TENSEAL_CHUNK = 4096
#: Rounds of the stateless aggregate phases (serialize the sum, decrypt it).
AGGREGATE_ROUNDS = 3
#: FHTO's required accuracy of the decrypted mean.
FHTO_MAX_MEAN_ERROR = 1e-6

#: Phase keys, their pytest-benchmark groups and TenSEAL/FHTO targets (None: informational).
PHASES: Dict[str, Tuple[str, Optional[float]]] = {
    "encrypt": ("vs-tenseal encrypt+serialize per hospital", 10.0),
    "add": ("vs-tenseal deserialize+add per hospital", 10.0),
    "serialize": ("vs-tenseal serialize aggregate", None),
    "decrypt": ("vs-tenseal decrypt aggregate", 10.0),
}
#: Target of TenSEAL's upload bytes per value over FHTO's.
BYTES_TARGET = 8.0

PEERS = ["fhto", "tenseal"]


# -- options ---------------------------------------------------------------------------------


def _env_int(name: str, default: Optional[int], minimum: int = 1) -> Optional[int]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise pytest.UsageError(f"{name} must be an int; got {raw!r}") from None
    if value < minimum:
        raise pytest.UsageError(f"{name} must be >= {minimum}; got {value}")
    return value


def _options() -> Tuple[str, int, int, Optional[int]]:
    preset = os.environ.get("FHTO_BENCH_VS_PRESET") or "compact"
    if preset not in fhto_native.PRESETS:
        raise pytest.UsageError(f"FHTO_BENCH_VS_PRESET must be one of {sorted(fhto_native.PRESETS)}; got {preset!r}")
    hospitals = _env_int("FHTO_BENCH_HOSPITALS", 10)
    tenseal_hospitals = _env_int("FHTO_BENCH_TENSEAL_HOSPITALS", hospitals)
    if tenseal_hospitals > hospitals:
        raise pytest.UsageError(
            f"FHTO_BENCH_TENSEAL_HOSPITALS ({tenseal_hospitals}) must not exceed FHTO_BENCH_HOSPITALS ({hospitals})"
        )
    threads = _env_int("FHTO_BENCH_VS_THREADS", None)
    return preset, hospitals, tenseal_hospitals, threads


PRESET, HOSPITALS, TENSEAL_HOSPITALS, FHTO_THREADS = _options()


def hospital_update(i: int, n: int) -> np.ndarray:
    """Hospital ``i``'s float32 update in [-1, 1] (the same for both peers)."""
    return np.random.default_rng(i).uniform(-1.0, 1.0, size=n).astype(np.float32)


# -- the two peers: same four calls, each on its own library -----------------------------------


class FhtoPeer:
    name = "FHTO"

    def __init__(self, preset: str, parties: int, threads: Optional[int]) -> None:
        self.keys = fhto_native.KeySet.generate(preset)
        self.pub = self.keys.public_context()  # the server's: no secret key
        self.parties = parties
        self.threads = threads
        self.hospitals = parties
        p = self.keys.params
        self.describe = (
            f"fhto_native {preset}: N={p.poly_modulus_degree}, q={list(p.coeff_modulus_bits)} bits, "
            f"scale 2^{p.scale_bits}, packed={p.packed}, threads={threads or 'all cores'}"
        )

    def encrypt(self, update: np.ndarray) -> bytes:
        """Hospital: encode + encrypt + serialize."""
        return self.keys.encrypt(update, weight=1.0, parties=self.parties, threads=self.threads).to_bytes()

    @staticmethod
    def upload_bytes(upload: bytes) -> int:
        return len(upload)

    def new_server(self) -> fhto_native.Accumulator:
        return fhto_native.Accumulator(self.pub, threads=self.threads)

    @staticmethod
    def add(server: fhto_native.Accumulator, upload: bytes) -> None:
        """Server: deserialize + add one upload into the running sum."""
        server.add(upload)

    @staticmethod
    def serialize_sum(server: fhto_native.Accumulator) -> bytes:
        return server.result().to_bytes()

    def decrypt(self, total: bytes) -> np.ndarray:
        """Key holder: deserialize + decrypt + decode the sum."""
        return self.keys.decrypt(total, threads=self.threads)


class TensealPeer:
    name = "TenSEAL"

    def __init__(self, hospitals: int) -> None:
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=8192,
            coeff_mod_bit_sizes=[60, 40, 40],
            encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC,
        )
        ctx.global_scale = 2**40
        self.ctx = ctx  # hospitals and key holder: secret key
        # ctx.copy().make_context_public() raises ValueError for a symmetric context; a context
        # serialized without its secret key loads as a public one (parameters only).
        self.server_ctx = ts.context_from(ctx.serialize(save_secret_key=False))
        assert self.server_ctx.is_public() and not self.server_ctx.is_private()
        self.hospitals = hospitals
        self.describe = (
            f"tenseal {ts.__version__}: N=8192, q=[60, 40, 40] bits, scale 2^40, symmetric, "
            f"{TENSEAL_CHUNK}-value chunks, one thread per call"
        )

    def encrypt(self, update: np.ndarray) -> List[bytes]:
        """Hospital: one ckks_vector per 4096-value chunk, each serialized."""
        values = update.astype(np.float64)  # the fastest input TenSEAL takes (vs float32, list)
        ctx = self.ctx
        return [
            ts.ckks_vector(ctx, values[i : i + TENSEAL_CHUNK]).serialize()
            for i in range(0, values.size, TENSEAL_CHUNK)
        ]

    @staticmethod
    def upload_bytes(upload: List[bytes]) -> int:
        return sum(len(b) for b in upload)

    @staticmethod
    def new_server() -> list:
        return []

    def add(self, server: list, upload: List[bytes]) -> None:
        """Server: ckks_vector_from per chunk, added in place into the running sums."""
        ctx = self.server_ctx
        if not server:
            server.extend(ts.ckks_vector_from(ctx, b) for b in upload)
            return
        if len(server) != len(upload):
            raise ValueError(f"upload has {len(upload)} chunks; the running sum has {len(server)}")
        for acc, b in zip(server, upload):
            acc.add_(ts.ckks_vector_from(ctx, b))

    @staticmethod
    def serialize_sum(server: list) -> List[bytes]:
        return [v.serialize() for v in server]

    def decrypt(self, total: List[bytes]) -> np.ndarray:
        """Key holder: deserialize with the secret context, decrypt each chunk, concatenate."""
        ctx = self.ctx
        return np.concatenate([np.asarray(ts.ckks_vector_from(ctx, b).decrypt(), dtype=np.float64) for b in total])


# -- shared state: the servers' sums and the measurements ----------------------------------------


@dataclass
class PhaseResult:
    median_s: Optional[float] = None
    extra_info: Optional[dict] = None


@dataclass
class Comparison:
    values: int
    peers: Dict[str, Any] = field(default_factory=dict)
    servers: Dict[str, Tuple[Any, int]] = field(default_factory=dict)
    totals: Dict[str, Tuple[Any, int]] = field(default_factory=dict)
    phases: Dict[Tuple[str, str], PhaseResult] = field(default_factory=dict)
    bytes_per_value: Dict[str, float] = field(default_factory=dict)
    mean_error: Dict[str, float] = field(default_factory=dict)

    def aggregate(self, key: str) -> Tuple[Any, int]:
        """The server's running sum over all of the peer's hospitals (built untimed if needed)."""
        if key not in self.servers:
            peer = self.peers[key]
            server = peer.new_server()
            for i in range(peer.hospitals):
                peer.add(server, peer.encrypt(hospital_update(i, self.values)))
            self.servers[key] = (server, peer.hospitals)
        return self.servers[key]

    def total(self, key: str) -> Tuple[Any, int]:
        """The serialized sum the key holder receives (built untimed if needed)."""
        if key not in self.totals:
            server, count = self.aggregate(key)
            self.totals[key] = (self.peers[key].serialize_sum(server), count)
            del self.servers[key]  # the server's job is done; free its sum
        return self.totals[key]

    def record(self, phase: str, key: str, benchmark, **info) -> None:
        """Store a benchmark's numbers in its extra_info; fill in the ratio once both peers ran."""
        stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
        median = stats.stats.median if stats is not None else None
        extra = benchmark.extra_info
        extra.update(peer=self.peers[key].name, config=self.peers[key].describe, values=self.values, **info)
        if median is not None:
            extra["median_s"] = median
        self.phases[(phase, key)] = PhaseResult(median, extra)
        fhto, tenseal = self.phases.get((phase, "fhto")), self.phases.get((phase, "tenseal"))
        if fhto and tenseal and fhto.median_s and tenseal.median_s:
            target = PHASES[phase][1]
            ratio = tenseal.median_s / fhto.median_s
            for r in (fhto, tenseal):
                r.extra_info["tenseal_over_fhto"] = round(ratio, 3)
                r.extra_info["target"] = target
                if target is not None:
                    r.extra_info["verdict"] = "PASS" if ratio >= target else "MISS"
        if phase == "encrypt" and len(self.bytes_per_value) == 2:
            ratio = self.bytes_per_value["tenseal"] / self.bytes_per_value["fhto"]
            for k in PEERS:
                r = self.phases.get(("encrypt", k))
                if r is not None:
                    r.extra_info["bytes_per_value_tenseal_over_fhto"] = round(ratio, 3)
                    r.extra_info["bytes_per_value_target"] = BYTES_TARGET
                    r.extra_info["bytes_per_value_verdict"] = "PASS" if ratio >= BYTES_TARGET else "MISS"

    def table(self) -> List[str]:
        def fmt_s(s: Optional[float]) -> str:
            return "n/a" if s is None else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s")

        rows = [("phase", "FHTO", "TenSEAL", "TenSEAL/FHTO", "target", "result")]
        for phase, (group, target) in PHASES.items():
            f = self.phases.get((phase, "fhto"))
            t = self.phases.get((phase, "tenseal"))
            fm = f.median_s if f else None
            tm = t.median_s if t else None
            ratio = tm / fm if fm and tm else None
            verdict = "-" if target is None or ratio is None else ("PASS" if ratio >= target else "MISS")
            rows.append((
                group.replace("vs-tenseal ", "") + " (median)",
                fmt_s(fm),
                fmt_s(tm),
                "n/a" if ratio is None else f"{ratio:.1f}x",
                "-" if target is None else f">= {target:g}x",
                verdict,
            ))
        fb, tb = self.bytes_per_value.get("fhto"), self.bytes_per_value.get("tenseal")
        ratio = tb / fb if fb and tb else None
        rows.append((
            "upload bytes per value",
            "n/a" if fb is None else f"{fb:.3f}",
            "n/a" if tb is None else f"{tb:.3f}",
            "n/a" if ratio is None else f"{ratio:.2f}x",
            f">= {BYTES_TARGET:g}x",
            "n/a" if ratio is None else ("PASS" if ratio >= BYTES_TARGET else "MISS"),
        ))
        fe, te = self.mean_error.get("fhto"), self.mean_error.get("tenseal")
        rows.append((
            "max abs error of decrypted mean",
            "n/a" if fe is None else f"{fe:.2e}",
            "n/a" if te is None else f"{te:.2e}",
            "",
            f"FHTO <= {FHTO_MAX_MEAN_ERROR:g}",
            "n/a" if fe is None else ("PASS" if fe <= FHTO_MAX_MEAN_ERROR else "FAIL"),
        ))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        out = []
        for j, r in enumerate(rows):
            cells = [cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths))]
            out.append("  ".join(cells))
            if j == 0:
                out.append("  ".join("-" * w for w in widths))
        lines = [f"{self.values} values per update; FHTO over {HOSPITALS} hospitals, TenSEAL over {TENSEAL_HOSPITALS}"]
        lines += [f"  {p.name}: {p.describe}" for p in self.peers.values()]
        return lines + [""] + out


@pytest.fixture(scope="module")
def comparison(bench_values: int, bench_summary: list):
    state = Comparison(values=bench_values)
    yield state
    state.servers.clear()
    state.totals.clear()
    if state.phases or state.bytes_per_value or state.mean_error:
        bench_summary.append(("FHTO vs TenSEAL (NVIDIA FLARE configuration)", state.table()))


@pytest.fixture(params=PEERS)
def peer(request: pytest.FixtureRequest, comparison: Comparison) -> str:
    """The peer's key ("fhto" or "tenseal"); its object is built once and kept in ``comparison``."""
    key = request.param
    if key not in comparison.peers:
        if key == "fhto":
            comparison.peers[key] = FhtoPeer(PRESET, HOSPITALS, FHTO_THREADS)
        else:
            comparison.peers[key] = TensealPeer(TENSEAL_HOSPITALS)
    return key


# -- the phases ----------------------------------------------------------------------------


def test_encrypt(benchmark, comparison: Comparison, peer: str) -> None:
    """Hospital: encrypt + serialize its whole update; one round per hospital, uploads dropped."""
    benchmark.group = PHASES["encrypt"][0]
    p = comparison.peers[peer]
    n = comparison.values
    nbytes: List[int] = []
    next_hospital = iter(range(p.hospitals))

    def setup():
        return (hospital_update(next(next_hospital), n),), {}

    def encrypt(update):
        upload = p.encrypt(update)
        nbytes.append(p.upload_bytes(upload))
        return None  # drop the upload: only one is ever alive

    benchmark.pedantic(encrypt, setup=setup, rounds=p.hospitals, warmup_rounds=0, iterations=1)
    if peer == "fhto":  # FHTO's size is exact; TenSEAL's varies a little (zstd-compressed)
        assert set(nbytes) == {p.keys.encrypted_size(n, mode="symmetric")}
    upload_bytes = sum(nbytes) / len(nbytes)
    bytes_per_value = upload_bytes / n
    comparison.bytes_per_value[peer] = bytes_per_value
    comparison.record(
        "encrypt", peer, benchmark,
        rounds_are="hospitals", hospitals=len(nbytes),
        upload_bytes=round(upload_bytes), bytes_per_value=round(bytes_per_value, 4),
    )


def test_add(benchmark, comparison: Comparison, peer: str) -> None:
    """Server: deserialize + add one upload into the running sum; one round per hospital.

    Each round's setup encrypts that hospital's update (untimed); the running sum carries over
    from round to round, so the last round leaves the sum of all the peer's hospitals.
    """
    benchmark.group = PHASES["add"][0]
    p = comparison.peers[peer]
    n = comparison.values
    server = p.new_server()
    added = [0]
    next_hospital = iter(range(p.hospitals))

    def setup():
        return (p.encrypt(hospital_update(next(next_hospital), n)),), {}

    def add(upload):
        p.add(server, upload)
        added[0] += 1

    benchmark.pedantic(add, setup=setup, rounds=p.hospitals, warmup_rounds=0, iterations=1)
    for i in range(added[0], p.hospitals):  # --benchmark-disable runs a single round
        p.add(server, p.encrypt(hospital_update(i, n)))
    comparison.servers[peer] = (server, p.hospitals)
    comparison.totals.pop(peer, None)
    comparison.record("add", peer, benchmark, rounds_are="hospitals", hospitals=p.hospitals)


def test_serialize_sum(benchmark, comparison: Comparison, peer: str) -> None:
    """Server: serialize the running sum for the key holder."""
    benchmark.group = PHASES["serialize"][0]
    p = comparison.peers[peer]
    server, count = comparison.aggregate(peer)
    total = benchmark.pedantic(p.serialize_sum, args=(server,), rounds=AGGREGATE_ROUNDS, warmup_rounds=0, iterations=1)
    comparison.totals[peer] = (total, count)
    del comparison.servers[peer]
    comparison.record("serialize", peer, benchmark, hospitals=count, sum_bytes=p.upload_bytes(total))


def test_decrypt(benchmark, comparison: Comparison, peer: str) -> None:
    """Key holder: deserialize + decrypt the sum; checks the decrypted mean against float64."""
    benchmark.group = PHASES["decrypt"][0]
    p = comparison.peers[peer]
    n = comparison.values
    total, count = comparison.total(peer)
    out = benchmark.pedantic(p.decrypt, args=(total,), rounds=AGGREGATE_ROUNDS, warmup_rounds=0, iterations=1)
    del comparison.totals[peer], total  # the last phase: free the sum
    assert out.shape == (n,)

    expected = np.zeros(n, dtype=np.float64)
    for i in range(count):
        expected += hospital_update(i, n)
    error = float(np.max(np.abs(out / count - expected / count)))
    comparison.mean_error[peer] = error
    comparison.record("decrypt", peer, benchmark, hospitals=count, max_abs_error_of_mean=error)
    if peer == "fhto":
        assert error <= FHTO_MAX_MEAN_ERROR, f"FHTO's decrypted mean is off by {error:.3g} (> {FHTO_MAX_MEAN_ERROR:g})"
    else:
        assert np.isfinite(error)
