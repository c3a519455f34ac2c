"""Record-level differential privacy for the federated methods: DP-FedSGD with the Gaussian noise
distributed across the hospitals' encrypted contributions.

The mechanism, one step per round t = 1..T:

* every hospital i computes, on all its training rows (sampling rate q = 1), the sum of per-example
  gradients of its weighted loss, each clipped to L2 norm ``clip`` (C):
  ``G_i = sum_x clip(grad l(x), C)``; one patient moves ``sum_i G_i`` by at most C (add/remove);
* it adds its share of the noise, ``z_i ~ N(0, s^2 I)`` with ``s = sigma C / sqrt(m - k)``, and
  encrypts ``-eta H (G_i + z_i) / N`` (H hospitals, N training rows in all: public numbers);
* the server sums ciphertexts; the key holders decrypt only the sum, whose noise has variance
  ``m/(m - k) sigma^2 C^2 >= sigma^2 C^2`` with m contributors; the new global model is
  ``w - eta (sum_i G_i + sum_i z_i) / N``.

The guarantee: for every patient of every hospital, the sequence of global models (everything the
server and anyone downstream sees) is (epsilon, delta)-DP under add/remove of that patient, with
sigma chosen by Opacus's RDP accountant for the target epsilon over T full-batch Gaussian steps.

Trust: the server sees only sums (encryption), so it sees one dose of noise. A hospital sees its
own noise; if the server colludes with up to k hospitals (``colluders``), they can subtract those
hospitals' shares, and the remaining m - k honest shares still carry sigma^2 C^2: that is the
margin, paid as ``m/(m - k)`` times the noise variance of a fully trusted aggregate. With more than
k colluders the guarantee weakens to sigma^2 (m - j)/(m - k) for j colluders. Every round needs
at least m = ``min_contributors`` contributions (the server refuses a round with fewer).

What the guarantee does not cover: the federated standardization (means and standard deviations),
the training data's ranges stored with the saved model, and anything computed from validation or
test patients. Under DP the global model's training does not read validation data (a fixed rate,
the last round selected, no early stopping), so the released models depend on training rows only
through the mechanism above. The noise in this study is drawn from a seeded generator so that runs
reproduce; a deployment draws it from the operating system's randomness.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = ["DPPlan", "clipped_gradient_sum", "noise_multiplier", "spent_epsilon", "ACCOUNTANT"]

#: The accountant: Renyi DP of the (subsampled) Gaussian mechanism, as Opacus implements it.
ACCOUNTANT = "rdp"


def _opacus():
    try:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError as exc:  # the study extra installs it
        raise ImportError("differential privacy needs Opacus: pip install 'fhto-native[study]'") from exc
    return RDPAccountant, get_noise_multiplier


def noise_multiplier(epsilon: float, delta: float, steps: int, sample_rate: float = 1.0) -> float:
    """The smallest noise multiplier sigma (Opacus's search) for which ``steps`` Gaussian steps at
    ``sample_rate`` spend at most ``epsilon`` at ``delta``; 0 for epsilon = inf."""
    if math.isinf(epsilon):
        return 0.0
    _, get_noise_multiplier = _opacus()
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": the bound is still valid, only not the tightest.
        warnings.simplefilter("ignore", UserWarning)
        return float(get_noise_multiplier(
            target_epsilon=float(epsilon), target_delta=float(delta), sample_rate=float(sample_rate), steps=int(steps),
            accountant=ACCOUNTANT,
        ))


def spent_epsilon(sigma: float, delta: float, steps: int, sample_rate: float = 1.0) -> float:
    """The epsilon Opacus's RDP accountant gives for ``steps`` Gaussian steps of noise multiplier
    ``sigma`` at ``sample_rate`` and ``delta`` (inf without noise, 0 without steps)."""
    if steps == 0:
        return 0.0
    if sigma <= 0:
        return math.inf
    RDPAccountant, _ = _opacus()
    accountant = RDPAccountant()
    accountant.history = [(float(sigma), float(sample_rate), int(steps))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(accountant.get_epsilon(delta=float(delta)))


@dataclass(frozen=True)
class DPPlan:
    """The calibrated mechanism of one study (see the module docstring)."""

    epsilon: float  #: the target (inf: clipping only, no noise)
    delta: float
    clip: float
    sigma: float  #: noise multiplier of the decrypted sum
    rounds: int
    hospitals: int
    min_contributors: int
    colluders: int
    lr: float  #: the step size eta
    sample_rate: float = 1.0

    @classmethod
    def calibrate(
        cls, *, epsilon: float, delta: float, clip: float, rounds: int, hospitals: int, min_contributors: int,
        colluders: int, lr: float,
    ) -> "DPPlan":
        if not (epsilon > 0):
            raise ParameterError(f"the privacy budget epsilon must be positive (or inf); got {epsilon}")
        if not (0 < delta < 1):
            raise ParameterError(f"delta must lie in (0, 1); got {delta}")
        if not (clip > 0 and math.isfinite(clip)):
            raise ParameterError(f"the clipping norm must be a positive number; got {clip}")
        if not 0 <= colluders < min_contributors <= hospitals:
            raise ParameterError(
                f"the noise margin needs 0 <= colluders < min contributors <= hospitals; got colluders={colluders}, "
                f"min contributors={min_contributors}, hospitals={hospitals}"
            )
        return cls(epsilon=float(epsilon), delta=float(delta), clip=float(clip),
                   sigma=noise_multiplier(epsilon, delta, rounds), rounds=int(rounds), hospitals=int(hospitals),
                   min_contributors=int(min_contributors), colluders=int(colluders), lr=float(lr))

    @property
    def hospital_noise_std(self) -> float:
        """Standard deviation of each hospital's noise share, per coordinate of G_i."""
        return self.sigma * self.clip / math.sqrt(self.min_contributors - self.colluders)

    def weight_noise_std(self, total_rows: int, rounds_run: int) -> float:
        """Standard deviation the noise adds to every weight over ``rounds_run`` rounds with all
        hospitals contributing: each round moves the weights by ``-eta/N`` times the sum of the
        hospitals' noise shares (a random walk, contraction by the loss ignored: an upper bound
        for a convex loss). Public parameters only."""
        return self.lr * math.sqrt(rounds_run * self.hospitals) * self.hospital_noise_std / float(total_rows)

    def spent(self, rounds_run: int) -> float:
        """The epsilon spent after ``rounds_run`` rounds (the accountant's)."""
        return spent_epsilon(self.sigma, self.delta, rounds_run, self.sample_rate)

    def describe(self, rounds_run: Optional[int] = None) -> Dict[str, Any]:
        run = self.rounds if rounds_run is None else rounds_run
        return {
            "mechanism": "DP-FedSGD: per-example clipping, full batch, Gaussian noise shared by the hospitals",
            "epsilon_target": self.epsilon,
            "epsilon_spent": self.spent(run),
            "delta": self.delta,
            "clip": self.clip,
            "noise_multiplier": self.sigma,
            "hospital_noise_std": self.hospital_noise_std,
            "rounds": run,
            "sample_rate": self.sample_rate,
            "min_contributors": self.min_contributors,
            "colluders_tolerated": self.colluders,
            "lr": self.lr,
            "accountant": f"Opacus {ACCOUNTANT.upper()} accountant",
            "adjacency": "add/remove one patient",
        }


def clipped_gradient_sum(model: nn.Module, x: torch.Tensor, y: np.ndarray, weight: np.ndarray, clip: float) -> np.ndarray:
    """``sum_x clip(grad_w [weight_x * bce(model(x), y_x)], clip)`` over the rows, flattened in the
    order of ``model.parameters()`` (per-example gradients by ``torch.func.vmap``)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    target = torch.as_tensor(np.asarray(y, dtype=np.float64))
    w = torch.as_tensor(np.asarray(weight, dtype=np.float64))

    def loss_one(p: Dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
        logit = functional_call(model, p, (xi.unsqueeze(0),)).reshape(())
        return wi * nn.functional.binary_cross_entropy_with_logits(logit, yi)

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))(params, x, target, w)
    flat = torch.cat([grads[name].reshape(x.shape[0], -1) for name, _ in model.named_parameters()], dim=1)
    norms = flat.norm(dim=1)
    factor = torch.clamp(float(clip) / torch.clamp(norms, min=1e-300), max=1.0)
    return (flat * factor[:, None]).sum(dim=0).detach().numpy().astype(np.float64)
