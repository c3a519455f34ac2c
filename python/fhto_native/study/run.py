"""The main job: a federated treatment-optimization study, end to end (``fhto run``).

1. Prepare the cohort (:mod:`.cohort`): load, hold out validation and test sets, split into
   hospitals, censoring weights, checks, encrypted standardization.
2. Encrypted federated rounds with the adaptive learning rate; checkpoint every round.
3. Comparisons (:mod:`.baselines`): plaintext FedAvg with the same seeds, centralized training,
   each hospital alone, all with the one protocol of :mod:`.training`.
4. Treatment policies of the selected encrypted model, valued by a doubly robust estimator with
   censoring weights (:mod:`.policy`), checked against Kaplan-Meier.
5. The membership-inference audit (:mod:`.audit`) and the scheduler ablation
   (:mod:`.scheduler_experiment`).
6. The report folder (:mod:`.report`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

from .._files import make_folder
from .audit import run_audit
from .baselines import centralized, hospitals_alone
from .cohort import Cohort, prepare
from .config import RunConfig, StudyConfig, guard_resume
from ..errors import ParameterError
from .data import km_survival
from .dp import DPPlan
from .models import predict_risk
from .policy import OBSERVED, policy_value_table
from .results import IN_PROCESS, KaplanMeierCheck, MethodKind, StudyResults
from .frontier import run_privacy_frontier
from .hospital import derived_seed
from .recommend import build_saved_model
from .scheduler_experiment import run_scheduler_experiment
from .training import Trained, train_method

__all__ = ["RunConfig", "StudyConfig", "run"]

Printer = Callable[[str], None]


def _progress(label: str, rounds: int, say: Printer) -> Callable[[dict], None]:
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


def dp_plan(cohort: Cohort) -> Optional[DPPlan]:
    """The study's differential-privacy mechanism calibrated to its options, or None when off.
    Every round needs all hospitals unless --min-hospitals says fewer."""
    settings = cohort.config.dp_settings()
    if not settings:
        return None
    hospitals = len(cohort.hospitals)
    return DPPlan.calibrate(
        epsilon=settings["epsilon"], delta=settings["delta"], clip=settings["clip"], rounds=cohort.config.rounds,
        hospitals=hospitals, min_contributors=min(cohort.config.min_hospitals or hospitals, hospitals),
        colluders=settings["colluders"], lr=settings["lr"],
    )


def _federated(cohort: Cohort, out: Path, *, encrypted: bool, say: Printer, dp: Optional[DPPlan] = None) -> Trained:
    config = cohort.config
    key = "encrypted" if encrypted else "plaintext"
    private = "" if dp is None else f", epsilon={dp.epsilon:g} DP"
    trained = train_method(
        cohort,
        key=key,
        kind=MethodKind.ENCRYPTED if encrypted else MethodKind.PLAINTEXT,
        label=("encrypted FL (FHTO)" if encrypted else "plaintext FedAvg") + private,
        description=(
            "federated; each hospital's update encrypted (CKKS), the server only sums ciphertexts"
            if encrypted else "federated; the server sees every hospital's update in the clear"
        ),
        parties=dict(zip(cohort.names, cohort.hospitals)),
        scheduler=config.scheduler(),
        seed=config.seed,
        encrypted=encrypted,
        checkpoint=out / "checkpoints" / key,
        resume=config.resume,
        progress=_progress("HE" if encrypted else "plain", config.rounds, say),
        dp=dp,
    )
    r = trained.result
    stop = f"stopped early at round {r.rounds_run}" if r.stopped_early else f"ran {r.rounds_run} rounds"
    say(f"  {stop}; selected round {r.selected_round} (best validation loss {trained.best_loss:.4f})")
    return trained


def _kaplan_meier(cohort: Cohort, rows) -> List[KaplanMeierCheck]:
    """Each single-arm row and the observed row against Kaplan-Meier on the same population."""
    if cohort.full is not None and cohort.full.time is not None:
        ref, scope = cohort.full, f"whole cohort ({len(cohort.full)} patients)"
    elif cohort.test.time is not None:
        ref, scope = cohort.test, f"test patients ({len(cohort.test)})"
    else:
        return []
    checks = []
    for row in rows:
        if row.name == OBSERVED:
            mask = np.ones(len(ref), dtype=bool)
        elif row.name.startswith("everyone: "):
            mask = ref.treatment == cohort.arms.index(row.name[len("everyone: "):])
        else:
            continue
        km = float(km_survival(ref.time[mask], ref.event[mask], ref.horizon))
        checks.append(KaplanMeierCheck(row.name, scope, km, row.value, row.ci_low, row.ci_high))
    return checks


#: Trains the encrypted FL method of a study: in process by default, over Flower with ``fhto flower``.
EncryptedTrainer = Callable[[Cohort, Path, Printer], Trained]


def _in_process(cohort: Cohort, out: Path, say: Printer) -> Trained:
    return _federated(cohort, out, encrypted=True, say=say, dp=dp_plan(cohort))


def run(config: StudyConfig, say: Printer = print, *, encrypted_trainer: Optional[EncryptedTrainer] = None,
        deployment: str = IN_PROCESS) -> StudyResults:
    """Run the whole study and write the report folder; returns the results. ``encrypted_trainer``
    replaces the in-process training of the encrypted method (the Flower deployment does), and
    ``deployment`` says so in the report."""
    from .report import format_table, write_report

    started = time.perf_counter()
    torch.set_num_threads(1)
    out = make_folder(config.out)
    guard_resume(config, out)
    cohort = prepare(config, say)
    summary = cohort.summary
    say(f"{len(cohort.hospitals)} hospitals ({summary.split}): "
        + ", ".join(f"{h.name}={h.rows}" for h in summary.hospitals)
        + f"; validation {summary.validation_rows}, test {summary.test_rows}")
    for warning in summary.warnings:
        say(f"warning: {warning}")

    dp = dp_plan(cohort)
    if dp is not None:
        if encrypted_trainer is not None:
            raise ParameterError("differential privacy (--dp-epsilon) runs in process only (fhto run), not over Flower yet")
        say(f"differential privacy: epsilon {dp.epsilon:g}, delta {dp.delta:g} over {dp.rounds} rounds; clip {dp.clip:g}, "
            f"noise multiplier {dp.sigma:.3f} (each hospital's share {dp.hospital_noise_std:.3f}, tolerating "
            f"{dp.colluders} colluding hospital(s) of at least {dp.min_contributors} per round); step {dp.lr:g}")
        say(f"encrypted federated learning ({config.preset} CKKS preset, differentially private full-batch steps):")
    else:
        say(f"encrypted federated learning ({config.preset} CKKS preset, adaptive learning rate):")
    enc = (encrypted_trainer or _in_process)(cohort, out, say)
    trained = [enc]
    plain: Optional[Trained] = None
    difference = None
    if config.compare or config.audit:
        say("plaintext FedAvg (same code path and seeds, encryption off):")
        plain = _federated(cohort, out, encrypted=False, say=say, dp=dp)
        trained.append(plain)
        difference = float(np.max(np.abs(enc.weights - plain.weights)))
        say(f"max |w_encrypted - w_plaintext| of the selected models: {difference:.3e}")
    if config.compare:
        say("centralized training on the pooled training rows, and each hospital alone (same protocol):")
        trained.append(centralized(cohort))
        trained.extend(hospitals_alone(cohort))

    risk = predict_risk(cohort.model(enc.weights), cohort.test.X, len(cohort.arms), cohort.mean, cohort.std)
    test = cohort.test
    randomized = bool(summary.randomized)
    policy = policy_value_table(
        test.y, test.treatment, risk, cohort.arms, weight=test.weight, time=test.time, event=test.event,
        horizon=test.horizon, X=test.X, propensity="design" if randomized else "estimated",
        n_boot=config.n_boot, seed=config.seed, good_outcome=summary.good_outcome_label,
    )
    km = _kaplan_meier(cohort, policy.rows)
    say(f"policy value (probability of {summary.good_outcome_label}; doubly robust with censoring weights; "
        f"propensities: {policy.propensity}):")
    for line in format_table(
        ["policy", "value", "95% interval", "Kaplan-Meier"],
        [[r.name, f"{r.value:.3f}", f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
          next((f"{c.kaplan_meier:.3f} ({'inside' if c.inside else 'OUTSIDE'})" for c in km if c.policy == r.name), "")]
         for r in policy.rows],
    ):
        say("  " + line)

    audit = None
    if config.audit:
        say("privacy audit (membership inference):")
        globals_ = {"encrypted FL global model": enc.weights}
        if plain is not None:
            globals_["plaintext FedAvg global model"] = plain.weights
        audit = run_audit(cohort, globals_, plain.parties if plain is not None else None, say)
        for line in format_table(
            ["view", "target", "attack", "AUC", "chance 95%", "advantage", "chance 95%", "p"],
            [[row.view, row.target, row.result.attack, f"{row.result.auc:.3f}", f"{row.result.null_auc_95:.3f}",
              f"{row.result.advantage:.3f}", f"{row.result.null_advantage_95:.3f}", f"{row.result.p_auc:.3f}"]
             for row in audit.rows],
        ):
            say("  " + line)

    scheduler = None
    if config.scheduler_experiment:
        scheduler = run_scheduler_experiment(cohort, say)

    frontier = run_privacy_frontier(cohort, say) if config.privacy_frontier else None

    results = StudyResults(
        config=config.to_dict(),
        data=summary,
        key_set=repr(cohort.keys.public_context()),
        key_model=cohort.keys.describe(),
        methods=[t.result for t in trained],
        weights_difference=difference,
        policy=policy,
        policy_model="the selected encrypted FL (FHTO) model",
        kaplan_meier=km,
        audit=audit,
        scheduler=scheduler,
        seconds=time.perf_counter() - started,
        warnings=[],
        deployment=deployment,
        differential_privacy=None if dp is None else dp.describe(enc.result.rounds_run),
        privacy_frontier=frontier,
    )
    if dp is not None:
        spent = results.differential_privacy["epsilon_spent"]
        say(f"differential privacy: epsilon spent {spent:.4f} (target {dp.epsilon:g}) at delta {dp.delta:g}, "
            f"{enc.result.rounds_run} rounds, {results.differential_privacy['accountant']}")
    _print_comparison(results, say, format_table)
    written = write_report(results, out)
    _save_model(cohort, enc, dp, out, say)
    say(f"report written to {out} ({len(written)} files); summary: {out / 'summary.md'}")
    return results


def _bootstrap_replicates(cohort: Cohort, say: Printer) -> np.ndarray:
    """The federation retrained ``model_replicates`` times, each hospital resampling its own training
    patients with replacement (plaintext aggregation: the encrypted sum gives the same weights to
    within the CKKS error), each with its own initialization: the saved model's intervals."""
    config = cohort.config
    weights = []
    for r in range(config.model_replicates):
        rng = np.random.default_rng(derived_seed("replicate", config.seed, r))
        parties = {name: d.subset(rng.integers(0, len(d), len(d))) for name, d in zip(cohort.names, cohort.hospitals)}
        trained = train_method(
            cohort, key=f"replicate_{r}", kind=MethodKind.PLAINTEXT, label=f"bootstrap replicate {r + 1}",
            description="the federation retrained on each hospital's bootstrap resample", parties=parties,
            scheduler=config.scheduler(), seed=derived_seed("replicate-model", config.seed, r) % 2**31,
        )
        weights.append(trained.weights)
    return np.array(weights)


