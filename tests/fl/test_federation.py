from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.errors import FormatError, ParameterError
from fhto_native.fl.keyholder import KeyHolder
from fhto_native.fl.protocol import HospitalUpdate, fedavg, update_variance
from fhto_native.fl.server import RoundFailed, Server
from fhto_native.fl.transport import InProcess
from fhto_native.fl.scheduler import AdaptiveLR
from fhto_native.study.data import TreatmentData
from fhto_native.study.hospital import Hospital
from fhto_native.study.metrics import binary_metrics
from fhto_native.study.models import TreatmentResponseModel, design_matrix, flat_weights, predict, set_flat_weights


def synthetic(n: int, seed: int) -> TreatmentData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = rng.integers(0, 2, n)
    logit = X[:, 0] - 0.5 * X[:, 1] + (t == 1) * (0.8 * X[:, 2])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return TreatmentData(X=X, treatment=t.astype(np.int64), y=y, feature_names=("a", "b", "c", "d"),
                         arms=("control", "treated"), outcome="synthetic", source=f"synthetic {seed}")


@pytest.fixture(scope="module")
def setup():
    hospitals = [synthetic(n, s) for n, s in [(80, 1), (120, 2), (60, 3)]]
    validation = synthetic(100, 9)
    mean, std = np.zeros(4), np.ones(4)
    return hospitals, validation, mean, std


def make_server(setup, keys=None, replace=None, checkpoint=None, resume=False, **kwargs):
    """A server over three in-process hospitals; ``replace`` swaps some for other callables. With a
    checkpoint folder the hospitals keep their own state files beside it."""
    hospitals, validation, mean, std = setup

    def factory():
        import torch

        torch.manual_seed(0)
        return TreatmentResponseModel(4, 2, 8)

    states = None if checkpoint is None else checkpoint / "hospitals"
    if states is not None:
        states.mkdir(parents=True, exist_ok=True)
    parties = {
        f"h{i}": Hospital(f"h{i}", d, factory, mean, std, keys, resume=resume,
                          state_file=None if states is None else states / f"h{i}.json")
        for i, d in enumerate(hospitals)
    }
    x_val = design_matrix(validation.X, validation.treatment, 2, mean, std)
    model = factory()

    def evaluate(weights):
        set_flat_weights(model, weights)
        return binary_metrics(validation.y, predict(model, x_val))

    server = Server(
        flat_weights(factory()), InProcess({**{k: h.fit for k, h in parties.items()}, **(replace or {})}), evaluate,
        kwargs.pop("scheduler", AdaptiveLR(eta0=0.1, alpha=100.0)),
        public_context=keys.public_context() if keys else None,
        key_holder=KeyHolder(keys) if keys else None, checkpoint=checkpoint, **kwargs,
    )
    return server, parties


def test_weights_do_not_alias_the_callers_array():
    model = TreatmentResponseModel(4, 2, 8)
    w = flat_weights(model)
    set_flat_weights(model, w)
    next(model.parameters()).data.add_(1.0)
    assert not np.allclose(flat_weights(model), w)


def test_fedavg_and_variance_are_the_formulas():
    rng = np.random.default_rng(0)
    updates, counts = rng.normal(size=(3, 50)), np.array([10, 30, 60])
    np.testing.assert_allclose(fedavg((counts[:, None] * updates).sum(axis=0), counts.sum()),
                               np.average(updates, axis=0, weights=counts), rtol=1e-12)
    u = updates[0]
    assert update_variance(u) == pytest.approx(((u - u.mean()) ** 2).mean(), rel=1e-12)
    with pytest.raises(ParameterError):
        fedavg(u, 0)


def test_encrypted_rounds_match_plaintext_rounds(setup):
    keys = fh.KeySet.generate("compact")
    enc, parties = make_server(setup, keys=keys)
    plain, _ = make_server(setup)
    start = enc.weights.copy()
    enc.fit(4)
    plain.fit(4)
    assert np.abs(enc.weights - start).max() > 1e-3  # the model learned
    assert enc.history[-1]["val_loss"] < enc.history[0]["val_loss"]
    diff = np.abs(enc.weights - plain.weights).max()
    assert 0 < diff < 1e-6  # CKKS noise, nothing more
    assert [r["round"] for r in enc.history] == [1, 2, 3, 4]
    r = enc.history[-1]
    assert set(r["seconds"]) >= {"train", "encrypt", "aggregate", "decrypt", "evaluate"}
    assert r["bytes"]["upload"] > 0 and r["bytes"]["sum"] > 0 and r["reported"] == 3
    assert math.isfinite(r["train_loss"]) and r["train_loss"] > 0
    # The server holds no per-hospital number: only who took part.
    assert not {"lr", "sigma2", "n"} & set(r)
    # Each hospital computed its own rate from its own variance: the noisiest the smallest rate.
    lr = {k: h.rate.log[4]["lr"] for k, h in parties.items()}
    s2 = {k: h.rate.log[3]["sigma2"] for k, h in parties.items()}
    assert min(lr, key=lr.get) == max(s2, key=s2.get)
    assert all(lr[k] == pytest.approx(0.1 / (1 + 100.0 * s2[k]), rel=1e-12) for k in lr)


