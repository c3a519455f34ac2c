"""The saved treatment-response model and decision support for new patients.

``fhto run`` writes ``model.json`` into its report folder (:func:`save_model`): the selected
encrypted FL model's weights and architecture, the feature schema (each column's kind, allowed
codes or labels, the federated standardization, the training data's range), the arms and the
control arm, the outcome definition, how the model was trained (differential privacy and the
epsilon spent, or none), and what its intervals are made of. The file is JSON with a format name,
a version and a SHA-256 of its content; :meth:`SavedModel.load` refuses another format, another
version or any change with a :class:`~fhto_native.errors.FormatError`.

:func:`recommend` reads patients given by the trial's own columns (raw values, as in the training
files) and returns, for each, the predicted probability of the bad outcome under every arm with a
95% interval, the arm with the lowest predicted risk, its absolute risk difference against a
reference arm (the control arm unless told otherwise), and a flag when the patient lies outside the
training data's range. It is decision support for a clinician and a patient to discuss, not a
prescription: the model was trained on a trial population and its estimates carry the
uncertainty shown and more.

The intervals:

* without differential privacy, the spread of ``R`` bootstrap replicates: the federation retrained
  ``R`` times, each hospital resampling its own training patients with replacement (a bootstrap
  that never pools data); the interval is the 2.5th to 97.5th percentile of the replicates'
  predictions. It covers sampling variability and training randomness, not model misspecification;
* with differential privacy, replicates would spend more privacy, so the interval shows the
  mechanism's own noise instead: weights drawn from N(w, s^2 I) with s the standard deviation the
  Gaussian noise adds to every weight over the training (computed from the mechanism's public
  parameters: post-processing, no privacy spent). It does not cover sampling variability.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from .._files import write_atomic
from ..errors import DataError, FormatError, ParameterError
from .models import TreatmentResponseModel, design_matrix, set_flat_weights

__all__ = ["FORMAT", "VERSION", "FeatureSpec", "SavedModel", "recommend", "read_patients", "DISCLAIMER"]

FORMAT = "fhto.treatment-model"
VERSION = 1
#: Samples behind a differential-privacy noise interval (fixed seed: the same file, the same intervals).
NOISE_SAMPLES = 400
#: A feature whose training values are integers with at most this many distinct values is a code
#: (a category): a value outside them is refused, not extrapolated.
MAX_CODES = 6
DISCLAIMER = (
    "Decision support, not a prescription: model estimates from a federated model trained on trial patients, "
    "to inform a discussion between clinician and patient."
)


@dataclass(frozen=True)
class FeatureSpec:
    """One input column: its kind and the transformation to the model's input."""

    name: str
    kind: str  #: "numeric", "code" (integer codes) or "label" (text labels mapped to codes)
    mean: float
    std: float
    minimum: float
    maximum: float
    codes: Tuple[float, ...] = ()  #: allowed values of a code
    labels: Dict[str, float] = field(default_factory=dict)  #: text label -> code

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "std": self.std, "min": self.minimum,
                "max": self.maximum, "codes": list(self.codes), "labels": dict(self.labels)}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "FeatureSpec":
        return cls(name=str(d["name"]), kind=str(d["kind"]), mean=float(d["mean"]), std=float(d["std"]),
                   minimum=float(d["min"]), maximum=float(d["max"]), codes=tuple(float(c) for c in d["codes"]),
                   labels={str(k): float(v) for k, v in d["labels"].items()})


