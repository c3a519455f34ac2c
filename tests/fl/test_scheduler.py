from __future__ import annotations

import math

import pytest

from fhto_native.errors import ParameterError
from fhto_native.fl.scheduler import AdaptiveLR, adaptive_rate


def test_formula():
    for eta0, alpha, s2 in [(0.1, 10.0, 0.0), (0.05, 2000.0, 1e-4), (1.0, 0.5, 3.0)]:
        assert adaptive_rate(eta0, alpha, s2) == pytest.approx(eta0 / (1 + alpha * s2), rel=1e-15)


def test_larger_variance_gets_a_smaller_rate():
    s = AdaptiveLR(eta0=0.1, alpha=100.0)
    assert s.rates(["a", "b"]) == {"a": 0.1, "b": 0.1}  # before any update: eta_0
    s.observe_updates({"a": 1e-4, "b": 1e-2})
    assert s.rate("b") < s.rate("a") < 0.1
    assert s.rate("b") == pytest.approx(0.1 / (1 + 100.0 * 1e-2))


def test_window_averages_recent_rounds():
    s = AdaptiveLR(eta0=1.0, alpha=1.0, window=2)
    for v in (9.0, 1.0, 3.0):
        s.observe_updates({"h": v})
    assert s.rate("h") == pytest.approx(1.0 / (1 + 2.0))  # mean of the last two: (1 + 3) / 2


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
    s.observe_updates({"a": 10.0})
    for _ in range(10):
        s.observe_validation(1.0)
    assert s.rate("a") == 0.05 and s.eta0 == 0.05


def test_state_round_trip():
    s = AdaptiveLR(eta0=0.07, alpha=50.0, patience=3, decay=0.25, window=3)
    s.observe_updates({"a": 0.1, "b": 0.2})
    s.observe_validation(0.5)
    s.observe_validation(0.6)
    t = AdaptiveLR.from_state(s.state_dict())
    assert t.state_dict() == s.state_dict()
    assert t.rates(["a", "b"]) == s.rates(["a", "b"])
    assert AdaptiveLR.from_state(AdaptiveLR().state_dict()).best_loss == math.inf


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(eta0=0), "eta0"), (dict(alpha=-1), "alpha"), (dict(patience=0), "patience"), (dict(decay=0), "decay"),
     (dict(decay=1.5), "decay"), (dict(window=0), "window")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        AdaptiveLR(**kwargs)


def test_bad_variance_is_refused():
    with pytest.raises(ParameterError, match="sigma"):
        AdaptiveLR().observe_updates({"a": float("nan")})
