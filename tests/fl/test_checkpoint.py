"""The server's checkpoint is verified before a run resumes from it: a checksum over the state and
the state's own consistency (round and history, best round, scheduler, weights)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.errors import FormatError
from fhto_native.fl import checkpoint
from test_federation import make_server, setup  # noqa: F401 - setup is a fixture

ROUNDS = 10


@pytest.fixture(scope="module")
def saved(setup, tmp_path_factory):  # noqa: F811 - the imported fixture
    """A real checkpoint of a 10-round plaintext run: (its bytes, the server that wrote it)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    server, _ = make_server(setup, checkpoint=folder)
    server.fit(ROUNDS)
    return (folder / "state.json").read_bytes(), server


def load(setup, folder, data=None):  # noqa: F811
    """A fresh server loading ``folder/state.json`` (first written with ``data`` when given)."""
    if data is not None:
        (folder / "state.json").write_bytes(data)
    server, _ = make_server(setup, checkpoint=folder)
    assert server.load_checkpoint()
    return server


def snapshot(server) -> dict:
    """Everything a resumed server takes from its checkpoint."""
    return {
        "round": server.round, "history": json.dumps(server.history),  # keys in their recorded order
        "weights": server.weights.tolist(),
        "best": (server.best_round, server.best_loss, server.best_weights.tolist(), server.improved_round),
        "stopped_early": server.stopped_early, "scheduler": server.scheduler.state_dict(),
    }


def edited(data: bytes, edit, *, reseal: bool) -> bytes:
    """The checkpoint with ``edit`` applied to its state; with ``reseal`` its checksum is recomputed,
    so only the consistency checks can catch the edit."""
    document = json.loads(data)
    state = document.get("state", document)  # the unversioned file of fhto 0.1 held the state itself
    edit(state)
    if reseal:
        document["checksum"] = checkpoint.checksum(state)
    return json.dumps(document).encode()


def set_round(state, value):
    state["round"] = value


def change_a_weight_digit(state):
    text = repr(state["weights"][7])
    i = max(i for i, c in enumerate(text) if c.isdigit() and c not in "0")  # the last significant digit
    state["weights"][7] = float(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])


def truncate_history(state):
    del state["history"][-1]


def move_best_round(state):
    best = state["best"]
    best["round"] = best["round"] - 1 if best["round"] > 1 else 2


NAMED_EDITS = {
    "round 10 -> 19": lambda s: set_round(s, 19),
    "one weight digit": change_a_weight_digit,
    "history truncated": truncate_history,
    "best round moved": move_best_round,
}


@pytest.mark.parametrize("name", NAMED_EDITS)
def test_named_edits_are_refused_by_the_checksum(setup, saved, tmp_path, name):
    data, _ = saved
    with pytest.raises(FormatError, match=r"state\.json.*checksum"):
        load(setup, tmp_path, edited(data, NAMED_EDITS[name], reseal=False))


# An edited weight with a recomputed checksum is not in this list: any weights are possible, which
# is what the checksum is for.
@pytest.mark.parametrize(
    "name, message",
    [
        ("round 10 -> 19", "round is 19 but the history holds 10 rounds"),
        ("history truncated", "round is 10 but the history holds 9 rounds"),
        ("best round moved", "best round is .* but the history's lowest validation loss is at round"),
    ],
)
def test_named_edits_with_a_valid_checksum_fail_the_consistency_checks(setup, saved, tmp_path, name, message):
    data, _ = saved
    with pytest.raises(FormatError, match=rf"state\.json.*{message}"):
        load(setup, tmp_path, edited(data, NAMED_EDITS[name], reseal=True))


def _best_weights_differ(state):
    state["best"]["round"] = state["round"]  # pretend the last round was the best ...
    state["best"]["weights"][0] += 1.0  # ... with other weights


def _set(path, value):
    def edit(state):
        *parents, last = path
        node = state
        for key in parents:
            node = node[key]
        node[last] = value(node[last]) if callable(value) else value
    return edit