@dataclass
class SavedModel:
    """A trained treatment-response model with everything needed to use it on new patients."""

    weights: np.ndarray
    hidden: int
    features: List[FeatureSpec]
    arms: Tuple[str, ...]
    control_arm: str
    outcome: str
    good_outcome: str
    training: Dict[str, Any]
    interval: Dict[str, Any]
    replicates: Optional[np.ndarray] = None  #: (R, d) bootstrap replicates' weights, or None
    weight_noise_std: Optional[float] = None  #: under differential privacy

    # -- file ---------------------------------------------------------------------------------
    def to_json(self) -> Dict[str, Any]:
        body = {
            "format": FORMAT,
            "version": VERSION,
            "architecture": {
                "kind": "mlp", "inputs": "standardized features, then a one-hot arm",
                "layers": [len(self.features) + len(self.arms), self.hidden, 1], "activation": "relu",
                "output": "logit of the bad outcome", "dtype": "float64",
                "parameter_order": "torch parameters(): layer 1 weight (row-major), layer 1 bias, layer 2 weight, layer 2 bias",
            },
            "weights": [float(w) for w in self.weights],
            "features": [f.to_json() for f in self.features],
            "arms": list(self.arms),
            "control_arm": self.control_arm,
            "outcome": {"bad": self.outcome, "good": self.good_outcome},
            "training": self.training,
            "interval": self.interval,
            "replicates": None if self.replicates is None else [[float(w) for w in r] for r in self.replicates],
            "weight_noise_std": self.weight_noise_std,
        }
        body["sha256"] = _digest(body)
        return body

    def save(self, path: Union[str, Path]) -> Path:
        text = json.dumps(self.to_json(), indent=1, allow_nan=False, sort_keys=True)
        write_atomic(Path(path), (text + "\n").encode("utf-8"))
        return Path(path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "SavedModel":
        """Read a saved model.

        Raises
        ------
        FormatError
            Not a saved model, another format version, a changed or truncated file.
        FileNotFoundError
            No such file.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "model.json"
        try:
            body = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise FormatError(f"{path} is not a saved model (unreadable JSON: {exc})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise FormatError(f"{path} is not a saved FHTO treatment model (format {FORMAT!r} expected)")
        if body.get("version") != VERSION:
            raise FormatError(
                f"{path} is a version {body.get('version')!r} model; this build reads version {VERSION} "
                "(re-run fhto run with this version, or use the version that wrote it)"
            )
        stored = body.pop("sha256", None)
        if stored != _digest(body):
            raise FormatError(f"{path} is corrupted: its SHA-256 does not match its content")
        try:
            features = [FeatureSpec.from_json(f) for f in body["features"]]
            arms = tuple(str(a) for a in body["arms"])
            layers = body["architecture"]["layers"]
            model = cls(
                weights=np.asarray(body["weights"], dtype=np.float64), hidden=int(layers[1]), features=features,
                arms=arms, control_arm=str(body["control_arm"]), outcome=str(body["outcome"]["bad"]),
                good_outcome=str(body["outcome"]["good"]), training=dict(body["training"]),
                interval=dict(body["interval"]),
                replicates=None if body["replicates"] is None else np.asarray(body["replicates"], dtype=np.float64),
                weight_noise_std=None if body["weight_noise_std"] is None else float(body["weight_noise_std"]),
            )
            model.network()  # the weights fit the architecture
        except (KeyError, TypeError, ValueError, IndexError, ParameterError) as exc:
            raise FormatError(f"{path} is not a valid saved model: {exc}") from None
        if model.control_arm not in arms:
            raise FormatError(f"{path}: the control arm {model.control_arm!r} is not one of the arms {list(arms)}")
        return model

    # -- prediction -----------------------------------------------------------------------------
    def network(self, weights: Optional[np.ndarray] = None) -> torch.nn.Module:
        net = TreatmentResponseModel(len(self.features), len(self.arms), self.hidden)
        set_flat_weights(net, self.weights if weights is None else weights)
        return net

    def risks(self, X: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
        """(n, arms): P(bad outcome) under each arm for the encoded feature rows X."""
        net = self.network(weights)
        mean = np.array([f.mean for f in self.features])
        std = np.array([f.std for f in self.features])
        n = X.shape[0]
        with torch.no_grad():
            net.eval()
            return np.stack([
                torch.sigmoid(net(design_matrix(X, np.full(n, k), len(self.arms), mean, std))).numpy()
                for k in range(len(self.arms))
            ], axis=1)

    def interval_draws(self, X: np.ndarray) -> np.ndarray:
        """(draws, n, arms) predictions behind the intervals."""
        if self.replicates is not None and len(self.replicates):
            return np.stack([self.risks(X, w) for w in self.replicates])
        if self.weight_noise_std:
            rng = np.random.default_rng(0)
            return np.stack([
                self.risks(X, self.weights + rng.normal(0.0, self.weight_noise_std, self.weights.shape))
                for _ in range(NOISE_SAMPLES)
            ])
        return self.risks(X)[None]


def _digest(body: Dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


# -- patients ---------------------------------------------------------------------------------------
def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pandas raises many kinds for a malformed file
        raise DataError(f"{path}: not a readable patients table ({type(exc).__name__}: {exc})") from None


def read_patients(model: SavedModel, patients: Union[str, Path, pd.DataFrame]) -> np.ndarray:
    """The patients' feature rows in the model's encoding.

    Rows are numbered from 1 as in a spreadsheet below its header.

    Raises
    ------
    DataError
        A missing column, an empty or non-numeric value, or an unknown code or label, naming the
        patient row and the column; an empty table.
    """
    source = "patients" if isinstance(patients, pd.DataFrame) else str(patients)
    frame = patients if isinstance(patients, pd.DataFrame) else _read_table(Path(patients))
    columns = [str(c).strip() for c in frame.columns]
    frame = frame.copy()
    frame.columns = columns
    missing = [f.name for f in model.features if f.name not in columns]
    if missing:
        raise DataError(f"{source}: missing column {missing[0]!r} (every patient needs "
                        f"{', '.join(f.name for f in model.features)})")
    if len(frame) == 0:
        raise DataError(f"{source}: no patients")
    X = np.empty((len(frame), len(model.features)))
    for j, spec in enumerate(model.features):
        for i, raw in enumerate(frame[spec.name].tolist()):
            X[i, j] = _encode(spec, raw, f"{source}: row {i + 1}, column {spec.name!r}")
    return X


def _encode(spec: FeatureSpec, raw: Any, where: str) -> float:
    text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw).strip()
    if text == "":
        raise DataError(f"{where}: missing value")
    if spec.kind == "label":
        if text in spec.labels:
            return spec.labels[text]
        raise DataError(f"{where}: unknown category {text!r}; expected one of {', '.join(spec.labels)}")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {text!r} is not a finite number")
    if spec.kind == "code" and value not in spec.codes:
        codes = ", ".join(_number(c) for c in spec.codes)
        raise DataError(f"{where}: unknown category {text!r}; expected one of {codes}")
    return value


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def recommend(
    model: Union[SavedModel, str, Path], patients: Union[str, Path, pd.DataFrame], *, reference_arm: Optional[str] = None
) -> pd.DataFrame:
    """One row per patient: ``p_<arm>`` (probability of the bad outcome) with ``p_<arm>_low`` /
    ``_high`` (95% interval), ``recommended`` (lowest predicted risk), ``reference``,
    ``risk_difference`` (recommended minus reference, absolute risk), ``out_of_range`` and
    ``out_of_range_columns``.

    Raises
    ------
    DataError
        A bad patients table (see :func:`read_patients`).
    ParameterError
        ``reference_arm`` that is not one of the model's arms.
    FormatError
        A saved model that does not load.
    """
    if not isinstance(model, SavedModel):
        model = SavedModel.load(model)
    reference = model.control_arm if reference_arm is None else str(reference_arm)
    if reference not in model.arms:
        raise ParameterError(f"reference arm {reference!r} is not one of the model's arms: {', '.join(model.arms)}")
    X = read_patients(model, patients)
    risk = model.risks(X)
    draws = model.interval_draws(X)
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    low, high = np.minimum(low, risk), np.maximum(high, risk)
    best = risk.argmin(axis=1)
    ref = model.arms.index(reference)
    out: Dict[str, Any] = {"patient": np.arange(1, len(X) + 1)}
    for k, arm in enumerate(model.arms):
        out[f"p_{arm}"], out[f"p_{arm}_low"], out[f"p_{arm}_high"] = risk[:, k], low[:, k], high[:, k]
    out["recommended"] = [model.arms[k] for k in best]
    out["reference"] = reference
    out["risk_difference"] = risk[np.arange(len(X)), best] - risk[:, ref]
    flags: List[str] = []
    for row in X:
        names = [f.name for f, v in zip(model.features, row) if f.kind == "numeric" and not f.minimum <= v <= f.maximum]
        flags.append(",".join(names))
    out["out_of_range"] = [bool(f) for f in flags]
    out["out_of_range_columns"] = flags
    return pd.DataFrame(out)


def plot_recommendations(model: SavedModel, table: pd.DataFrame, path: Union[str, Path]) -> Path:
    """A PNG of each patient's predicted risk under every arm with its interval (one row per patient)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(table)
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.38 * n))
    offsets = np.linspace(-0.25, 0.25, len(model.arms)) if len(model.arms) > 1 else np.zeros(1)
    for k, arm in enumerate(model.arms):
        y = np.arange(n) + offsets[k]
        p = table[f"p_{arm}"].to_numpy()
        lo, hi = table[f"p_{arm}_low"].to_numpy(), table[f"p_{arm}_high"].to_numpy()
        ax.errorbar(p, y, xerr=[p - lo, hi - p], fmt="o", capsize=3, markersize=5, label=arm)
    labels = [f"patient {r.patient}" + (" (out of range)" if r.out_of_range else "") for r in table.itertuples()]
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"predicted probability of {model.outcome} (95% interval: {model.interval.get('short', '')})")
    ax.set_xlim(0, 1)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(title="arm", loc="lower right", fontsize=8)
    ax.set_title("Predicted risk under each arm (decision support, not a prescription)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    from io import BytesIO

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path


def feature_specs(names: Sequence[str], X: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  labels: Optional[Dict[str, Dict[str, float]]] = None) -> List[FeatureSpec]:
    """The schema of the training features: text labels where the trial has them, integer codes
    where a column holds at most :data:`MAX_CODES` integer values, numeric otherwise."""
    labels = labels or {}
    specs = []
    for j, name in enumerate(names):
        column = X[:, j]
        values = np.unique(column)
        kind, codes = "numeric", ()
        if name in labels:
            kind = "label"
        elif len(values) <= MAX_CODES and np.all(values == np.round(values)):
            kind, codes = "code", tuple(float(v) for v in values)
        specs.append(FeatureSpec(name=name, kind=kind, mean=float(mean[j]), std=float(std[j]),
                                 minimum=float(column.min()), maximum=float(column.max()), codes=codes,
                                 labels=dict(labels.get(name, {}))))
    return specs


def build_saved_model(cohort: Any, weights: np.ndarray, *, method: str, test_auc: float, dp: Any = None,
                      rounds_run: int, replicates: Optional[np.ndarray] = None) -> SavedModel:
    """The saved form of a study's selected model (``cohort``: the study's Cohort; ``dp``: its
    DPPlan or None; ``replicates``: the bootstrap replicates' weights without DP)."""
    from .data.datasets import FEATURE_LABELS

    config = cohort.config
    train_X = np.concatenate([d.X for d in cohort.hospitals])
    names = list(cohort.hospitals[0].feature_names)
    specs = feature_specs(names, train_X, cohort.mean, cohort.std, FEATURE_LABELS.get(config.dataset))
    training_rows = int(sum(int((d.weight > 0).sum()) for d in cohort.hospitals))
    training: Dict[str, Any] = {
        "method": method, "dataset": config.dataset, "hospitals": len(cohort.hospitals), "rows": int(len(train_X)),
        "rounds": int(rounds_run), "seed": config.seed, "preset": config.preset, "keys": config.keys,
        "test_auc": float(test_auc),
        "standardization": "federated (encrypted sums of the hospitals' counts, sums and sums of squares)",
        "differential_privacy": None if dp is None else dp.describe(rounds_run),
    }
    if dp is not None:
        noise = dp.weight_noise_std(training_rows, rounds_run)
        interval = {"method": "differential-privacy noise", "short": "DP noise",
                    "description": "2.5th to 97.5th percentile over weights drawn from N(w, s^2 I), s the standard deviation "
                                   "the mechanism's Gaussian noise adds to each weight over the training (public "
                                   "parameters; no privacy spent); does not cover sampling variability",
                    "weight_noise_std": noise, "draws": NOISE_SAMPLES}
        return SavedModel(weights=np.asarray(weights, dtype=np.float64), hidden=config.hidden, features=specs,
                          arms=tuple(cohort.arms), control_arm=cohort.arms[0], outcome=cohort.summary.outcome_label,
                          good_outcome=cohort.summary.good_outcome_label, training=training, interval=interval,
                          weight_noise_std=noise)
    count = 0 if replicates is None else len(replicates)
    interval = {"method": "none", "short": "none", "replicates": 0,
                "description": "none: the run trained no bootstrap replicates (--model-replicates 0), so the interval "
                               "is the point estimate"} if count == 0 else {"method": "federated bootstrap", "short": f"{count} bootstrap replicates",
                "description": f"2.5th to 97.5th percentile of {count} replicates' predictions, the federation retrained "
                               "with each hospital resampling its own training patients with replacement; covers sampling "
                               "variability and training randomness, not model misspecification",
                "replicates": count}
    return SavedModel(weights=np.asarray(weights, dtype=np.float64), hidden=config.hidden, features=specs,
                      arms=tuple(cohort.arms), control_arm=cohort.arms[0], outcome=cohort.summary.outcome_label,
                      good_outcome=cohort.summary.good_outcome_label, training=training, interval=interval,
                      replicates=None if replicates is None or count == 0 else np.asarray(replicates, dtype=np.float64))