def _save_model(cohort: Cohort, enc: Trained, dp: Optional[DPPlan], out: Path, say: Printer) -> None:
    replicates = None
    if dp is None and cohort.config.model_replicates:
        say(f"saved model: training {cohort.config.model_replicates} bootstrap replicates for its intervals")
        replicates = _bootstrap_replicates(cohort, say)
    model = build_saved_model(cohort, enc.weights, method=enc.result.label, test_auc=enc.result.test.auc, dp=dp,
                              rounds_run=enc.result.rounds_run, replicates=replicates)
    path = model.save(out / "model.json")
    say(f"model saved to {path} (fhto recommend {out} --patients FILE)")


def _print_comparison(results: StudyResults, say: Printer, format_table) -> None:
    """The comparison table on the console (the report folder has the full one)."""
    rows = []
    alone = results.methods_of(MethodKind.ALONE)
    for m in results.methods:
        if m.kind is MethodKind.ALONE:
            continue
        rows.append([m.label, f"{m.selected_round}/{m.rounds_run}", f"{m.test.auc:.3f}", f"{m.test.accuracy:.3f}",
                     f"{m.test.f1:.3f}", f"{m.test.loss:.4f}", f"{m.test.threshold:.3f}"])
    if alone:
        mean = lambda name: float(np.mean([getattr(m.test, name) for m in alone]))  # noqa: E731
        rows.append(["hospitals alone (mean)", "", f"{mean('auc'):.3f}", f"{mean('accuracy'):.3f}",
                     f"{mean('f1'):.3f}", f"{mean('loss'):.4f}", ""])
    for line in format_table(["model (test set)", "selected", "AUC", "accuracy", "F1", "loss", "threshold"], rows):
        say(line)
