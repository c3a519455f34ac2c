"""The main job: a federated treatment-optimization study, end to end (``fhto run``).

1. Load a randomized trial (the colon-cancer adjuvant chemotherapy trial by default), hold out a
   validation and a test set, and split the training patients across simulated hospitals.
2. Standardize features from per-hospital sums, summed encrypted (no hospital's data pooled).
3. Train with encrypted federated rounds and the adaptive learning rate; checkpoint every round.
4. For comparison: the same rounds in plaintext FedAvg (same seeds), centralized training on
   the pooled data, and each hospital alone.
5. Recommend an arm per test patient, estimate the policy's value by inverse-propensity
   weighting with a bootstrap interval, and compare with treating everyone with one arm.
6. Audit membership inference in two views: each hospital's update (what a plaintext-FL server
   sees; HE removes it) and the global model (what every participant sees, with or without HE).
7. The scheduler experiment: one hospital with noisy labels, adaptive vs fixed learning rate.
8. Write the report folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import KeySet, aggregate
from ..errors import ParameterError
from . import data as fldata
from .federation import Hospital, KeyHolder, Server
from .metrics import binary_metrics
from .models import (
    TreatmentResponseModel,
    design_matrix,
    flat_weights,
    per_example_losses,
    predict,
    predict_risk,
    set_flat_weights,
    train_epochs,
)
from .policy import policy_value_table
from .privacy import attack_table, loss_threshold_attack, reference_attack
from .scheduler import AdaptiveLR

__all__ = ["RunConfig", "run"]

#: Epochs each membership-inference reference model trains on its half of the population pool.
REFERENCE_EPOCHS = 20

Printer = Callable[[str], None]


@dataclass
class RunConfig:
    """Every option of ``fhto run`` (see ``fhto run --help``)."""

    dataset: str = "colon"
    files: Sequence[str] = ()
    features: Sequence[str] = ()
    treatment: str = "treatment"
    outcome: str = "outcome"
    arms: Optional[Sequence[str]] = None
    hospitals: int = 5
    split: str = "dirichlet"
    dirichlet_alpha: float = 1.0
    split_column: Optional[str] = None
    rounds: int = 40
    local_epochs: int = 2
    batch_size: int = 16
    hidden: int = 16
    eta0: float = 0.05
    alpha: float = 2000.0
    patience: int = 4
    decay: float = 0.5
    preset: str = "compact"
    seed: int = 0
    out: str = "fhto-report"
    resume: bool = False
    min_hospitals: Optional[int] = None
    timeout: Optional[float] = None
    compare: bool = True
    audit: bool = True
    scheduler_experiment: bool = True
    label_noise: float = 0.3
    n_boot: int = 1000
    reference_models: int = 8

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.local_epochs < 1 or self.batch_size < 1 or self.hidden < 1:
            raise ParameterError("rounds, local_epochs, batch_size and hidden must be positive")
        if self.dataset not in ("colon", "gbsg2", "csv"):
            raise ParameterError(f"dataset must be colon, gbsg2 or csv; got {self.dataset!r}")
        if self.dataset == "csv" and not self.files:
            raise ParameterError("dataset 'csv' needs one file per hospital (--csv FILE ...)")
        if not 0 <= self.label_noise < 0.5:
            raise ParameterError(f"label_noise must be in [0, 0.5); got {self.label_noise}")


@dataclass
class Study:
    """The prepared data of one run: hospitals' training rows, held-out sets, standardization."""

    hospitals: List[fldata.TreatmentData]
    names: List[str]
    validation: fldata.TreatmentData
    test: fldata.TreatmentData
    mean: np.ndarray
    std: np.ndarray
    arms: Tuple[str, ...]
    keys: KeySet
    standardization_seconds: float = 0.0

    def design(self, d: fldata.TreatmentData) -> torch.Tensor:
        return design_matrix(d.X, d.treatment, len(self.arms), self.mean, self.std)