CONSISTENCY = [
    (_set(["round"], True), "round must be an integer"),
    (_set(["history", 3, "round"], 5), "history record 4 is for round 5"),
    (_set(["history", 2, "val_loss"], float("nan")), "history record 3: val_loss must be a finite number"),
    (_set(["history", 2, "reported"], 0), "history record 3: reported must be"),
    (_set(["history", 2, "reported"], 4), "history record 3: reported must be between 1 and 3"),
    (_set(["history", 2, "train_loss"], "low"), "history record 3: train_loss must be a finite number"),
    (_set(["history", 2, "sigma2"], {"h0": 0.1}), "history record 3: unknown fields: sigma2"),
    (_set(["history", 2, "eta0"], lambda v: v * 3), "eta0 .* round 3"),
    (_set(["history", 2, "extra"], 1), "history record 3: unknown fields: extra"),
    (_set(["weights"], lambda w: w[:-1]), "weights hold .* values; this model has"),
    (_set(["weights", 0], float("inf")), "weights must be finite"),
    (_set(["best", "weights", 0], float("nan")), "best weights must be finite"),
    (_set(["best", "loss"], lambda v: v + 1e-3), "best loss"),
    (_set(["best", "improved_round"], ROUNDS + 1), "improved_round"),
    (_best_weights_differ, "best"),
    (_set(["stopped_early"], "no"), "stopped_early must be true or false"),
    (_set(["scheduler", "patience"], 0), "scheduler state is invalid: patience"),
    (_set(["scheduler", "patience"], 2.5), "scheduler state is invalid: patience"),
    (_set(["scheduler", "stale_rounds"], -1), "scheduler state is invalid: stale_rounds"),
    (_set(["scheduler", "eta0"], lambda v: v * 3), "scheduler's eta0"),
    (_set(["scheduler", "sigma2"], {"h0": [0.1]}), "scheduler state is invalid: unknown fields: sigma2"),
    (_set(["scheduler", "unknown"], 1), "scheduler state is invalid: unknown fields: unknown"),
    (lambda s: s.pop("best"), "missing fields: best"),
    (_set(["extra"], 1), "unknown fields: extra"),
]


@pytest.mark.parametrize("edit, message", CONSISTENCY, ids=[m for _, m in CONSISTENCY])
def test_every_inconsistency_is_named(setup, saved, tmp_path, edit, message):
    data, _ = saved
    with pytest.raises(FormatError, match=rf"checkpoint .*state\.json is refused: .*{message}"):
        load(setup, tmp_path, edited(data, edit, reseal=True))


def test_an_untouched_checkpoint_loads_to_the_state_that_was_saved(setup, saved, tmp_path):
    data, server = saved
    assert snapshot(load(setup, tmp_path, data)) == snapshot(server)


def test_every_byte_edit_or_bit_flip_is_refused_or_changes_nothing(setup, saved, tmp_path):
    """300 seeded mutations of a real checkpoint: each is refused with a FormatError, or (possible
    only where the edit leaves the parsed state unchanged, such as 1e-05 -> 1E-05 or added
    whitespace, since the checksum covers the state) loads to exactly the saved state."""
    data, server = saved
    expected = snapshot(server)
    rng = np.random.default_rng(8)
    outcomes = {"refused": 0, "identical": 0}
    for _ in range(300):
        mutated = bytearray(data)
        i = int(rng.integers(len(data)))
        if rng.random() < 0.5:
            mutated[i] ^= 1 << int(rng.integers(8))
        else:
            mutated[i] = (mutated[i] + int(rng.integers(1, 256))) % 256
        try:
            loaded = load(setup, tmp_path, bytes(mutated))
        except FormatError:
            outcomes["refused"] += 1
            continue
        assert snapshot(loaded) == expected, f"byte {i} edited: loaded a different state"
        outcomes["identical"] += 1
    assert outcomes["refused"] >= 290, outcomes


