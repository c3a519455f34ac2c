from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.cli import main


def test_demo_runs_end_to_end(capsys):
    assert main(["demo", "--hospitals", "3", "--values", "9000", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "hospital   3/3" in out and "FedAvg max abs error" in out


def test_demo_quiet_prints_nothing(capsys):
    assert main(["demo", "--hospitals", "2", "--values", "100", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_demo_refuses_bad_counts(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--hospitals", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_keygen_writes_a_private_key_set_and_a_public_context(tmp_path, capsys):
    secret, public = tmp_path / "k.keys", tmp_path / "k.pub"
    assert main(["keygen", "--secret", str(secret), "--public", str(public)]) == 0
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    keys, server = fh.KeySet.load(secret), fh.PublicContext.load(public)
    assert keys.fingerprint == server.fingerprint
    x = np.linspace(-1, 1, 50)
    np.testing.assert_allclose(keys.decrypt(fh.aggregate([keys.encrypt(x)], server)), x, atol=1e-8)