def test_encrypted_aggregate_equals_the_pure_fedavg(setup):
    keys = fh.KeySet.generate("compact")
    enc, parties = make_server(setup, keys=keys)
    plans = enc.configure_round(1)
    updates, failures = enc.collect(plans)
    assert not failures
    summed_updates, summed, _, _, refused = enc.aggregate(updates)
    assert len(summed_updates) == 3 and not refused
    plain_parties = {k: Hospital(k, h.data, lambda: TreatmentResponseModel(4, 2, 8), np.zeros(4), np.ones(4), None)
                     for k, h in parties.items()}
    plain = np.sum([plain_parties[k].fit(p).plain for k, p in plans.items()], axis=0)
    assert summed.total_n == plain[-2] == sum(h.n for h in parties.values())  # the count slot, rounded exactly
    np.testing.assert_allclose(fedavg(summed.weighted_sum, summed.total_n), fedavg(plain[:-2], plain[-2]), atol=1e-8)
    assert summed.train_loss == pytest.approx(plain[-1] / plain[-2], abs=1e-8)


def test_a_failing_hospital_is_recorded_and_the_round_completes(setup):
    def broken(plan):
        raise RuntimeError("disk full")

    server, parties = make_server(setup, min_hospitals=2, replace={"h1": broken})
    record = server.run_round()
    assert record["reported"] == 2 and any("h1: RuntimeError: disk full" in f for f in record["failures"])


def test_too_few_hospitals_retries_then_raises(setup):
    calls = []

    def broken(plan):
        calls.append(plan.round)
        raise RuntimeError("offline")

    server, _ = make_server(setup, min_hospitals=3, retries=1, replace={"h0": broken})
    with pytest.raises(RoundFailed, match="only 2 of 3 hospitals reported"):
        server.run_round()
    assert len(calls) == 2 and server.round == 0 and server.history == []


def test_a_slow_hospital_times_out_and_the_round_ends_at_the_deadline(setup):
    release = threading.Event()
    ready = {}

    def hung(plan):
        release.wait(10)  # a hospital that hangs far past the deadline
        return ready["h2"]

    server, parties = make_server(setup, min_hospitals=2, timeout=0.5,
                                  replace={"h0": lambda plan: ready["h0"], "h1": lambda plan: ready["h1"], "h2": hung})
    plans = server.configure_round(1)
    ready.update({name: parties[name].fit(plan) for name, plan in plans.items()})  # the others answer at once
    t0 = time.monotonic()
    updates, failures = server.collect(plans)
    elapsed = time.monotonic() - t0
    release.set()
    assert len(updates) == 2 and failures == ["h2: timed out after 0.5 s"]
    # The deadline bounds the call: it must not wait for the hung hospital (10 s).
    assert elapsed < 1.5, f"collect(timeout=0.5) took {elapsed:.1f} s"


def test_the_selected_model_is_the_best_validation_round_and_early_stopping_stops(setup):
    # A rate so large that validation loss soon gets worse: the selected round is not the last.
    server, _ = make_server(setup, scheduler=AdaptiveLR(eta0=3.0, alpha=0.0, decay=1.0), early_stopping=3)
    server.fit(30)
    losses = [r["val_loss"] for r in server.history]
    best = int(np.argmin(losses)) + 1
    assert server.best_round == best
    assert server.stopped_early and server.round == server.improved_round + 3 < 30 and server.improved_round <= best
    # The selected weights are the best round's, not the last round's.
    assert not np.array_equal(server.best_weights, server.weights)
    assert server.evaluate_weights(server.best_weights)["loss"] == pytest.approx(min(losses), rel=1e-12)


