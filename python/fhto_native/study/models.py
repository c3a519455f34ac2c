"""The treatment-response model: P(bad outcome | patient features, treatment arm).

A small multilayer perceptron over the standardized clinical features and a one-hot encoding of
the arm, so the predicted effect of a treatment can depend on the patient. Written in plain
``torch.nn``; weights are float64 so that encrypted and plaintext aggregation can be compared at
the precision CKKS actually has.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = [
    "TreatmentResponseModel",
    "ModelFactory",
    "design_matrix",
    "flat_weights",
    "set_flat_weights",
    "train_epochs",
    "predict",
    "predict_risk",
    "per_example_losses",
]


class TreatmentResponseModel(nn.Module):
    """MLP: [standardized features, one-hot arm] -> hidden (ReLU) -> logit of the bad outcome."""

    def __init__(self, n_features: int, n_arms: int, hidden: int = 16) -> None:
        super().__init__()
        if n_features < 1 or n_arms < 1 or hidden < 1:
            raise ParameterError(f"model sizes must be positive; got features={n_features}, arms={n_arms}, hidden={hidden}")
        self.n_features, self.n_arms = n_features, n_arms
        self.net = nn.Sequential(
            nn.Linear(n_features + n_arms, hidden, dtype=torch.float64),
            nn.ReLU(),
            nn.Linear(hidden, 1, dtype=torch.float64),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


ModelFactory = Callable[[], nn.Module]


def design_matrix(X: np.ndarray, treatment: np.ndarray, n_arms: int, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Standardize X with the (federated) mean and std and append the one-hot arm."""
    Z = (np.asarray(X, dtype=np.float64) - mean) / std
    onehot = np.zeros((Z.shape[0], n_arms))
    onehot[np.arange(Z.shape[0]), np.asarray(treatment, dtype=np.int64)] = 1.0
    return torch.from_numpy(np.hstack([Z, onehot]))


def flat_weights(model: nn.Module) -> np.ndarray:
    """All parameters as one flat float64 vector (a copy)."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().astype(np.float64).copy()


def set_flat_weights(model: nn.Module, weights: np.ndarray) -> None:
    # torch.tensor copies: the parameters must not share memory with the caller's array.
    vec = torch.tensor(np.asarray(weights, dtype=np.float64))
    expected = sum(p.numel() for p in model.parameters())
    if vec.numel() != expected:
        raise ParameterError(f"weights hold {vec.numel()} values; the model has {expected} parameters")
    torch.nn.utils.vector_to_parameters(vec, model.parameters())


def train_epochs(
    model: nn.Module,
    x: torch.Tensor,
    y: np.ndarray,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    weight: Optional[np.ndarray] = None,
) -> float:
    """Plain minibatch SGD on binary cross-entropy; returns the last epoch's mean loss.

    ``weight`` gives each example a weight in the loss (censoring weights; mean 1 keeps the
    learning rate's meaning): each minibatch minimizes ``mean(w_i * loss_i)``.
    """
    target = torch.as_tensor(np.asarray(y, dtype=np.float64))
    w = None if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float64))
    if w is not None and w.shape != target.shape:
        raise ParameterError(f"weight has shape {tuple(w.shape)}; expected {tuple(target.shape)}")
    generator = torch.Generator().manual_seed(int(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=float(lr))
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    model.train()
    last = float("nan")
    for _ in range(int(epochs)):
        order = torch.randperm(x.shape[0], generator=generator)
        total, count = 0.0, 0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            losses = loss_fn(model(x[idx]), target[idx])
            loss = (losses * w[idx]).mean() if w is not None else losses.mean()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        last = total / max(count, 1)
    return last


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """P(bad outcome) for each row of a design matrix."""
    model.eval()
    return torch.sigmoid(model(x)).numpy()


@torch.no_grad()
def predict_risk(model: nn.Module, X: np.ndarray, n_arms: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(n, K): predicted P(bad outcome) for every patient under every arm."""
    n = np.asarray(X).shape[0]
    return np.stack(
        [predict(model, design_matrix(X, np.full(n, k), n_arms, mean, std)) for k in range(n_arms)], axis=1
    )


@torch.no_grad()
def per_example_losses(model: nn.Module, x: torch.Tensor, y: np.ndarray, eps: Optional[float] = 1e-7) -> np.ndarray:
    """Binary cross-entropy of every example (what a membership-inference attacker scores)."""
    p = np.clip(predict(model, x), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
