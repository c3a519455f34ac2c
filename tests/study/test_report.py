"""The report folder, written from StudyResults built by hand with numbers chosen here."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pytest

from fhto_native.errors import FhtoError, InputTypeError, ParameterError, ShapeError
from fhto_native.study.policy import MODEL_POLICY, OBSERVED, PolicyTable, PolicyValue
from fhto_native.study.privacy import AttackResult
from fhto_native.study.report import REPORT_FILES, format_bytes, format_number, format_table, write_report
from fhto_native.study.results import (
    FrontierPoint,
    FrontierSummary,
    PrivacyFrontier,
    AuditResult,
    AuditRow,
    DataSummary,
    HospitalSummary,
    KaplanMeierCheck,
    MethodKind,
    MethodResult,
    Metrics,
    RoundRecord,
    SchedulerEffect,
    SchedulerExperiment,
    SchedulerRun,
    SchedulerSummary,
    StudyResults,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSPITALS = ["hospital 1", "hospital 2", "hospital 3"]
ROUNDS = 6
GOOD = "no recurrence within 5 years"
CONCLUSION = ("Over 3 seeds, the per-hospital rate (adaptive minus decay only) changed test AUC by noise 0: +0.004 "
              "[-0.010, +0.018]; noise 0.3: +0.021 [+0.002, +0.040] (mean [95% interval]): it helped at noise 0.3; "
              "elsewhere no interval excludes zero. The decay of eta_0 alone (decay only minus fixed) did not "
              "measurably change test AUC either.")

def attack(name: str, auc: float, p_auc: float, p_advantage: float, nonmembers: int = 180) -> Any:
    return AttackResult(
        n_perm=200, n_boot=200, attack=name, auc=auc, tpr_at_1pct_fpr=0.02, tpr_at_10pct_fpr=0.13, advantage=0.081, members=120,
        nonmembers=nonmembers, auc_ci=(auc - 0.04, auc + 0.04), advantage_ci=(0.05, 0.12), null_auc_95=0.561,
        null_advantage_95=0.097, null_tpr_at_1pct_fpr_95=0.025, null_tpr_at_10pct_fpr_95=0.16, p_auc=p_auc,
        p_advantage=p_advantage, false_positives_at_1pct=nonmembers // 100,
    )


def policy_table(good: str = GOOD) -> Any:
    rows = [
        PolicyValue(MODEL_POLICY, 0.6123, 0.5511, 0.6734, 70),
        PolicyValue("everyone: Obs", 0.5234, 0.4412, 0.6056, 60),
        PolicyValue("everyone: Lev", 0.5311, 0.4501, 0.6121, 58),
        PolicyValue("everyone: Lev+5FU", 0.6345, 0.5588, 0.7102, 62),
        PolicyValue(OBSERVED, 0.5602, 0.5101, 0.6110, 180),
    ]
    return PolicyTable(
        level=0.95, n_boot=500, rows=rows, estimator="doubly robust (AIPW) with inverse-probability-of-censoring weights",
        propensity="randomized design: arm shares",
        censoring="inverse-probability-of-censoring weights from a Kaplan-Meier estimate of the censoring "
                  "distribution: 30 of 180 patients have unknown status and weight 0, none dropped",
        good_outcome=good,
    )


# -- StudyResults built by hand -------------------------------------------------------------------

def _record(r: int, hospitals: Sequence[str], encrypted: bool, offset: float,
            failures: Sequence[str] = ()) -> RoundRecord:
    reported = [h for h in hospitals if not any(f.startswith(h + ":") for f in failures)]
    seconds = {"train": 0.1 + 0.01 * r, "aggregate": 0.002, "evaluate": 0.01}
    if encrypted:
        seconds.update(encrypt=0.004, decrypt=0.003)
    return RoundRecord(
        round=r,
        validation={"loss": 0.69 - 0.02 * r + offset, "accuracy": 0.55 + 0.01 * r, "precision": 0.5 + 0.01 * r,
                    "recall": 0.4 + 0.02 * r, "f1": 0.45 + 0.015 * r, "auc": 0.6 + 0.01 * r - offset},
        eta0=0.05 if r < 4 else 0.025,
        lr={h: 0.05 / (1 + 10 * (i + 1) * 1e-4) for i, h in enumerate(reported)},
        sigma2={h: (i + 1) * 1e-4 for i, h in enumerate(reported)},
        seconds=seconds,
        bytes={"upload": (400_000 if encrypted else 4_000) * len(reported), "sum": 400_000 if encrypted else 4_000},
        failures=list(failures),
        reported=len(reported),
    )


def _metrics(auc: float, shift: float = 0.0, threshold: float = 0.42) -> Metrics:
    return Metrics(loss=0.61 + shift, accuracy=0.66 + shift, precision=0.6 + shift, recall=0.55 + shift,
                   f1=0.57 + shift, auc=auc, threshold=threshold)


def _method(key: str, kind: MethodKind, label: str, test_auc: float, *, parties: Sequence[str], rows: int,
            encrypted: bool = False, converged: bool = True, shift: float = 0.0, offset: float = 0.0,
            hospital: Optional[str] = None, failures: Dict[int, List[str]] | None = None) -> MethodResult:
    history = [_record(r, parties, encrypted, offset, (failures or {}).get(r, ())) for r in range(1, ROUNDS + 1)]
    return MethodResult(
        key=key, kind=kind, label=label, description=f"how {label} was trained", rows=rows, history=history,
        selected_round=ROUNDS if not converged else ROUNDS - 2, rounds_run=ROUNDS, stopped_early=False,
        converged=converged, validation=_metrics(test_auc + 0.01, shift), test=_metrics(test_auc, shift),
        hospital=hospital,
    )


def make_results(*, enc_auc: float = 0.6812, plain_auc: float = 0.6812, central_auc: float = 0.7034,
                 plain_shift: float = 0.0, unconverged: Sequence[str] = (), n_hospitals: int = 3,
                 split: str = "one file per hospital", good: str = GOOD, scheduler: bool = True,
                 audit: bool = True, weights_difference: Optional[float] = 2.1e-9,
                 alone_aucs: Sequence[float] = (0.58, 0.61, 0.64), frontier: bool = True,
                 mia_leak: bool = False) -> StudyResults:
    names = [f"hospital {i + 1}" for i in range(n_hospitals)]
    data = DataSummary(
        dataset="3 hospital file(s)",
        description="colon cancer adjuvant chemotherapy trial",
        outcome="recurrence within 5 years (1 = recurrence)",
        outcome_label="recurrence",
        good_outcome_label=good,
        arms=["Obs", "Lev", "Lev+5FU"],
        features=["age", "sex", "obstruct", "nodes"],
        split=split,
        hospitals=[HospitalSummary(name=n, source=f"{n.replace(' ', '_')}.csv", rows=100 + 10 * i, known=90 + 10 * i,
                                   censored=10, events=40 + i, arms={"Obs": 30, "Lev": 35, "Lev+5FU": 35 + 10 * i})
                   for i, n in enumerate(names)],
        validation_rows=150,
        test_rows=180,
        censoring="censored before 5 years: weighted by the inverse probability of staying uncensored",
        randomized=True,
        standardization="means and standard deviations from encrypted per-hospital sums",
        warnings=["hospital 3 has fewer than 50 events"],
    )
    methods = [
        _method("encrypted", MethodKind.ENCRYPTED, "encrypted FL (FHTO)", enc_auc, parties=names, rows=330,
                encrypted=True, converged="encrypted" not in unconverged,
                failures={4: ["hospital 3: timed out after 5 s"]}),
        _method("plaintext", MethodKind.PLAINTEXT, "plaintext FedAvg", plain_auc, parties=names, rows=330,
                converged="plaintext" not in unconverged, shift=plain_shift, offset=0.001),
        _method("centralized", MethodKind.CENTRALIZED, "centralized (pooled data)", central_auc, parties=["pooled"],
                rows=330, converged="centralized" not in unconverged, offset=-0.01),
    ]
    for i, name in enumerate(names):
        methods.append(_method(f"alone: {name}", MethodKind.ALONE, f"{name} alone", alone_aucs[i % len(alone_aucs)],
                               parties=[name], rows=100 + 10 * i, converged=f"alone: {name}" not in unconverged,
                               offset=0.02 * (i + 1), hospital=name))
    audit_result = AuditResult(
        rows=[
            AuditRow("update", "hospital 1", attack("loss threshold", 0.5312, p_auc=0.31, p_advantage=0.42)),
            AuditRow("update", "hospital 2", attack("reference models (calibrated loss)", 0.6021, p_auc=0.004,
                                                    p_advantage=0.01)),
            AuditRow("global", "all hospitals", attack("loss threshold", 0.5123, p_auc=0.47, p_advantage=0.55,
                                                       nonmembers=90)),
        ],
        design="members: a target's training patients with a known outcome; non-members: test patients drawn to "
               "the members' outcome rate",
    ) if audit else None
    sched = None
    if scheduler:
        arms, levels, seeds = ["adaptive", "decay only", "fixed"], [0.0, 0.3], [0, 1, 2]
        runs = [SchedulerRun(arm=a, noise=p, seed=s, test_auc=0.65 + 0.01 * s - 0.02 * j - 0.05 * p,
                             test_loss=0.62 + 0.005 * j + 0.03 * p, best_val_loss=0.6, selected_round=5,
                             rounds_run=ROUNDS, noisy_lr_ratio=0.8 if a == "adaptive" else 1.0, noisy_sigma2=3e-4)
                for j, a in enumerate(arms) for p in levels for s in seeds]
        summary = [SchedulerSummary(arm=a, noise=p, seeds=3, test_auc_mean=0.66 - 0.02 * j - 0.05 * p,
                                    test_auc_sd=0.01, test_loss_mean=0.62 + 0.005 * j + 0.03 * p, test_loss_sd=0.004,
                                    noisy_lr_ratio_mean=0.8 if a == "adaptive" else 1.0)
                   for j, a in enumerate(arms) for p in levels]
        effects = [SchedulerEffect(noise=p, first=f, second=s, metric="test_auc", mean=0.004 + 0.05 * p, sd=0.006,
                                   ci_low=-0.01 + 0.04 * p, ci_high=0.018 + 0.07 * p, seeds=3)
                   for p in levels
                   for f, s in (("adaptive", "decay only"), ("decay only", "fixed"), ("adaptive", "fixed"))]
        sched = SchedulerExperiment(noisy_hospital="hospital 2", arms=arms, noise_levels=levels, seeds=seeds, runs=runs,
                                    summary=summary, effects=effects, conclusion=CONCLUSION)
    front = None
    if frontier:
        epsilons = [float("inf"), 4.0, 1.0]
        points = [FrontierPoint(epsilon=e, seed=s, epsilon_spent=e * 0.99, noise_multiplier=0.0 if e == float("inf") else 10 / e,
                                test_auc=0.68 - 0.01 * i - 0.002 * s, policy_value=0.62 - 0.01 * i, policy_low=0.55,
                                policy_high=0.69, mia_auc=(0.58 if mia_leak and i == 0 else 0.49) + 0.001 * s,
                                mia_auc_low=0.44, mia_auc_high=0.62, mia_chance_auc_95=0.54, mia_tpr_at_1pct_fpr=0.0,
                                mia_tpr_low=0.0, mia_tpr_high=0.03, mia_chance_tpr_95=0.03)
                  for i, e in enumerate(epsilons) for s in (0, 1)]
        summary = []
        for e in epsilons:
            mine = [p for p in points if p.epsilon == e]
            mean = lambda name: float(np.mean([getattr(p, name) for p in mine]))  # noqa: E731
            low = lambda name: float(min(getattr(p, name) for p in mine))  # noqa: E731
            high = lambda name: float(max(getattr(p, name) for p in mine))  # noqa: E731
            summary.append(FrontierSummary(
                epsilon=e, seeds=2, epsilon_spent=e * 0.99, test_auc=mean("test_auc"), test_auc_min=low("test_auc"),
                test_auc_max=high("test_auc"), policy_value=mean("policy_value"), policy_value_min=low("policy_value"),
                policy_value_max=high("policy_value"), mia_auc=mean("mia_auc"), mia_auc_min=low("mia_auc"),
                mia_auc_max=high("mia_auc"), mia_tpr_at_1pct_fpr=0.0, mia_chance_auc_95=0.54, mia_chance_tpr_95=0.03))
        front = PrivacyFrontier(points=points, summary=summary, design="DP-FedSGD, 2 seeds per epsilon")
    return StudyResults(
        config={"dataset": "csv", "hospitals": 5, "split": "dirichlet", "rounds": ROUNDS, "local_epochs": 2,
                "eta0": 0.05, "alpha": 2000.0, "patience": 4, "decay": 0.5, "min_delta": 1e-4, "early_stopping": 10, "threshold": "youden",
                "preset": "compact", "seed": 7},
        data=data,
        key_set="PublicContext(preset='compact', N=8192)",
        methods=methods,
        weights_difference=weights_difference,
        policy=policy_table(good),
        policy_model="encrypted",
        kaplan_meier=[KaplanMeierCheck(policy="everyone: Obs", scope="test patients", kaplan_meier=0.5301,
                                       value=0.5234, ci_low=0.4412, ci_high=0.6056),
                      KaplanMeierCheck(policy=OBSERVED, scope="test patients", kaplan_meier=0.6201, value=0.5602,
                                       ci_low=0.5101, ci_high=0.6110)],
        audit=audit_result,
        scheduler=sched,
        seconds=95.2,
        warnings=["the plaintext run lost hospital 3 in round 4"],
        privacy_frontier=front,
    )


def _summary(results: StudyResults, folder: Path) -> str:
    write_report(results, folder)
    return (folder / "summary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def results() -> StudyResults:
    return make_results()


@pytest.fixture(scope="module")
def report(results: StudyResults, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    paths = write_report(results, tmp_path_factory.mktemp("report") / "nested" / "out")
    return {p.name: p for p in paths}


@pytest.fixture(scope="module")
def text(report: Dict[str, Path]) -> str:
    return report["summary.md"].read_text(encoding="utf-8")


# -- the files --------------------------------------------------------------------------------------

def test_every_file_written(report: Dict[str, Path]) -> None:
    assert list(report) == list(REPORT_FILES)
    for name, path in report.items():
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            data = path.read_bytes()
            assert data.startswith(PNG_SIGNATURE), name
            assert len(data) > 10_000, name  # a real plot, not an empty canvas
    folder = report["summary.md"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)  # no temporaries left behind


def test_same_results_give_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_report(make_results(), first)
    write_report(make_results(), second)
    for name in REPORT_FILES:
        if name.endswith((".csv", ".json", ".md")) and name != "cost.csv":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # and the comparison can fail: one changed number changes the file
    third = tmp_path / "c"
    write_report(make_results(enc_auc=0.6813), third)
    assert (first / "final.csv").read_bytes() != (third / "final.csv").read_bytes()
    assert (first / "metrics.csv").read_bytes() == (third / "metrics.csv").read_bytes()


def test_metrics_csv_has_no_timings(report: Dict[str, Path], results: StudyResults) -> None:
    table = pd.read_csv(report["metrics.csv"])
    assert list(table.columns) == ["method", "label", "round", "val_loss", "val_accuracy", "val_precision",
                                   "val_recall", "val_f1", "val_auc", "eta0"]
    assert len(table) == sum(len(m.history) for m in results.methods)
    enc = table[table["method"] == "encrypted"].set_index("round")
    record = results.methods[0].history[2]
    assert enc.loc[3, "val_auc"] == pytest.approx(record.validation["auc"], abs=1e-12)
    assert enc.loc[5, "eta0"] == 0.025
    assert set(table["label"]) == {m.label for m in results.methods}


def test_cost_csv_holds_the_timings(report: Dict[str, Path], results: StudyResults) -> None:
    table = pd.read_csv(report["cost.csv"], keep_default_na=False, na_values=[""])
    enc = table[table["method"] == "encrypted"].set_index("round")
    record = results.methods[0].history[0]
    assert enc.loc[1, "seconds_encrypt"] == pytest.approx(record.seconds["encrypt"])
    assert enc.loc[1, "seconds_total"] == pytest.approx(sum(record.seconds.values()))
    assert enc.loc[1, "bytes_upload"] == 1_200_000
    assert enc.loc[4, "reported"] == 2 and enc.loc[4, "failures"] == "hospital 3: timed out after 5 s"
    assert table.loc[table["method"] == "plaintext", "seconds_encrypt"].isna().all()


def test_learning_rates_csv(report: Dict[str, Path], results: StudyResults) -> None:
    table = pd.read_csv(report["learning_rates.csv"])
    assert list(table.columns) == ["method", "round", "hospital", "lr", "sigma2"]
    assert len(table) == sum(len(r.lr) for m in results.methods for r in m.history)
    row = table[(table["method"] == "encrypted") & (table["round"] == 2) & (table["hospital"] == "hospital 3")].iloc[0]
    assert row["sigma2"] == pytest.approx(3e-4) and row["lr"] == pytest.approx(0.05 / 1.003)


def test_final_csv(report: Dict[str, Path], results: StudyResults) -> None:
    table = pd.read_csv(report["final.csv"], keep_default_na=False, na_values=[""]).set_index("key")
    assert list(table.index) == [m.key for m in results.methods] + ["alone (mean)"]
    assert table.loc["encrypted", "test_auc"] == 0.6812
    assert table.loc["encrypted", "kind"] == "encrypted" and table.loc["alone: hospital 2", "kind"] == "alone"
    assert table.loc["alone: hospital 2", "hospital"] == "hospital 2"
    assert table.loc["alone: hospital 2", "rows"] == 110
    assert table.loc["encrypted", "selected_round"] == ROUNDS - 2 and table.loc["encrypted", "rounds_run"] == ROUNDS
    assert table.loc["encrypted", "threshold"] == 0.42
    assert table.loc["alone (mean)", "test_auc"] == pytest.approx(np.mean([0.58, 0.61, 0.64]))
    assert table.loc["alone (mean)", "label"] == "hospitals alone (mean)"
    for column in ("stopped_early", "converged", "val_auc", "test_loss", "label"):
        assert column in table.columns


def test_policy_km_privacy_and_scheduler_csv(report: Dict[str, Path], results: StudyResults) -> None:
    policy = pd.read_csv(report["policy.csv"])
    assert list(policy["name"]) == [r.name for r in results.policy.rows]
    assert list(policy.columns[:5]) == ["name", "value", "ci_low", "ci_high", "n_followed"]
    assert policy["value"].tolist() == [r.value for r in results.policy.rows]
    assert (policy["estimator"] == results.policy.estimator).all()
    assert (policy["propensity"] == results.policy.propensity).all()
    km = pd.read_csv(report["km_check.csv"])
    assert km["inside"].tolist() == [True, False]
    privacy = pd.read_csv(report["privacy.csv"])
    assert privacy["view"].tolist() == ["update", "update", "global"]
    for column in ("auc", "auc_ci_low", "auc_ci_high", "advantage_ci_low", "advantage_ci_high", "null_auc_95",
                   "null_advantage_95", "null_tpr_at_1pct_fpr_95", "null_tpr_at_10pct_fpr_95", "p_auc",
                   "p_advantage", "false_positives_at_1pct", "distinguishable", "members", "nonmembers"):
        assert column in privacy.columns, column
    assert privacy["auc_ci_low"].tolist() == pytest.approx([0.5312 - 0.04, 0.6021 - 0.04, 0.5123 - 0.04])
    assert privacy["distinguishable"].tolist() == [False, True, False]
    assert privacy["false_positives_at_1pct"].tolist() == [1, 1, 0]
    assert len(pd.read_csv(report["scheduler_runs.csv"])) == len(results.scheduler.runs)
    summary = pd.read_csv(report["scheduler_summary.csv"])
    assert summary["test_auc_mean"].tolist() == pytest.approx([s.test_auc_mean for s in results.scheduler.summary])
    effects = pd.read_csv(report["scheduler_effects.csv"])
    assert effects["demonstrated"].tolist() == [e.demonstrated for e in results.scheduler.effects]


def test_results_json(report: Dict[str, Path], results: StudyResults) -> None:
    raw = report["results.json"].read_text(encoding="utf-8")
    assert raw == json.dumps(results.to_json(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    loaded = json.loads(raw)
    assert loaded["methods"][0]["kind"] == "encrypted"
    assert loaded["weights_difference"] == 2.1e-9


# -- the summary ------------------------------------------------------------------------------------

def test_summary_hospitals_from_the_data_not_the_config(text: str) -> None:
    # config says hospitals=5 and split=dirichlet; the data summary says 3 hospitals, one file each
    assert "**Hospitals:** 3 hospitals; split: one file per hospital" in text
    assert "5 hospitals" not in text and "dirichlet" not in text
    assert "| all 3 hospitals |" in text
    for name in HOSPITALS:
        assert f"| {name} | {name.replace(' ', '_')}.csv |" in text


def test_summary_states_what_was_run(text: str) -> None:
    assert "recurrence within 5 years (1 = recurrence)" in text
    assert "weighted by the inverse probability of staying uncensored" in text
    assert "Obs, Lev, Lev+5FU" in text and "randomized" in text
    assert "7 (a seeded run is reproducible; it is for reproducibility, not for production keys)" in text
    assert "- **Warning:** hospital 3 has fewer than 50 events" in text
    assert "- **Warning:** the plaintext run lost hospital 3 in round 4" in text
    assert "up to 6 rounds of 2 local epochs" in text
    assert "η₀ = 0.05, multiplied by 0.5 after 4 rounds" in text
    assert "α = 2000" in text and "after 10 rounds without improvement" in text
    assert "maximize Youden's J" in text


def test_summary_model_quality(text: str) -> None:
    assert "Encrypted FL (FHTO) reached a test AUC of 0.681 vs 0.681 for plaintext FedAvg on 180 held-out test " \
        "patients." in text
    assert "The encrypted federated model's test AUC is 0.0712 higher" in text
    assert "higher than that of each of the 3 hospitals training alone" in text
    assert "Hospitals training alone reached 0.610 on average (from 0.580 for hospital 1 alone to 0.640" in text
    assert "| encrypted FL (FHTO) | how encrypted FL (FHTO) was trained | 4 / 6 | 0.681 |" in text


def test_identical_only_when_the_aucs_are_equal(tmp_path: Path) -> None:
    same = _summary(make_results(enc_auc=0.6812, plain_auc=0.6812), tmp_path / "same")
    assert "Their test AUCs are identical (0.681)." in same
    assert "Their test accuracy, precision, recall, F1 and loss are identical." in same
    differ = _summary(make_results(enc_auc=0.6812, plain_auc=0.6833, plain_shift=0.0013), tmp_path / "differ")
    assert "identical" not in differ
    assert "Their test AUCs differ by 0.0021 (0.681 vs 0.683)." in differ
    assert "Their other test metrics differ: accuracy by 0.0013 (0.660 vs 0.661); precision by 0.0013" in differ
    close = _summary(make_results(enc_auc=0.68121, plain_auc=0.68129), tmp_path / "close")
    assert "AUCs are identical" not in close
    assert "Their test AUCs differ by 8e-05 (0.6812 vs 0.6813)." in close  # a 4th digit where 3 would look equal
    tiny = _summary(make_results(enc_auc=0.6812, plain_auc=0.6812 + 1e-12), tmp_path / "tiny")
    assert "AUCs are identical" not in tiny
    assert "Their test AUCs differ by 1e-12 (0.681200000000 vs 0.681200000001)." in tiny


def test_weights_difference_sentence(text: str, tmp_path: Path) -> None:
    assert "**2.1e-09**" in text and "rounding noise of CKKS" in text
    large = _summary(make_results(weights_difference=0.02), tmp_path)
    assert "**0.02**" in large and "did not compute the same model" in large


def test_upper_bound_only_when_centralized_is_best(text: str, tmp_path: Path) -> None:
    assert "no other method reached a higher test AUC: here it is the upper bound" in text
    below = _summary(make_results(central_auc=0.6700), tmp_path)
    assert "upper bound" not in below
    assert "lower than encrypted FL (FHTO) (0.681) and plaintext FedAvg (0.681)" in below
    # a hospital alone above centralized also takes the label away
    alone_above = _summary(make_results(central_auc=0.69, enc_auc=0.68, plain_auc=0.68, alone_aucs=(0.58, 0.7, 0.6)),
                           tmp_path / "alone")
    assert "upper bound" not in alone_above and "hospital 2 alone (0.700)" in alone_above
    tie = _summary(make_results(central_auc=0.6812), tmp_path / "tie")  # equal to the best: still >= every other
    assert "here it is the upper bound" in tie


def test_convergence_sentence_exactly_for_unconverged(text: str, tmp_path: Path) -> None:
    assert "may not have converged" not in text
    chosen = ("plaintext", "alone: hospital 2")
    out = _summary(make_results(unconverged=chosen), tmp_path)
    sentences = re.findall(r"- (.+?): validation loss was still improving at round (\d+) of (\d+): the model may not "
                           r"have converged; more rounds may help\.", out)
    assert sentences == [("Plaintext FedAvg", "6", "6"), ("Hospital 2 alone", "6", "6")]
    assert out.count("may not have converged") == 2


def test_policy_section(text: str, tmp_path: Path) -> None:
    assert f"## Treatment policies: probability of {GOOD}" in text
    assert "- **Estimator:** doubly robust (AIPW) with inverse-probability-of-censoring weights.\n" in text
    assert "- **Propensities:** randomized design: arm shares.\n" in text
    assert "- **Censoring:** inverse-probability-of-censoring weights from a Kaplan-Meier estimate" in text
    assert "according to encrypted FL (FHTO)" in text  # policy_model is a method key: its label is shown
    assert f"| {MODEL_POLICY} | 0.612 | 0.551 to 0.673 | 70 |" in text
    assert "no difference between them has been demonstrated" in text
    assert "| everyone: Obs | test patients | 0.530 | 0.523 | 0.441 to 0.606 | yes |" in text
    assert (f"inside the estimate's interval in 1 of 2 checks; it lies outside for \"{OBSERVED}\" "
            "(test patients)") in text
    assert "doubly robust" in text and "**Caution.**" in text
    described = make_results()
    described.policy_model = "the selected encrypted FL (FHTO) model"  # not a method key: shown as it is
    assert "according to the selected encrypted FL (FHTO) model." in _summary(described, tmp_path / "described")
    other = _summary(make_results(good="alive without relapse at 3 years"), tmp_path)
    assert "## Treatment policies: probability of alive without relapse at 3 years" in other
    assert GOOD not in other


def test_privacy_section(text: str, tmp_path: Path) -> None:
    assert text.count("Indistinguishable from chance:") == 1
    assert ("- Indistinguishable from chance: the other 2 results (loss threshold against hospital 1; loss threshold "
            "against all hospitals)") in text
    assert ("- Distinguishable from chance: reference models (calibrated loss) against hospital 2, on one hospital's "
            "update") in text
    assert "0.531 [0.491, 0.571]" in text and "0.561" in text  # AUC with its interval, the chance reference
    assert "0.0200 (may flag 1 of 180 non-members)" in text
    # the global row has 90 non-members: 1% of them is no patient at all
    assert "Note: with 90 non-members, 1% of them is less than one patient" in text
    assert ("so for 1 of the 3 results (those that \"may flag 0\" non-members in the table) the TPR at 1% FPR "
            "cannot flag any non-member") in text
    assert "0.0200 (may flag 0 of 90 non-members)" in text
    assert ("**Audit design:** members: a target's training patients with a known outcome; non-members: test "
            "patients drawn to the members' outcome rate.\n") in text
    assert "Encryption does not lower this risk" in text and "Encryption removes this view" in text
    none = _summary(make_results(audit=False), tmp_path)
    assert "No privacy audit was run." in none and "Indistinguishable" not in none
    chance = make_results()
    chance.audit = AuditResult(
        rows=[AuditRow(row.view, row.target, attack(row.result.attack, 0.51, p_auc=0.3, p_advantage=0.21))
              for row in chance.audit.rows],
        design=chance.audit.design,
    )
    all_chance = _summary(chance, tmp_path / "chance")
    assert "- Indistinguishable from chance: all 3 results (every p-value is 0.05 or more; the smallest is 0.21)" in all_chance
    assert "- Distinguishable from chance" not in all_chance


def test_server_and_cost_sections(text: str) -> None:
    assert "σ_i² values it saw" not in text  # the server never sees a hospital's variance
    assert "from its own update variance σ_i², which never leaves it" in text
    assert "never one hospital's (each hospital's sample count and training loss travel inside its encrypted update)" in text
    assert "- **Deployment:** in process" in text
    assert "1 hospital update was missing over 6 rounds (round 4: hospital 3: timed out after 5 s)" in text
    assert "The uploads of all hospitals together were 1.2 MB per round vs 12 kB (100 times as much)." in text
    assert "A round of encrypted FL (FHTO) took a median of" in text


def test_scheduler_section(text: str) -> None:
    assert CONCLUSION in text
    assert "a share of hospital 2's training labels was flipped (label noise 0 and 0.3)" in text
    assert "over 3 seeds (0, 1, 2)" in text
    assert "| adaptive | 0.3 | 0.645 ± 0.0100 | 0.629 ± 0.00400 | 0.800 | 3 |" in text
    assert ("| adaptive − decay only | the per-hospital rate | 0.3 | test AUC | 0.0190 | 0.00600 | "
            "0.00200 to 0.0390 |") in text
    assert "| decay only − fixed | the decay of η₀ | 0 |" in text


def test_links_to_written_files(text: str) -> None:
    for name in REPORT_FILES:
        if name != "summary.md":
            assert f"]({name})" in text, name


# -- missing sections and stale files -----------------------------------------------------------------

def test_stale_files_removed_when_a_section_is_missing(tmp_path: Path) -> None:
    write_report(make_results(), tmp_path)
    assert (tmp_path / "scheduler.png").exists() and (tmp_path / "privacy.csv").exists()
    paths = write_report(make_results(scheduler=False, audit=False), tmp_path)
    for name in ("scheduler.png", "scheduler_runs.csv", "scheduler_summary.csv", "scheduler_effects.csv",
                 "privacy.csv"):
        assert not (tmp_path / name).exists(), name
        assert tmp_path / name not in paths
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "(scheduler.png)" not in text and "(privacy.csv)" not in text
    assert "## Learning-rate scheduler experiment" not in text
    assert (tmp_path / "validation_auc.png").exists()


def test_minimal_results(tmp_path: Path) -> None:
    results = make_results(scheduler=False, audit=False, weights_difference=None, frontier=False)
    results.methods = [m for m in results.methods if m.kind is MethodKind.ENCRYPTED]
    results.policy = None
    results.kaplan_meier = []
    names = [p.name for p in write_report(results, tmp_path)]
    assert names == ["metrics.csv", "cost.csv", "learning_rates.csv", "final.csv", "results.json",
                     "validation_auc.png", "validation_loss.png", "learning_rates.png", "cost_per_round.png",
                     "summary.md"]
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "## Treatment policies" not in text and "## Encrypted vs plaintext" not in text
    assert "reached a test AUC of 0.681 on 180 held-out test patients" in text


# -- bad input ----------------------------------------------------------------------------------------

def test_not_study_results(tmp_path: Path) -> None:
    with pytest.raises(InputTypeError, match="results must be a StudyResults; got dict"):
        write_report({"methods": {}}, tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_out_is_a_file(tmp_path: Path, results: StudyResults) -> None:
    target = tmp_path / "report"
    target.write_text("not a folder")
    with pytest.raises(ParameterError, match="exists and is not one"):
        write_report(results, target)
    with pytest.raises(InputTypeError, match="out must be a folder path; got int"):
        write_report(results, 3)  # type: ignore[arg-type]


def test_policy_that_is_not_a_policy_table(tmp_path: Path) -> None:
    results = make_results()
    results.policy = [PolicyValue(MODEL_POLICY, 0.6, 0.5, 0.7, 10)]
    with pytest.raises(InputTypeError, match="results.policy must be a PolicyTable .* got list without rows"):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written for a refused input


# -- formatting ---------------------------------------------------------------------------------------

def test_format_number() -> None:
    assert format_number(0.61234) == "0.612"
    assert format_number(2.1e-9) == "2.1e-09"
    assert format_number(95.2) == "95.2"
    assert format_number(540) == "540"
    assert format_number(123456) == "123,456"
    assert format_number(None) == "n/a" and format_number(float("nan")) == "n/a"
    assert format_number(0.6, trailing_zeros=True) == "0.600"
    assert format_number(0.67102, 4, trailing_zeros=True) == "0.6710"
    assert format_number(np.float32(0.25)) == "0.25"
    assert format_number(2_500_000.0) == "2.5e+06"
    assert format_number(1234.5) == "1234" and format_number(12345.6) == "12,346"


@pytest.mark.parametrize("digits", [0, -1, 2.5, True])
def test_format_number_bad_digits(digits: Any) -> None:
    with pytest.raises(ParameterError, match=f"digits must be a positive integer; got {re.escape(repr(digits))}"):
        format_number(0.5, digits)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1_200_000) == "1.2 MB"
    assert format_bytes(12_000) == "12 kB"
    assert format_bytes(3.4e9) == "3.4 GB"
    assert format_bytes(None) == "n/a" and format_bytes(float("nan")) == "n/a"


def test_format_table_widths_from_content() -> None:
    lines = format_table(["View", "AUC"], [["update", 0.5312], ["the released global model", 0.6]])
    assert lines == [
        "View                         AUC",
        "-------------------------  -----",
        "update                     0.531",
        "the released global model    0.6",
    ]


def test_format_table_never_cuts_a_word() -> None:
    cells = [["one hospital's update (what a plaintext-FL server sees)", "reference models (calibrated loss)", 0.6021],
             ["the released global model (seen by every participant)", "loss threshold", 0.5123]]
    lines = format_table(["What the attacker sees", "Attack", "AUC"], cells, max_width=50)
    words = [w for c in ["What the attacker sees", "Attack", "AUC"] for w in c.split()]
    for row in cells:
        words += [w for c in row[:2] for w in c.split()] + [format_number(row[2])]
    printed = [w for line in lines[:2] + lines[3:] for w in line.split()]
    assert sorted(printed) == sorted(words)  # every word printed whole, none cut or lost
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert len(lines) > 2 + len(cells)  # wrapped over several lines
    assert max(len(line) for line in lines) <= 50
    # a word longer than the cap keeps the column wide rather than being cut
    long = format_table(["name"], [["counterrevolutionaries"]], max_width=5)
    assert long[2] == "counterrevolutionaries"


def test_format_table_bad_input() -> None:
    with pytest.raises(ShapeError, match="row 1 has 1 cells; the header has 2 columns"):
        format_table(["a", "b"], [["x", "y"], ["z"]])
    with pytest.raises(ShapeError, match="at least one column"):
        format_table([], [])
    with pytest.raises(InputTypeError, match="header must be a sequence of column titles; got str"):
        format_table("ab", [])
    with pytest.raises(InputTypeError, match="row 0 must be a sequence of cells; got str"):
        format_table(["a"], ["x"])
    with pytest.raises(ParameterError, match="max_width must be a positive integer; got 0"):
        format_table(["a"], [["x"]], max_width=0)
    assert issubclass(ShapeError, FhtoError) and issubclass(ShapeError, ValueError)


def test_the_frontier_section_matches_its_numbers(tmp_path: Path) -> None:
    text = _summary(make_results(), tmp_path / "quiet")
    section = text.split("## Privacy-utility frontier")[1].split("\n## ")[0]
    assert "| ∞ | ∞ | 2 | 0.679 [0.678, 0.68]" in section
    assert "From ε = ∞ to ε = 1 the mean test AUC goes from 0.679 to 0.659" in section
    assert "stays at or below its chance reference" in section
    leaky = _summary(make_results(mia_leak=True), tmp_path / "leaky")
    assert "exceeds its chance reference at ε = ∞" in leaky and "stays at or below" not in leaky
    assert "## Privacy-utility frontier" not in _summary(make_results(frontier=False), tmp_path / "none")


def test_the_dp_section_states_the_guarantee_and_the_trust_assumption(tmp_path: Path) -> None:
    results = make_results()
    results.differential_privacy = {
        "epsilon_spent": 1.9915, "epsilon_target": 2.0, "delta": 1e-5, "rounds": 20, "accountant": "Opacus RDP accountant",
        "noise_multiplier": 9.65, "sample_rate": 1.0, "clip": 1.0, "hospital_noise_std": 4.82, "colluders_tolerated": 1,
        "min_contributors": 5, "lr": 1.0,
    }
    text = _summary(results, tmp_path / "dp")
    assert "(ε, δ) = (1.99, 1e-05)-differential privacy" in text and "up to 1 hospital(s) may collude" in text
    assert "Except under differential privacy" in text and "Not covered" in text
