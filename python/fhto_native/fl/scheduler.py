"""The per-hospital adaptive learning rate and its validation feedback (SPEC: adaptive learning rate).

    eta_i = eta_0 / (1 + alpha * sigma_i^2)

with sigma_i^2 the variance of hospital i's update in the last round (optionally averaged over a
window of recent rounds). When the global validation loss fails to improve for ``patience``
rounds, eta_0 is multiplied by ``decay``. The state is a plain dict, checkpointed by the server.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping

from ..errors import ParameterError

__all__ = ["AdaptiveLR", "adaptive_rate"]


def adaptive_rate(eta0: float, alpha: float, sigma2: float) -> float:
    """eta_0 / (1 + alpha * sigma^2): the scheduler's formula, as a pure function."""
    return eta0 / (1.0 + alpha * sigma2)


@dataclass
class AdaptiveLR:
    """Per-hospital learning rates from update variances, with validation-loss decay of eta_0.

    Parameters
    ----------
    eta0: base learning rate.
    alpha: sensitivity to the update variance (0 gives every hospital eta_0).
    patience: rounds without validation-loss improvement before eta_0 decays.
    decay: factor applied to eta_0 then (1.0 disables the feedback).
    window: rounds of sigma^2 averaged per hospital.
    min_delta: an improvement smaller than this does not count.
    """

    eta0: float = 0.05
    alpha: float = 2000.0
    patience: int = 4
    decay: float = 0.5
    window: int = 1
    min_delta: float = 1e-4
    best_loss: float = math.inf
    stale_rounds: int = 0
    sigma2: Dict[str, List[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.eta0 > 0 and math.isfinite(self.eta0)):
            raise ParameterError(f"eta0 must be positive; got {self.eta0}")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ParameterError(f"alpha must be >= 0; got {self.alpha}")
        if self.patience < 1:
            raise ParameterError(f"patience must be at least 1; got {self.patience}")
        if not 0 < self.decay <= 1:
            raise ParameterError(f"decay must be in (0, 1]; got {self.decay}")
        if self.window < 1:
            raise ParameterError(f"window must be at least 1; got {self.window}")

    @classmethod
    def fixed(cls, eta0: float, **kwargs) -> "AdaptiveLR":
        """No adaptation at all: every hospital gets eta_0, always (no per-hospital rate, no decay)."""
        return cls(eta0=eta0, **{**kwargs, "alpha": 0.0, "decay": 1.0})

    @classmethod
    def decay_only(cls, eta0: float, **kwargs) -> "AdaptiveLR":
        """The validation-driven decay of eta_0 without the per-hospital rate (alpha = 0): the arm
        that separates the two parts of the adaptive scheduler."""
        return cls(eta0=eta0, **{**kwargs, "alpha": 0.0})

    def rate(self, hospital: str) -> float:
        history = self.sigma2.get(hospital, [])
        recent = history[-self.window :]
        s2 = sum(recent) / len(recent) if recent else 0.0
        return adaptive_rate(self.eta0, self.alpha, s2)

    def rates(self, hospitals: Iterable[str]) -> Dict[str, float]:
        return {h: self.rate(h) for h in hospitals}

    def observe_updates(self, sigma2: Mapping[str, float]) -> None:
        """Record this round's update variances (hospitals that failed simply report none)."""
        for hospital, value in sigma2.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ParameterError(f"sigma^2 of {hospital} must be finite and >= 0; got {value}")
            self.sigma2.setdefault(hospital, []).append(float(value))
            del self.sigma2[hospital][: -max(self.window, 1)]

    def observe_validation(self, loss: float) -> bool:
        """Feed the global validation loss; returns True when eta_0 decayed this round."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss = float(loss)
            self.stale_rounds = 0
            return False
        self.stale_rounds += 1
        if self.stale_rounds >= self.patience and self.decay < 1.0:
            self.eta0 *= self.decay
            self.stale_rounds = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {
            "eta0": self.eta0, "alpha": self.alpha, "patience": self.patience, "decay": self.decay,
            "window": self.window, "min_delta": self.min_delta,
            "best_loss": None if math.isinf(self.best_loss) else self.best_loss,
            "stale_rounds": self.stale_rounds, "sigma2": {k: list(v) for k, v in self.sigma2.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping) -> "AdaptiveLR":
        s = dict(state)
        best = s.pop("best_loss")
        sigma2 = s.pop("sigma2")
        stale = s.pop("stale_rounds")
        obj = cls(**s)
        obj.best_loss = math.inf if best is None else float(best)
        obj.stale_rounds = int(stale)
        obj.sigma2 = {k: [float(x) for x in v] for k, v in sigma2.items()}
        return obj
