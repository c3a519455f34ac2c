"""The adaptive learning rate (SPEC: adaptive learning rate), split where the data lives.

    eta_i = eta_0 / (1 + alpha * sigma_i^2)

with sigma_i^2 the variance of hospital i's update in its last round (optionally averaged over a
window of its recent rounds). The server holds :class:`AdaptiveLR`: eta_0 and its validation
feedback (when the global validation loss fails to improve for ``patience`` rounds, eta_0 is
multiplied by ``decay``). Each hospital holds a :class:`HospitalRate`: its own sigma_i^2, never
sent, and computes eta_i from the eta_0 and alpha of the round plan. Both states are plain dicts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Mapping

from ..errors import FormatError, ParameterError

__all__ = ["AdaptiveLR", "HospitalRate", "adaptive_rate"]


def adaptive_rate(eta0: float, alpha: float, sigma2: float) -> float:
    """eta_0 / (1 + alpha * sigma^2): the scheduler's formula, as a pure function."""
    return eta0 / (1.0 + alpha * sigma2)


@dataclass
class AdaptiveLR:
    """The server's half: eta_0 with validation-loss decay, and the alpha every hospital uses.

    Parameters
    ----------
    eta0: base learning rate.
    alpha: sensitivity to the update variance (0 gives every hospital eta_0).
    patience: rounds without validation-loss improvement before eta_0 decays.
    decay: factor applied to eta_0 then (1.0 disables the feedback).
    min_delta: an improvement smaller than this does not count.
    """

    eta0: float = 0.05
    alpha: float = 2000.0
    patience: int = 4
    decay: float = 0.5
    min_delta: float = 1e-4
    best_loss: float = math.inf
    stale_rounds: int = 0

    def __post_init__(self) -> None:
        if not (self.eta0 > 0 and math.isfinite(self.eta0)):
            raise ParameterError(f"eta0 must be positive; got {self.eta0}")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ParameterError(f"alpha must be >= 0; got {self.alpha}")
        if self.patience < 1:
            raise ParameterError(f"patience must be at least 1; got {self.patience}")
        if not 0 < self.decay <= 1:
            raise ParameterError(f"decay must be in (0, 1]; got {self.decay}")

    @classmethod
    def fixed(cls, eta0: float, **kwargs) -> "AdaptiveLR":
        """No adaptation at all: every hospital gets eta_0, always (no per-hospital rate, no decay)."""
        return cls(eta0=eta0, **{**kwargs, "alpha": 0.0, "decay": 1.0})

    @classmethod
    def decay_only(cls, eta0: float, **kwargs) -> "AdaptiveLR":
        """The validation-driven decay of eta_0 without the per-hospital rate (alpha = 0): the arm
        that separates the two parts of the adaptive scheduler."""
        return cls(eta0=eta0, **{**kwargs, "alpha": 0.0})

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
            "min_delta": self.min_delta, "best_loss": None if math.isinf(self.best_loss) else self.best_loss,
            "stale_rounds": self.stale_rounds,
        }

    @classmethod
    def from_state(cls, state: Mapping) -> "AdaptiveLR":
        s = dict(state)
        best = s.pop("best_loss")
        stale = s.pop("stale_rounds")
        obj = cls(**s)
        obj.best_loss = math.inf if best is None else float(best)
        obj.stale_rounds = int(stale)
        return obj


@dataclass
class HospitalRate:
    """A hospital's half: its own update variances, by round, and the rate they give.

    The rate for round r uses the variances of the hospital's rounds before r only (the last
    ``window`` of them), so a round that is retried, or rerun after the server resumed from its
    checkpoint, gets the same rate as the first time. ``log`` keeps (round, rate, sigma^2) of each
    round this hospital trained, for its own records.
    """

    window: int = 1
    sigma2: Dict[int, float] = field(default_factory=dict)
    log: Dict[int, Dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ParameterError(f"window must be at least 1; got {self.window}")

    def rate(self, eta0: float, alpha: float, rnd: int) -> float:
        earlier = [self.sigma2[r] for r in sorted(self.sigma2) if r < rnd][-self.window :]
        s2 = sum(earlier) / len(earlier) if earlier else 0.0
        return adaptive_rate(eta0, alpha, s2)

    def observe(self, rnd: int, lr: float, sigma2: float) -> None:
        """Record round ``rnd``'s rate and update variance (a rerun of a round replaces it)."""
        if not (sigma2 >= 0 and math.isfinite(sigma2)):
            raise ParameterError(f"sigma^2 must be finite and >= 0; got {sigma2}")
        self.sigma2[int(rnd)] = float(sigma2)
        self.log[int(rnd)] = {"lr": float(lr), "sigma2": float(sigma2)}

    def state_dict(self) -> dict:
        return {"window": self.window, "sigma2": {str(r): v for r, v in self.sigma2.items()},
                "log": {str(r): dict(v) for r, v in self.log.items()}}

    @classmethod
    def from_state(cls, state: Mapping) -> "HospitalRate":
        try:
            return cls(window=int(state["window"]),
                       sigma2={int(r): float(v) for r, v in state["sigma2"].items()},
                       log={int(r): {"lr": float(v["lr"]), "sigma2": float(v["sigma2"])} for r, v in state["log"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"not a hospital rate state: {exc}") from None
