"""Every option of ``fhto run``, with the one set of defaults the study, the CLI and the federated
layer share.

Each field says, in its metadata, whether a resumed run may change it (``resume=False`` marks
options that do not change what the encrypted rounds compute: where the report goes, which
comparisons run, how many bootstrap resamples). Every other option must match the run being
resumed; the guard is derived from these fields, not from a separate list.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .._files import make_folder, write_atomic
from ..errors import ParameterError
from ..fl.protocol import DEFAULT_BATCH_SIZE, DEFAULT_LOCAL_EPOCHS
from ..fl.scheduler import AdaptiveLR
from ..params import PRESETS

__all__ = ["StudyConfig", "RunConfig", "DATASETS", "SPLITS", "guard_resume"]

#: Bundled trials and the bring-your-own-files mode.
DATASETS = ("colon", "gbsg2", "csv")
#: How patients become hospitals: simulated splits of one data set, a site column, or one file each.
SPLITS = ("iid", "dirichlet", "column", "files")

#: How a model's decision threshold is chosen on the validation set.
THRESHOLDS = ("youden", "f1")
#: Who holds the keys: one key set shared by the hospitals, or multiparty keys (t of n decrypt).
KEY_MODELS = ("shared", "threshold")

_SCHEDULER = AdaptiveLR()


def _free(default: Any = None, **kwargs: Any) -> Any:
    """A field a resumed run may change."""
    if "default_factory" in kwargs:
        return field(metadata={"resume": False}, **kwargs)
    return field(default=default, metadata={"resume": False})


@dataclass(frozen=True)
class StudyConfig:
    """Every option of ``fhto run`` (``fhto run --help`` describes each one).

    Training budget, rate schedule and model selection are shared by every method of the study
    (encrypted FL, plaintext FedAvg, centralized, each hospital alone): ``rounds`` rounds of
    ``local_epochs`` epochs over the method's rows, eta_0 decayed by ``decay`` after
    ``patience`` rounds without a validation-loss improvement, training stopped after
    ``early_stopping`` such rounds, and the model of the round with the best validation loss
    reported, its decision threshold chosen on the validation set (``threshold``: Youden's J by
    default, or F1).
    """

    # data
    dataset: str = "colon"
    files: Tuple[str, ...] = ()
    features: Tuple[str, ...] = ()
    treatment: str = "treatment"
    outcome: Optional[str] = None
    time: Optional[str] = None
    event: Optional[str] = None
    horizon: Optional[float] = None
    outcome_label: Optional[str] = None
    arms: Optional[Tuple[str, ...]] = None
    randomized: Optional[bool] = None
    hospitals: Optional[int] = None
    split: Optional[str] = None
    dirichlet_alpha: float = 1.0
    split_column: Optional[str] = None
    # training: one budget, one schedule and one selection rule for every method
    rounds: int = _free(40)
    local_epochs: int = DEFAULT_LOCAL_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    hidden: int = 16
    eta0: float = _SCHEDULER.eta0
    alpha: float = _SCHEDULER.alpha
    patience: int = _SCHEDULER.patience
    decay: float = _SCHEDULER.decay
    min_delta: float = _SCHEDULER.min_delta
    early_stopping: int = 10
    threshold: str = "youden"
    # differential privacy of the federated methods (None: off); see fhto_native.study.dp
    dp_epsilon: Optional[float] = None
    dp_delta: Optional[float] = None
    dp_clip: Optional[float] = None
    dp_colluders: Optional[int] = None
    dp_lr: Optional[float] = None
    # encryption and reproducibility
    preset: str = "compact"
    keys: str = "shared"
    key_threshold: Optional[int] = None
    seed: int = 0
    # the run
    out: str = _free("fhto-report")
    resume: bool = _free(False)
    min_hospitals: Optional[int] = None
    timeout: Optional[float] = _free(None)
    # what else runs
    compare: bool = _free(True)
    audit: bool = _free(True)
    scheduler_experiment: bool = _free(True)
    scheduler_seeds: int = _free(5)
    privacy_frontier: bool = _free(True)
    frontier_epsilons: Tuple[float, ...] = _free(default_factory=lambda: (math.inf, 8.0, 4.0, 2.0, 1.0))
    frontier_seeds: int = _free(3)
    model_replicates: int = _free(20)
    label_noise: Tuple[float, ...] = _free(default_factory=lambda: (0.0, 0.2, 0.4))
    n_boot: int = _free(1000)
    reference_models: int = _free(8)
    audit_permutations: int = _free(200)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        for name in ("files", "features", "label_noise", "frontier_epsilons"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)):
                raise ParameterError(f"{name} must be a list, not the string {value!r}")
            set_(name, tuple(value))
        if self.arms is not None:
            if isinstance(self.arms, str):
                raise ParameterError(f"arms must be a list of names, not the string {self.arms!r}")
            set_("arms", tuple(self.arms))
        if self.dataset not in DATASETS:
            raise ParameterError(f"dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        positive = ("rounds", "local_epochs", "batch_size", "hidden", "patience", "early_stopping",
                    "scheduler_seeds", "n_boot", "reference_models", "audit_permutations", "frontier_seeds")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ParameterError(f"seed must be an integer in [0, 2^63); got {self.seed!r}")
        if not self.label_noise or not all(0.0 <= float(p) < 0.5 for p in self.label_noise):
            raise ParameterError(f"label_noise must list fractions in [0, 0.5); got {list(self.label_noise)}")
        set_("label_noise", tuple(float(p) for p in self.label_noise))
        if self.threshold not in THRESHOLDS:
            raise ParameterError(f"threshold must be one of {', '.join(THRESHOLDS)}; got {self.threshold!r}")
        if self.preset not in PRESETS:
            raise ParameterError(f"preset must be one of {', '.join(sorted(PRESETS))}; got {self.preset!r}")
        if self.keys not in KEY_MODELS:
            raise ParameterError(f"keys must be one of {', '.join(KEY_MODELS)}; got {self.keys!r}")
        if self.keys == "threshold":
            if self.preset == "compact":  # the default: too narrow for flooding noise
                set_("preset", "threshold")
            if self.key_threshold is not None and (
                isinstance(self.key_threshold, bool) or not isinstance(self.key_threshold, int) or self.key_threshold < 1
            ):
                raise ParameterError(f"the key threshold must be a positive integer; got {self.key_threshold!r}")
        elif self.key_threshold is not None:
            raise ParameterError("a key threshold applies only to multiparty keys (--keys threshold)")
        if self.timeout is not None and not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ParameterError(f"timeout must be a positive number of seconds; got {self.timeout}")
        if not (self.dirichlet_alpha > 0 and math.isfinite(self.dirichlet_alpha)):
            raise ParameterError(f"dirichlet_alpha must be positive; got {self.dirichlet_alpha}")
        self._check_dp()
        # The scheduler validates its own options.
        self.scheduler()
        self._check_hospitals()

    def _check_dp(self) -> None:
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        if self.dp_epsilon is None:
            for name in ("dp_delta", "dp_clip", "dp_colluders", "dp_lr"):
                if getattr(self, name) is not None:
                    raise ParameterError(f"--{name.replace('_', '-')} applies with --dp-epsilon (differential privacy)")
        else:
            if not number(self.dp_epsilon) or not self.dp_epsilon > 0:
                raise ParameterError(f"--dp-epsilon must be a positive number (or inf); got {self.dp_epsilon!r}")
            object.__setattr__(self, "dp_epsilon", float(self.dp_epsilon))
        if self.dp_delta is not None and not (number(self.dp_delta) and 0 < self.dp_delta < 1):
            raise ParameterError(f"--dp-delta must lie in (0, 1); got {self.dp_delta!r}")
        if self.dp_clip is not None and not (number(self.dp_clip) and 0 < self.dp_clip < math.inf):
            raise ParameterError(f"--dp-clip must be a positive number; got {self.dp_clip!r}")
        if self.dp_lr is not None and not (number(self.dp_lr) and 0 < self.dp_lr < math.inf):
            raise ParameterError(f"--dp-lr must be a positive number; got {self.dp_lr!r}")
        if self.dp_colluders is not None and (
            isinstance(self.dp_colluders, bool) or not isinstance(self.dp_colluders, int) or self.dp_colluders < 0
        ):
            raise ParameterError(f"--dp-colluders must be a non-negative integer; got {self.dp_colluders!r}")
        if not self.frontier_epsilons or not all(number(e) and e > 0 for e in self.frontier_epsilons):
            raise ParameterError(f"frontier_epsilons must list positive numbers (inf allowed); got {list(self.frontier_epsilons)}")
        object.__setattr__(self, "frontier_epsilons", tuple(float(e) for e in self.frontier_epsilons))
        if isinstance(self.model_replicates, bool) or not isinstance(self.model_replicates, int) or self.model_replicates < 0:
            raise ParameterError(f"model_replicates must be a non-negative integer; got {self.model_replicates!r}")

    #: Defaults of the differential-privacy options (used when --dp-epsilon is given).
    DP_DELTA = 1e-5
    DP_CLIP = 1.0
    DP_COLLUDERS = 1
    DP_LR = 1.0

    def dp_settings(self) -> Dict[str, Any]:
        """The DP options in effect (defaults filled in); empty when DP is off."""
        if self.dp_epsilon is None:
            return {}
        pick = lambda value, default: default if value is None else value  # noqa: E731
        return {
            "epsilon": self.dp_epsilon,
            "delta": pick(self.dp_delta, self.DP_DELTA),
            "clip": pick(self.dp_clip, self.DP_CLIP),
            "colluders": pick(self.dp_colluders, self.DP_COLLUDERS),
            "lr": pick(self.dp_lr, self.DP_LR),
        }

    def _check_hospitals(self) -> None:
        """Which hospital options apply: refuse, never ignore, one that does not."""
        if self.hospitals is not None and (isinstance(self.hospitals, bool) or not isinstance(self.hospitals, int)):
            raise ParameterError(f"hospitals must be an integer; got {self.hospitals!r}")
        if self.hospitals is not None and self.hospitals < 2:
            raise ParameterError(
                f"a federation needs at least 2 hospitals; got {self.hospitals} (one hospital alone is not federated learning)"
            )
        if self.split is not None and self.split not in SPLITS:
            raise ParameterError(f"split must be one of {', '.join(SPLITS)}; got {self.split!r}")
        if self.dataset != "csv":
            if self.files:
                raise ParameterError("hospital files are read only with dataset 'csv' (--csv FILE ...)")
            if self.split == "files":
                raise ParameterError("split 'files' (one file per hospital) needs --csv FILE ...")
            for name in ("time", "event", "horizon", "outcome", "outcome_label", "randomized"):
                if getattr(self, name) is not None:
                    raise ParameterError(f"--{name.replace('_', '-')} applies to --csv files; the bundled "
                                         f"{self.dataset} trial defines its own")
        else:
            if not self.files:
                raise ParameterError("dataset 'csv' needs one file per hospital (--csv FILE ...)")
            if not self.features:
                raise ParameterError("--csv needs the feature columns (--features a,b,c)")
            survival = (self.time, self.event, self.horizon)
            if any(v is not None for v in survival) and not all(v is not None for v in survival):
                raise ParameterError("a survival outcome needs all of --time, --event and --horizon")
            if self.time is not None and self.outcome is not None:
                raise ParameterError("give either --outcome (a 0/1 column) or --time/--event/--horizon, not both")
            if self.time is None and self.outcome is None:
                raise ParameterError("--csv needs the outcome: --outcome COL (0/1, 1 = bad outcome), "
                                     "or --time COL --event COL --horizon DAYS")
            if self.horizon is not None and not (self.horizon > 0 and math.isfinite(self.horizon)):
                raise ParameterError(f"horizon must be a positive number of time units; got {self.horizon}")
            if len(self.files) >= 2:
                if self.split not in (None, "files"):
                    raise ParameterError(
                        f"with {len(self.files)} files each file is a hospital; --split {self.split} applies to "
                        "one file (give a single file to split it)"
                    )
                if self.hospitals is not None and self.hospitals != len(self.files):
                    raise ParameterError(
                        f"--hospitals {self.hospitals} does not match the {len(self.files)} files given "
                        "(each file is a hospital)"
                    )
                if self.split_column is not None:
                    raise ParameterError("--split-column applies to --split column on a single file")
            else:
                if self.split in (None, "files"):
                    raise ParameterError(
                        "a federation of one hospital is refused: give one file per hospital, or split the "
                        "file with --split column --split-column COL (or --split iid|dirichlet --hospitals N "
                        "to simulate hospitals)"
                    )
        if self.resolved_split == "column" and not self.split_column:
            raise ParameterError("--split column needs --split-column COL")
        if self.resolved_split != "column" and self.split_column is not None:
            raise ParameterError(f"--split-column applies to --split column, not to --split {self.resolved_split}")
        if self.resolved_split == "column" and self.hospitals is not None:
            raise ParameterError("--hospitals applies to simulated splits (iid, dirichlet), not to --split column")

    # -- derived values -----------------------------------------------------------------------
    @property
    def resolved_split(self) -> str:
        """The split in effect: 'files' for several hospital files, 'dirichlet' by default."""
        if self.split is not None:
            return self.split
        return "files" if self.dataset == "csv" and len(self.files) >= 2 else "dirichlet"

    @property
    def resolved_hospitals(self) -> Optional[int]:
        """Hospitals of a simulated split (None where the data decide: files, a column)."""
        if self.resolved_split in ("files", "column"):
            return None
        return 5 if self.hospitals is None else self.hospitals

    def scheduler(self, *, arm: str = "adaptive") -> AdaptiveLR:
        """The learning-rate schedule every method uses (``arm`` selects an ablation arm)."""
        common = dict(patience=self.patience, decay=self.decay, min_delta=self.min_delta)
        if arm == "adaptive":
            return AdaptiveLR(eta0=self.eta0, alpha=self.alpha, **common)
        if arm == "decay only":
            return AdaptiveLR.decay_only(self.eta0, **common)
        if arm == "fixed":
            return AdaptiveLR.fixed(self.eta0, **common)
        raise ParameterError(f"unknown scheduler arm {arm!r}; expected adaptive, decay only or fixed")

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able values of every option."""
        return json.loads(json.dumps(
            {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)}
        ))

    def identity(self) -> Dict[str, Any]:
        """The options a resumed run must share with the run it continues."""
        values = self.to_dict()
        return {f.name: values[f.name] for f in dataclasses.fields(self) if f.metadata.get("resume", True)}


#: The name ``fhto run``'s options had before the study package: the same class.
RunConfig = StudyConfig


def guard_resume(config: StudyConfig, out: Path) -> None:
    """Record the run's identity next to its checkpoints; refuse to resume with another one."""
    path = out / "checkpoints" / "options.json"
    mine = config.identity()
    if config.resume and path.exists():
        try:
            theirs = json.loads(path.read_text())
            if not isinstance(theirs, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
            raise ParameterError(f"{path} is unreadable ({exc}); start afresh without --resume") from None
        changed = [f"{k}: {theirs.get(k)!r} then, {mine[k]!r} now" for k in mine if theirs.get(k) != mine[k]]
        if changed:
            raise ParameterError(
                f"cannot resume the run in {out}: its options differ ({'; '.join(changed)}); "
                "rerun with the same options, or use another --out"
            )
        return
    make_folder(path.parent)
    write_atomic(path, json.dumps(mine, indent=1).encode())