def test_server_refuses_bad_options(setup):
    with pytest.raises(ParameterError, match="timeout"):
        make_server(setup, timeout=0.0)
    with pytest.raises(ParameterError, match="early_stopping"):
        make_server(setup, early_stopping=0)


def test_update_wire_form(setup):
    keys = fh.KeySet.generate("compact")
    server, parties = make_server(setup, keys=keys)
    update = parties["h0"].fit(server.configure_round(1)["h0"])
    data = update.to_wire()
    again = HospitalUpdate.from_wire(data)
    assert (again.hospital, again.round, again.payload) == (update.hospital, update.round, update.payload)
    head = data[4 : 4 + int.from_bytes(data[:4], "little")]
    assert json.loads(head) == {"hospital": "h0", "round": 1}  # nothing else in the clear
    with pytest.raises(FormatError):
        HospitalUpdate.from_wire(update.to_wire()[:10])


def test_server_refuses_unencrypted_updates_when_encrypted(setup):
    keys = fh.KeySet.generate("compact")
    plain = Hospital("h0", setup[0][0], lambda: TreatmentResponseModel(4, 2, 8), np.zeros(4), np.ones(4), None)
    server, parties = make_server(setup, keys=keys, min_hospitals=3, retries=0, replace={"h0": plain.fit})
    with pytest.raises(RoundFailed, match="unencrypted"):
        server.run_round()


def test_checkpoint_resume_continues_exactly(setup, tmp_path):
    full, _ = make_server(setup)
    full.fit(5)
    first, _ = make_server(setup, checkpoint=tmp_path)
    first.fit(3)
    resumed, _ = make_server(setup, checkpoint=tmp_path, resume=True)
    assert resumed.load_checkpoint() and resumed.round == 3
    resumed.fit(5)
    np.testing.assert_array_equal(resumed.weights, full.weights)
    assert [r["round"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert resumed.scheduler.state_dict() == full.scheduler.state_dict()


def test_corrupt_checkpoint_is_a_clear_error(setup, tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    server, _ = make_server(setup, checkpoint=tmp_path)
    with pytest.raises(FormatError, match=r"checkpoint .*state\.json is refused: not JSON"):
        server.load_checkpoint()


def _state(out):
    path = out / "checkpoints" / "encrypted" / "state.json"
    try:
        return json.loads(path.read_text())["state"]
    except (OSError, ValueError):
        return None


def test_a_killed_run_resumes_from_the_last_completed_round(tmp_path):
    """A real SIGKILL in the middle of `fhto run`, then `fhto run --resume`."""
    out = tmp_path / "report"
    args = [sys.executable, "-m", "fhto_native.cli", "run", "--rounds", "60", "--no-compare", "--no-audit",
            "--no-scheduler-experiment", "--bootstrap", "50", "--early-stopping", "60", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        state = _state(out)
        if state and state["round"] >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = _state(out)["round"]
            break
        time.sleep(0.005)
    assert killed_at is not None, "the run finished or failed before it could be killed: " + proc.stderr.read().decode()
    assert killed_at < 60
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    state = _state(out)
    assert [r["round"] for r in state["history"]] == list(range(1, 61))
    # Nothing lost: the rounds before the kill are the ones recorded then, unchanged.
    results = json.loads((out / "results.json").read_text())
    (encrypted,) = [m for m in results["methods"] if m["kind"] == "encrypted"]
    history = encrypted["history"]
    assert [r["round"] for r in history] == list(range(1, 61))


def test_an_upload_under_another_key_set_is_refused_logged_and_the_round_goes_on(setup):
    keys, intruder = fh.KeySet.generate("compact"), fh.KeySet.generate("compact")
    foreign = {}

    def other_keys(plan):
        return foreign["h2"](plan)

    server, parties = make_server(setup, keys=keys, min_hospitals=2, replace={"h2": other_keys})
    stray = Hospital("h2", setup[0][2], lambda: TreatmentResponseModel(4, 2, 8), np.zeros(4), np.ones(4), intruder)
    foreign["h2"] = stray.fit
    reference, _ = make_server(setup, keys=keys, min_hospitals=2, replace={"h2": lambda plan: 1 / 0})
    record = server.run_round()
    assert record["reported"] == 2
    assert any(f.startswith("h2: refused: KeyMismatchError") for f in record["failures"]), record["failures"]
    reference.run_round()  # the same round without h2: the refused upload left no trace in the sum
    np.testing.assert_allclose(server.weights, reference.weights, atol=1e-8)