def _prepare(config: RunConfig, say: Printer) -> Study:
    if config.dataset == "csv":
        per_file = fldata.load_hospital_files(config.files, config.features, config.treatment, config.outcome, config.arms)
        parts = [fldata.split_holdout(d, seed=config.seed + i) for i, d in enumerate(per_file)]
        hospitals = [p[0] for p in parts]
        validation = _concat([p[1] for p in parts])
        test = _concat([p[2] for p in parts])
    else:
        full = fldata.load_colon() if config.dataset == "colon" else fldata.load_gbsg2()
        say(f"data: {full.describe()}")
        train, validation, test = fldata.split_holdout(full, seed=config.seed)
        hospitals = fldata.split_hospitals(
            train, config.hospitals, config.split, alpha=config.dirichlet_alpha, column=config.split_column,
            seed=config.seed,
        )
    names = [f"hospital {i + 1}" for i in range(len(hospitals))]
    keys = KeySet.generate(config.preset)
    t0 = time.perf_counter()

    def encrypted_sum(vectors: List[np.ndarray]) -> np.ndarray:
        uploads = [keys.encrypt(v, parties=len(vectors), threads=1) for v in vectors]
        return keys.decrypt(aggregate(uploads, keys.public_context(), threads=1), threads=1)

    mean, std = fldata.federated_standardization(hospitals, encrypted_sum)
    return Study(hospitals, names, validation, test, mean, std, hospitals[0].arms, keys, time.perf_counter() - t0)


