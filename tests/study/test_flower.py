"""The Flower deployment over real processes: a SuperLink and one SuperNode per hospital on
loopback, the study's encrypted method trained through them.

Flower's SuperNodes poll for messages every 3 s and start a ClientApp process per message, so a
round takes several seconds here: one deployment exercises everything in one short run.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the Flower extra is not installed")

from fhto_native.study.config import StudyConfig  # noqa: E402
from fhto_native.study.deploy import FlowerOptions, flower_trainer  # noqa: E402
from fhto_native.study.run import run  # noqa: E402

QUICK = dict(hospitals=3, seed=0, compare=False, audit=False, scheduler_experiment=False, n_boot=20)


def _state(out: Path) -> dict:
    return json.loads((out / "checkpoints" / "encrypted" / "state.json").read_text())["state"]


def _kill_the_server_app(deployment) -> None:
    pids = [pid for pid, command in deployment.leftovers() if "flwr-serverapp" in command]
    assert pids, deployment.leftovers()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_flower_equals_in_process_survives_a_killed_server_app_and_a_lost_supernode(tmp_path):
    """One loopback deployment (a SuperLink and 3 SuperNodes, real processes), 3 rounds:

    * after round 1 the ServerApp is SIGKILLed; the launcher starts it again and it continues
      from its checkpoint (round 1 is neither lost nor counted twice);
    * after round 2 the model equals in-process `fhto run`'s after 2 rounds (weights within 1e-6);
    * after round 2 a SuperNode is SIGKILLed: round 3 completes with the two others by its deadline;
    * afterwards no process of the deployment is left.
    """
    said, seen = [], {}

    def on_round(record, deployment):
        seen["deployment"] = deployment
        if record["round"] == 1 and "killed server" not in seen:
            seen["killed server"] = True
            _kill_the_server_app(deployment)
        if record["round"] == 2 and "round 2" not in seen:
            seen["round 2"] = _state(tmp_path / "flower")
            deployment.kill("supernode-3")

    flower = run(StudyConfig(rounds=3, timeout=35.0, out=str(tmp_path / "flower"), **QUICK), say=said.append,
                 encrypted_trainer=flower_trainer(FlowerOptions(on_round=on_round)))
    run(StudyConfig(rounds=2, out=str(tmp_path / "local"), **QUICK), say=lambda line: None)

    assert any("starting it again from its last checkpoint" in line for line in said), said
    at_two, reference = seen["round 2"], _state(tmp_path / "local")
    assert at_two["round"] == 2
    assert np.abs(np.array(at_two["weights"]) - np.array(reference["weights"])).max() <= 1e-6
    history = _state(tmp_path / "flower")["history"]
    assert [r["round"] for r in history] == [1, 2, 3]
    assert [r["reported"] for r in history] == [3, 3, 2]
    assert any(f.startswith("hospital 3:") for f in history[2]["failures"]), history[2]["failures"]
    (encrypted,) = [m for m in flower.methods if m.key == "encrypted"]
    assert encrypted.rounds_run == 3 and (tmp_path / "flower" / "final.csv").exists()
    assert seen["deployment"].leftovers() == []


def test_a_port_in_use_is_a_clear_error_and_nothing_is_left(tmp_path):
    import socket

    from fhto_native.fl.flower.launch import DeploymentError, LocalDeployment

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        deployment = LocalDeployment(tmp_path / "processes")
        with pytest.raises(DeploymentError, match="superlink exited with code 1 while starting: .*address already in use"):
            with deployment:
                deployment.start({}, port=busy.getsockname()[1])
    assert deployment.leftovers() == []


def test_flower_options_are_checked_in_one_line(capsys):
    from fhto_native.cli import main

    assert main(["flower", "--local", "2", "--csv", "a.csv", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fhto flower: error: --local 2 needs one --csv file per hospital; got 1"]
    assert main(["flower", "--local", "2", "--hospitals", "5", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fhto flower: error: --hospitals 5 disagrees with --local 2; give --local alone"]


def test_flower_with_multiparty_keys_made_over_flower_messages(tmp_path):
    """`--keys threshold` over Flower: the hospitals make the keys in round 0 over Flower
    messages (key shares stay in their state folders; the server relays only encrypted messages),
    each upload carries its signed tag, and 2 of the 3 hospitals decrypt each sum with shares.
    The model equals in-process plaintext FedAvg's (weights within 1e-4)."""
    config = dict(QUICK, keys="threshold", key_threshold=2, rounds=2, compare=True)
    flower = run(StudyConfig(out=str(tmp_path / "flower"), **config), say=lambda line: None,
                 encrypted_trainer=flower_trainer(FlowerOptions()))
    assert flower.weights_difference is not None and flower.weights_difference <= 1e-4
    assert flower.key_model["kind"] == "threshold" and flower.key_model["threshold"] == 2
    state = tmp_path / "flower" / "flower"
    shares = sorted(state.glob("state/*/share.key"))
    assert len(shares) == 3 and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in shares)
    assert not list(state.glob("keys/*.keys"))  # no key set anywhere: only the consortium and the public key
    (encrypted,) = [m for m in flower.methods if m.key == "encrypted"]
    assert encrypted.rounds_run == 2
