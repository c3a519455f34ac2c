from __future__ import annotations

import json
import math

import pytest

from fhto_native.errors import FormatError, ParameterError
from fhto_native.fl.scheduler import AdaptiveLR, HospitalRate, adaptive_rate


def test_formula():
    for eta0, alpha, s2 in [(0.1, 10.0, 0.0), (0.05, 2000.0, 1e-4), (1.0, 0.5, 3.0)]:
        assert adaptive_rate(eta0, alpha, s2) == pytest.approx(eta0 / (1 + alpha * s2), rel=1e-15)


def test_larger_variance_gets_a_smaller_rate():
    a, b = HospitalRate(), HospitalRate()
    assert a.rate(0.1, 100.0, 1) == b.rate(0.1, 100.0, 1) == 0.1  # before any update: eta_0
    a.observe(1, 0.1, 1e-4)
    b.observe(1, 0.1, 1e-2)
    assert b.rate(0.1, 100.0, 2) < a.rate(0.1, 100.0, 2) < 0.1
    assert b.rate(0.1, 100.0, 2) == pytest.approx(0.1 / (1 + 100.0 * 1e-2))


def test_window_averages_recent_rounds_before_the_one_asked_for():
    h = HospitalRate(window=2)
    for rnd, v in enumerate((9.0, 1.0, 3.0), 1):
        h.observe(rnd, 1.0, v)
    assert h.rate(1.0, 1.0, 4) == pytest.approx(1.0 / (1 + 2.0))  # mean of the last two: (1 + 3) / 2
    # A rerun of round 3 (a retry, or after the server resumed) gets round 3's rate again.
    assert h.rate(1.0, 1.0, 3) == pytest.approx(1.0 / (1 + 5.0))  # rounds 1 and 2: (9 + 1) / 2
    assert h.log[3] == {"lr": 1.0, "sigma2": 3.0}


def test_decay_after_patience_rounds_without_improvement():
    s = AdaptiveLR(eta0=0.08, patience=2, decay=0.5)
    assert not s.observe_validation(1.0)
    assert not s.observe_validation(0.9)  # improved
    assert not s.observe_validation(0.95)  # 1 stale round
    assert s.observe_validation(0.91)  # 2 stale rounds: decay
    assert s.eta0 == pytest.approx(0.04)
    assert not s.observe_validation(0.92)  # the count restarts


def test_fixed_baseline_never_changes():
    s = AdaptiveLR.fixed(0.05)
    h = HospitalRate()
    h.observe(1, 0.05, 10.0)
    for _ in range(10):
        s.observe_validation(1.0)
    assert h.rate(s.eta0, s.alpha, 2) == 0.05 and s.eta0 == 0.05


def test_state_round_trip():
    s = AdaptiveLR(eta0=0.07, alpha=50.0, patience=3, decay=0.25)
    s.observe_validation(0.5)
    s.observe_validation(0.6)
    t = AdaptiveLR.from_state(s.state_dict())
    assert t.state_dict() == s.state_dict()
    h = HospitalRate(window=3)
    h.observe(1, 0.07, 0.1)
    h.observe(2, 0.06, 0.2)
    g = HospitalRate.from_state(json.loads(json.dumps(h.state_dict())))
    assert g == h and g.rate(0.07, 50.0, 3) == h.rate(0.07, 50.0, 3)
    assert AdaptiveLR.from_state(AdaptiveLR().state_dict()).best_loss == math.inf


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(eta0=0), "eta0"), (dict(alpha=-1), "alpha"), (dict(patience=0), "patience"), (dict(decay=0), "decay"),
     (dict(decay=1.5), "decay")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        AdaptiveLR(**kwargs)


def test_bad_variance_window_and_state_are_refused():
    with pytest.raises(ParameterError, match="sigma"):
        HospitalRate().observe(1, 0.1, float("nan"))
    with pytest.raises(ParameterError, match="window"):
        HospitalRate(window=0)
    with pytest.raises(FormatError, match="not a hospital rate state"):
        HospitalRate.from_state({"window": 1})