def test_a_checkpoint_without_a_checksum_is_refused(setup, saved, tmp_path):
    data, _ = saved
    state = json.loads(data)["state"]
    with pytest.raises(FormatError, match=r"state\.json is refused: .*not a verified fhto checkpoint"):
        load(setup, tmp_path, json.dumps(state).encode())  # the unversioned layout of fhto 0.1


@pytest.mark.parametrize(
    "data, message",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "not a verified fhto checkpoint"),
    ],
)
def test_a_malformed_checkpoint_is_refused(setup, tmp_path, data, message):
    with pytest.raises(FormatError, match=rf"state\.json is refused: {message}"):
        load(setup, tmp_path, data)


def test_another_format_version_is_refused(setup, saved, tmp_path):
    document = json.loads(saved[0])
    document["version"] = checkpoint.CHECKPOINT_VERSION + 1
    with pytest.raises(FormatError, match="format version 3; this fhto reads version 2"):
        load(setup, tmp_path, json.dumps(document).encode())


def test_a_checkpoint_of_another_configuration_is_refused(setup, saved, tmp_path):  # noqa: F811
    (tmp_path / "state.json").write_bytes(saved[0])
    keys = fh.KeySet.generate("compact")
    server, _ = make_server(setup, keys=keys, checkpoint=tmp_path)
    with pytest.raises(FormatError, match="encrypted run and this one is not, or the reverse"):
        server.load_checkpoint()


def test_the_write_is_atomic_and_cleans_stale_temporaries(setup, tmp_path):  # noqa: F811
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"state.json.tmp-{int(dead.stdout)}"  # left by a killed run of fhto 0.1
    stale.write_text("{half a checkp")
    alive = tmp_path / f"state.json.tmp-{os.getppid()}-0a1b2c3d"  # another live process's: not ours to remove
    alive.write_text("{")
    server, _ = make_server(setup, checkpoint=tmp_path)
    server.fit(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["hospitals", "state.json", alive.name])
    document = json.loads((tmp_path / "state.json").read_text())
    assert document["format"] == "fhto-checkpoint" and document["version"] == checkpoint.CHECKPOINT_VERSION
    assert document["checksum"] == checkpoint.checksum(document["state"])


def test_resuming_from_a_verified_checkpoint_gives_the_uninterrupted_results(setup, tmp_path):  # noqa: F811
    full, _ = make_server(setup, early_stopping=50)
    full.fit(6)
    first, _ = make_server(setup, checkpoint=tmp_path, early_stopping=50)
    first.fit(4)
    resumed, _ = make_server(setup, checkpoint=tmp_path, early_stopping=50, resume=True)
    assert resumed.load_checkpoint() and resumed.round == 4
    resumed.fit(6)
    mine, theirs = snapshot(resumed), snapshot(full)
    del mine["history"], theirs["history"]  # their timings differ: compared below without them
    assert mine == theirs and math.isfinite(resumed.best_loss)
    untimed = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]  # noqa: E731
    assert untimed(resumed.history) == untimed(full.history)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fhto_native.cli", "run", *args], capture_output=True, text=True,
                          timeout=600)


def test_fhto_run_resume_refuses_an_edited_checkpoint_in_one_line(tmp_path):
    """The defect of issue 8: round 10 edited to 19 resumed at round 20 and lost nine rounds."""
    out = tmp_path / "report"
    common = ["--no-compare", "--no-audit", "--no-scheduler-experiment", "--bootstrap", "20", "--early-stopping",
              "60", "--out", str(out), "--quiet"]
    assert _cli("--rounds", "10", *common).returncode == 0
    path = out / "checkpoints" / "encrypted" / "state.json"
    path.write_bytes(edited(path.read_bytes(), NAMED_EDITS["round 10 -> 19"], reseal=False))
    done = _cli("--rounds", "30", "--resume", *common)
    assert done.returncode != 0, "an edited checkpoint was resumed"
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(path) in done.stderr and "checksum" in done.stderr