def _concat(parts: Sequence[fldata.TreatmentData]) -> fldata.TreatmentData:
    first = parts[0]
    return dataclasses.replace(
        first,
        X=np.vstack([p.X for p in parts]),
        treatment=np.concatenate([p.treatment for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        source="held-out rows of " + ", ".join(p.source for p in parts),
        columns={},
    )


def _factory(study: Study, config: RunConfig, seed: int) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        torch.manual_seed(seed)
        return TreatmentResponseModel(study.mean.size, len(study.arms), config.hidden)

    return make


def _federate(
    study: Study,
    config: RunConfig,
    *,
    encrypted: bool,
    scheduler: AdaptiveLR,
    hospitals: Optional[List[fldata.TreatmentData]] = None,
    checkpoint: Optional[Path] = None,
    progress: Optional[Callable[[dict], None]] = None,
) -> Tuple[Server, Dict[str, Hospital]]:
    factory = _factory(study, config, config.seed)
    keys = study.keys if encrypted else None
    parties = {
        name: Hospital(name, d, factory, study.mean, study.std, keys)
        for name, d in zip(study.names, hospitals or study.hospitals)
    }
    min_hospitals = config.min_hospitals or max(1, math.ceil(len(parties) / 2))
    server = Server(
        factory,
        {name: h.fit for name, h in parties.items()},
        (study.design(study.validation), study.validation.y),
        scheduler,
        public_context=study.keys.public_context() if encrypted else None,
        key_holder=KeyHolder(study.keys, min_contributions=min(2, min_hospitals)) if encrypted else None,
        local_epochs=config.local_epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        min_hospitals=min_hospitals,
        timeout=config.timeout,
        checkpoint=checkpoint,
    )
    if checkpoint is not None and config.resume and server.load_checkpoint():
        pass
    server.fit(config.rounds, progress)
    return server, parties


def _scheduler(config: RunConfig) -> AdaptiveLR:
    return AdaptiveLR(eta0=config.eta0, alpha=config.alpha, patience=config.patience, decay=config.decay)


def _test_metrics(study: Study, model: torch.nn.Module) -> Dict[str, float]:
    m = binary_metrics(study.test.y, predict(model, study.design(study.test)))
    return {f"test_{k}": v for k, v in m.items()}


def _model_with(study: Study, config: RunConfig, weights: np.ndarray) -> torch.nn.Module:
    model = _factory(study, config, config.seed)()
    set_flat_weights(model, weights)
    return model


def _train_alone(study: Study, config: RunConfig, d: fldata.TreatmentData, seed: int, per_round: bool = False):
    """Train on one data set with the federated budget (rounds x local epochs) and eta_0."""
    model = _factory(study, config, config.seed)()
    x = study.design(d)
    x_val = study.design(study.validation)
    history = []
    for rnd in range(1, config.rounds + 1):
        train_epochs(model, x, d.y, lr=config.eta0, epochs=config.local_epochs, batch_size=config.batch_size,
                     seed=seed * 7919 + rnd)
        if per_round:
            m = binary_metrics(study.validation.y, predict(model, x_val))
            history.append({"round": rnd, **{f"val_{k}": v for k, v in m.items()}})
    return model, history


def _progress_line(label: str, rounds: int, say: Printer) -> Callable[[dict], None]:
    def show(record: dict) -> None:
        done = record["round"]
        bar = "#" * int(20 * done / rounds)
        secs = record["seconds"]
        crypto = secs.get("encrypt", 0.0) + secs.get("aggregate", 0.0) + secs.get("decrypt", 0.0)
        fails = f"  failures: {len(record['failures'])}" if record["failures"] else ""
        say(
            f"  {label} round {done:3d}/{rounds} [{bar:<20}] val AUC {record['val_auc']:.3f} "
            f"loss {record['val_loss']:.4f} eta0 {record['eta0']:.4f} "
            f"HE {1e3 * crypto:6.1f} ms  {record['bytes'].get('upload', 0) / 1024:7.1f} KiB up{fails}"
        )

    return show


def run(config: RunConfig, say: Printer = print) -> dict:
    """Run the whole study and write the report folder; returns the results."""
    from .report import write_report

    started = time.perf_counter()
    torch.set_num_threads(1)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _guard_resume(config, out)
    study = _prepare(config, say)
    say(
        f"{len(study.hospitals)} hospitals ({config.split}): "
        + ", ".join(f"{n}={len(d)}" for n, d in zip(study.names, study.hospitals))
        + f"; validation {len(study.validation)}, test {len(study.test)}; "
        f"features standardized from encrypted per-hospital sums in {study.standardization_seconds:.2f} s"
    )
    results: dict = {
        "config": {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
            "scheduler": {"eta0": config.eta0, "alpha": config.alpha, "patience": config.patience, "decay": config.decay},
            "outcome": study.hospitals[0].outcome, "arms": list(study.arms),
            "features": list(study.hospitals[0].feature_names),
            "rows": {"train": int(sum(len(d) for d in study.hospitals)), "validation": len(study.validation),
                     "test": len(study.test), **{n: len(d) for n, d in zip(study.names, study.hospitals)}},
            "key_set": repr(study.keys.public_context()),
        },
        "methods": {},
    }

    say(f"encrypted federated learning ({config.preset} CKKS preset, adaptive learning rate):")
    enc_server, _ = _federate(
        study, config, encrypted=True, scheduler=_scheduler(config), checkpoint=out / "checkpoints" / "encrypted",
        progress=_progress_line("HE", config.rounds, say),
    )
    enc_model = _model_with(study, config, enc_server.weights)
    results["methods"]["encrypted FL (FHTO)"] = {"history": enc_server.history, "final": _test_metrics(study, enc_model)}

    plain_server = plain_parties = None
    if config.compare or config.audit:
        say("plaintext FedAvg (same code path and seeds, encryption off):")
        plain_server, plain_parties = _federate(
            study, config, encrypted=False, scheduler=_scheduler(config),
            checkpoint=out / "checkpoints" / "plaintext", progress=_progress_line("plain", config.rounds, say),
        )
        results["methods"]["plaintext FedAvg"] = {
            "history": plain_server.history, "final": _test_metrics(study, _model_with(study, config, plain_server.weights)),
        }
        diff = float(np.max(np.abs(enc_server.weights - plain_server.weights)))
        results["weights_difference"] = {
            "max_abs": diff,
            "description": "max |w_encrypted - w_plaintext| over all weights after the last round",
        }
        say(f"max |w_encrypted - w_plaintext| after {config.rounds} rounds: {diff:.3e}")

    if config.compare:
        say("centralized training on the pooled training rows (upper bound) and each hospital alone:")
        pooled = _concat(study.hospitals)
        central, central_history = _train_alone(study, config, pooled, seed=config.seed, per_round=True)
        results["centralized"] = {"history": central_history, "final": _test_metrics(study, central)}
        alone = {}
        for i, (name, d) in enumerate(zip(study.names, study.hospitals)):
            model, _ = _train_alone(study, config, d, seed=config.seed + 1 + i)
            alone[name] = {"final": _test_metrics(study, model), "rows": len(d)}
        results["hospitals_alone"] = alone
        for name, entry in [("encrypted FL", results["methods"]["encrypted FL (FHTO)"]), ("centralized", results["centralized"])]:
            say(f"  {name}: test AUC {entry['final']['test_auc']:.3f}")
        say(f"  hospitals alone (mean): test AUC {np.mean([a['final']['test_auc'] for a in alone.values()]):.3f}")

    risk = predict_risk(enc_model, study.test.X, len(study.arms), study.mean, study.std)
    rows = policy_value_table(study.test.y, study.test.treatment, risk, study.arms, n_boot=config.n_boot, seed=config.seed)
    results["policy"] = [dataclasses.asdict(r) for r in rows]
    say("policy value (probability of no recurrence within 5 years, IPW on held-out patients):")
    for r in rows:
        say(f"  {r.name:<50s} {r.value:.3f}  [{r.ci_low:.3f}, {r.ci_high:.3f}]")

    if config.audit:
        results["privacy"] = _audit(study, config, enc_server, plain_server, plain_parties, say)

    if config.scheduler_experiment and len(study.hospitals) >= 2:
        results["scheduler_experiment"] = _scheduler_experiment(study, config, say)

    results["timing"] = {"total_seconds": time.perf_counter() - started}
    _print_comparison(results, say)
    written = write_report(results, out)
    say(f"report written to {out} ({len(written)} files); summary: {out / 'summary.md'}")
    return results


def _audit(study, config, enc_server, plain_server, plain_parties, say) -> List[dict]:
    """Membership inference in the two views of the threat model."""
    say("privacy audit (membership inference; members = training patients, non-members = test patients "
        "drawn to the members' outcome rate):")
    # Reference models (offline LiRA): each trained on a random half of the population pool
    # (validation + test patients, never a training patient); an example's calibration uses only
    # the models that did not train on it (IN losses are passed as nan).
    rng = np.random.default_rng(config.seed + 99)
    pool = _concat([study.validation, study.test])
    x_pool = study.design(pool)
    offset = len(study.validation)
    references, inside = [], []
    for r in range(config.reference_models):
        half = rng.random(len(pool)) < 0.5
        model = _factory(study, config, config.seed + 500 + r)()
        train_epochs(model, x_pool[torch.from_numpy(half)], pool.y[half], lr=config.eta0, epochs=REFERENCE_EPOCHS,
                     batch_size=config.batch_size, seed=config.seed + 500 + r)
        references.append(model)
        inside.append(half[offset:])  # which test rows this model trained on
    inside = np.stack(inside)

    def matched_nonmembers(members: fldata.TreatmentData) -> np.ndarray:
        """Test rows drawn to the members' outcome rate: under a non-IID split a hospital's label
        mix differs from the test set's, and the loss would then reveal the label, not membership."""
        picks = []
        rate = float(members.y.mean())
        for label, share in ((1.0, rate), (0.0, 1.0 - rate)):
            pool = np.flatnonzero(study.test.y == label)
            want = int(round(share * len(study.test)))
            picks.append(rng.choice(pool, size=min(want, len(pool)), replace=False))
        # Shrink both classes together so the drawn set keeps the members' rate exactly enough.
        ones, zeros = picks
        scale = min(len(ones) / max(rate * len(study.test), 1e-9), len(zeros) / max((1 - rate) * len(study.test), 1e-9), 1.0)
        ones = ones[: int(round(scale * rate * len(study.test)))]
        zeros = zeros[: int(round(scale * (1 - rate) * len(study.test)))]
        return np.sort(np.concatenate([ones, zeros]))

    def attacks(view: str, target: str, model, members: fldata.TreatmentData) -> List[tuple]:
        picked = matched_nonmembers(members)
        nonmembers = study.test.subset(picked)
        x_m, x_n = study.design(members), study.design(nonmembers)
        lm = per_example_losses(model, x_m, members.y)
        ln = per_example_losses(model, x_n, nonmembers.y)
        rm = np.stack([per_example_losses(ref, x_m, members.y) for ref in references])
        rn = np.stack([per_example_losses(ref, x_n, nonmembers.y) for ref in references])
        rn[inside[:, picked]] = np.nan
        return [
            (view, target, loss_threshold_attack(lm, ln)),
            (view, target, reference_attack(lm, ln, rm, rn)),
        ]

    found = []
    if plain_parties is not None:
        view = "hospital update (seen by a plaintext-FL server; removed by HE)"
        for name, hospital in plain_parties.items():
            local = _model_with(study, config, hospital.last_local_weights)
            found += attacks(view, name, local, hospital.data)
    pooled = _concat(study.hospitals)
    view = "global model (seen by every participant, with or without HE)"
    found += attacks(view, "encrypted FL global model", _model_with(study, config, enc_server.weights), pooled)
    if plain_server is not None:
        found += attacks(view, "plaintext FedAvg global model", _model_with(study, config, plain_server.weights), pooled)
    table = attack_table(found)
    for row in table:
        say(f"  {row['view'][:40]:<40s} {row['target']:<30s} {row['attack']:<38s} AUC {row['auc']:.3f}  "
            f"TPR@1%FPR {row['tpr_at_1pct_fpr']:.3f}")
    return table


def _scheduler_experiment(study: Study, config: RunConfig, say: Printer) -> dict:
    """One hospital's labels flipped at random: does it get a larger sigma^2 and a smaller eta?

    Three plaintext runs with the same seeds: clean data with the adaptive rate (the hospital's
    baseline sigma^2), noisy data with the adaptive rate, noisy data with a fixed rate.
    """
    rng = np.random.default_rng(config.seed + 7)
    sizes = [len(d) for d in study.hospitals]
    noisy_index = int(np.argsort(sizes)[len(sizes) // 2])  # the median-size hospital: size alone does not single it out
    noisy = list(study.hospitals)
    d = noisy[noisy_index]
    flip = rng.random(len(d)) < config.label_noise
    noisy[noisy_index] = dataclasses.replace(d, y=np.where(flip, 1.0 - d.y, d.y))
    name = study.names[noisy_index]
    say(f"scheduler experiment: {name} ({len(d)} patients) with {100 * config.label_noise:.0f}% of its labels "
        f"flipped ({int(flip.sum())} patients); plaintext path, same seeds:")
    out = {"noisy_hospital": name, "noise": config.label_noise}
    runs = (("clean, adaptive", study.hospitals, _scheduler(config)), ("adaptive", noisy, _scheduler(config)),
            ("fixed", noisy, AdaptiveLR.fixed(config.eta0)))
    for label, hospitals, scheduler in runs:
        server, _ = _federate(study, config, encrypted=False, scheduler=scheduler, hospitals=hospitals)
        entry = {"history": server.history, "final": _test_metrics(study, _model_with(study, config, server.weights))}
        # Relative to the other hospitals in the same round, averaged over rounds (round 1 has no variance yet).
        entry["noisy_lr_over_others"] = float(np.mean(
            [r["lr"][name] / np.mean([v for k, v in r["lr"].items() if k != name]) for r in server.history[1:]] or [1.0]))
        entry["noisy_sigma2"] = float(np.mean([r["sigma2"][name] for r in server.history if name in r["sigma2"]]))
        entry["best_val_loss"] = float(min(r["val_loss"] for r in server.history))
        out[label] = entry
    out["sigma2_noisy_over_clean"] = out["adaptive"]["noisy_sigma2"] / out["clean, adaptive"]["noisy_sigma2"]
    out["lr_noisy_over_clean"] = out["adaptive"]["noisy_lr_over_others"] / out["clean, adaptive"]["noisy_lr_over_others"]
    say(f"  {name}'s mean update variance with noisy labels is {out['sigma2_noisy_over_clean']:.2f}x its clean value; "
        f"its learning rate relative to the others is {out['lr_noisy_over_clean']:.2f}x the clean run's")
    for label in ("adaptive", "fixed"):
        e = out[label]
        say(f"  noisy labels, {label:8s} rate: best val loss {e['best_val_loss']:.4f}, final "
            f"{e['history'][-1]['val_loss']:.4f}, test AUC {e['final']['test_auc']:.3f}")
    return out


#: Options that must match for --resume to continue a run (rounds may grow).
_RESUME_KEYS = ("dataset", "files", "features", "treatment", "outcome", "arms", "hospitals", "split",
                "dirichlet_alpha", "split_column", "local_epochs", "batch_size", "hidden", "eta0", "alpha",
                "patience", "decay", "preset", "seed", "min_hospitals")


def _guard_resume(config: RunConfig, out: Path) -> None:
    """Record the run's options next to its checkpoints; refuse to resume with different ones."""
    path = out / "checkpoints" / "options.json"
    mine = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items() if k in _RESUME_KEYS}
    mine = json.loads(json.dumps(mine))
    if config.resume and path.exists():
        try:
            theirs = json.loads(path.read_text())
        except ValueError as exc:
            raise ParameterError(f"{path} is unreadable ({exc}); start afresh without --resume") from None
        changed = [f"{k}: {theirs.get(k)!r} then, {mine[k]!r} now" for k in _RESUME_KEYS if theirs.get(k) != mine[k]]
        if changed:
            raise ParameterError(
                f"cannot resume the run in {out}: its options differ ({'; '.join(changed)}); "
                "rerun with the same options, or use another --out"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1))


def _print_comparison(results: dict, say: Printer) -> None:
    """The comparison table on the console (the report folder has the full one)."""
    rows = [(name, entry["final"]) for name, entry in results["methods"].items()]
    if "centralized" in results:
        rows.append(("centralized (pooled data)", results["centralized"]["final"]))
    alone = results.get("hospitals_alone", {})
    if alone:
        keys = next(iter(alone.values()))["final"].keys()
        rows.append(("hospitals alone (mean)", {k: float(np.mean([a["final"][k] for a in alone.values()])) for k in keys}))
    say(f"{'model (test set)':<28s} {'AUC':>6s} {'accuracy':>9s} {'F1':>6s} {'loss':>7s}")
    for name, m in rows:
        say(f"{name:<28s} {m['test_auc']:6.3f} {m['test_accuracy']:9.3f} {m['test_f1']:6.3f} {m['test_loss']:7.4f}")
