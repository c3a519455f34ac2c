from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pytest

from fhto_native.errors import ParameterError
from fhto_native.fl.report import format_number, to_jsonable, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENC = "encrypted FL (FHTO)"
PLAIN = "plaintext FedAvg"
HOSPITALS = [f"hospital {i}" for i in range(1, 6)]
ROUNDS = 12


def _history(rng: np.random.Generator, rounds: int, encrypted: bool, federated: bool = True,
             noisy: str | None = None) -> List[Dict[str, Any]]:
    out = []
    for r in range(1, rounds + 1):
        progress = 1 - math.exp(-r / 4)
        entry: Dict[str, Any] = {
            "round": r,
            "val_loss": 0.69 - 0.12 * progress + rng.normal(0, 0.005),
            "val_accuracy": 0.55 + 0.12 * progress + rng.normal(0, 0.01),
            "val_precision": 0.5 + 0.1 * progress,
            "val_recall": 0.4 + 0.2 * progress,
            "val_f1": 0.45 + 0.15 * progress,
            "val_auc": np.float64(0.6 + 0.1 * progress + rng.normal(0, 0.005)),
        }
        if federated:
            entry["eta0"] = 0.05 * 0.5 ** (r // 5)
            reported = [h for h in HOSPITALS if not (r == 4 and h == "hospital 3")]
            entry["lr"] = {h: entry["eta0"] * (0.4 if h == noisy else 1.0) * rng.uniform(0.9, 1.0) for h in reported}
            entry["sigma2"] = {h: float(rng.lognormal(-9, 0.5)) * (20 if h == noisy else 1) for h in reported}
            seconds = {"train": rng.uniform(0.1, 0.2), "aggregate": 0.001, "evaluate": 0.01}
            if encrypted:
                seconds.update(encrypt=rng.uniform(0.003, 0.005), decrypt=0.002)
            entry["seconds"] = seconds
            entry["bytes"] = {"upload": (400_000 if encrypted else 4_000) * len(reported),
                              "sum": 400_000 if encrypted else 4_000}
            entry["failures"] = ["hospital 3: timeout"] if r == 4 else []
            entry["reported"] = len(reported)
        out.append(entry)
    return out


def _final(rng: np.random.Generator, auc: float) -> Dict[str, float]:
    return {"test_loss": 0.6 + rng.normal(0, 0.01), "test_accuracy": 0.66 + rng.normal(0, 0.01),
            "test_precision": 0.6, "test_recall": 0.55, "test_f1": 0.57 + rng.normal(0, 0.01), "test_auc": auc}


def make_results(seed: int = 0) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "config": {
            "dataset": "colon", "hospitals": 5, "split": "dirichlet", "rounds": ROUNDS, "seed": seed,
            "preset": "compact", "scheduler": {"eta0": 0.05, "alpha": 10.0, "patience": 3, "decay": 0.5},
            "outcome": "recurrence within 5 years", "arms": ["Obs", "Lev", "Lev+5FU"],
            "features": ["age", "sex", "obstruct", "nodes"], "rows": {"train": 540, "validation": 180, "test": 180},
        },
        "methods": {
            ENC: {"history": _history(rng, ROUNDS, True), "final": _final(rng, 0.6812)},
            PLAIN: {"history": _history(rng, ROUNDS, False), "final": _final(rng, 0.6813)},
        },
        "centralized": {"history": _history(rng, 8, False, federated=False), "final": _final(rng, 0.7034)},
        "hospitals_alone": {h: {"final": _final(rng, float(rng.uniform(0.55, 0.65))), "rows": int(rng.integers(60, 160))}
                            for h in HOSPITALS},
        "policy": [
            {"name": "model policy (recommend lowest predicted risk)", "value": 0.6123, "ci_low": 0.5511,
             "ci_high": 0.6734, "n_followed": 70},
            {"name": "everyone: Obs", "value": 0.5234, "ci_low": 0.4412, "ci_high": 0.6056, "n_followed": 60},
            {"name": "everyone: Lev", "value": 0.5311, "ci_low": 0.4501, "ci_high": 0.6121, "n_followed": 58},
            {"name": "everyone: Lev+5FU", "value": 0.6345, "ci_low": 0.5588, "ci_high": 0.7102, "n_followed": 62},
        ],
        "privacy": [
            {"view": "hospital update (seen by a plaintext-FL server)", "target": h, "attack": "loss threshold",
             "auc": float(rng.uniform(0.5, 0.58)), "tpr_at_1pct_fpr": 0.02, "tpr_at_10pct_fpr": 0.12,
             "advantage": 0.08, "members": 120, "nonmembers": 180} for h in HOSPITALS[:2]
        ] + [
            {"view": "global model (seen by every participant)", "target": "all hospitals", "attack": "loss threshold",
             "auc": 0.5312, "tpr_at_1pct_fpr": 0.011, "tpr_at_10pct_fpr": 0.104, "advantage": 0.04, "members": 540,
             "nonmembers": 180},
        ],
        "scheduler_experiment": {
            "noisy_hospital": "hospital 2", "noise": 0.3,
            "adaptive": {"history": _history(rng, ROUNDS, True, noisy="hospital 2"), "final": _final(rng, 0.67)},
            "fixed": {"history": _history(rng, ROUNDS, True), "final": _final(rng, 0.65)},
        },
        "weights_difference": {"max_abs": 2.1e-9, "description": "max |w_encrypted - w_plaintext| after the last round"},
        "timing": {"total_seconds": 95.2},
    }


def _history_lengths(results: Dict[str, Any]) -> int:
    runs = list(results["methods"].values())
    if "centralized" in results:
        runs.append(results["centralized"])
    sched = results.get("scheduler_experiment") or {}
    runs += [sched[k] for k in ("adaptive", "fixed") if k in sched]
    return sum(len(run.get("history", [])) for run in runs)


def _lr_rows(results: Dict[str, Any]) -> int:
    runs = list(results["methods"].values()) + [results["scheduler_experiment"][k] for k in ("adaptive", "fixed")]
    return sum(len(set(e.get("lr", {})) | set(e.get("sigma2", {}))) for run in runs for e in run["history"])


@pytest.fixture(scope="module")
def results() -> Dict[str, Any]:
    return make_results(0)


@pytest.fixture(scope="module")
def report(results: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return write_report(results, tmp_path_factory.mktemp("report") / "nested" / "out")


ALL_FILES = {
    "metrics.csv", "learning_rates.csv", "results.json", "final.csv", "policy.csv", "privacy.csv", "summary.md",
    "validation_auc.png", "validation_loss.png", "learning_rates.png", "cost_per_round.png", "scheduler.png",
    "policy_value.png",
}


def test_every_file_written(report: Dict[str, Path]) -> None:
    assert set(report) == ALL_FILES
    for name, path in report.items():
        assert path.name == name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            data = path.read_bytes()
            assert data.startswith(PNG_SIGNATURE), name
            assert len(data) > 10_000, name  # a real plot, not an empty canvas


def test_metrics_csv(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    table = pd.read_csv(report["metrics.csv"], keep_default_na=False, na_values=[""])
    assert len(table) == _history_lengths(results)
    assert set(table["method"]) == {ENC, PLAIN, "centralized", "scheduler: adaptive", "scheduler: fixed"}
    for column in ("val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc", "eta0",
                   "seconds_train", "seconds_encrypt", "seconds_aggregate", "seconds_decrypt", "seconds_evaluate",
                   "bytes_upload", "bytes_sum", "reported", "failures"):
        assert column in table.columns, column
    enc = table[table["method"] == ENC].set_index("round")
    first = results["methods"][ENC]["history"][0]
    assert enc.loc[1, "val_auc"] == pytest.approx(float(first["val_auc"]))
    assert enc.loc[1, "seconds_encrypt"] == pytest.approx(first["seconds"]["encrypt"])
    assert enc.loc[1, "bytes_upload"] == first["bytes"]["upload"]
    assert enc.loc[4, "failures"] == "hospital 3: timeout"
    assert enc.loc[4, "reported"] == 4
    plain = table[table["method"] == PLAIN]
    assert plain["seconds_encrypt"].isna().all()  # plaintext has no encrypt phase
    central = table[table["method"] == "centralized"]
    assert len(central) == len(results["centralized"]["history"]) and central["bytes_upload"].isna().all()


def test_learning_rates_csv(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    table = pd.read_csv(report["learning_rates.csv"])
    assert list(table.columns) == ["method", "round", "hospital", "lr", "sigma2"]
    assert len(table) == _lr_rows(results)
    row = table[(table["method"] == ENC) & (table["round"] == 2) & (table["hospital"] == "hospital 5")].iloc[0]
    entry = results["methods"][ENC]["history"][1]
    assert row["lr"] == pytest.approx(entry["lr"]["hospital 5"])
    assert row["sigma2"] == pytest.approx(entry["sigma2"]["hospital 5"])


def test_final_csv(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    table = pd.read_csv(report["final.csv"]).set_index("method")
    # methods + centralized + two scheduler runs + each hospital + the mean row
    assert len(table) == len(results["methods"]) + 1 + 2 + len(results["hospitals_alone"]) + 1
    assert table.loc[ENC, "test_auc"] == pytest.approx(0.6812)
    assert table.loc["centralized", "test_auc"] == pytest.approx(0.7034)
    aucs = [h["final"]["test_auc"] for h in results["hospitals_alone"].values()]
    assert table.loc["hospitals alone (mean)", "test_auc"] == pytest.approx(np.mean(aucs))
    assert table.loc["hospital 2 alone", "rows"] == results["hospitals_alone"]["hospital 2"]["rows"]


def test_policy_and_privacy_csv(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    policy = pd.read_csv(report["policy.csv"])
    assert len(policy) == len(results["policy"])
    assert list(policy.columns[:5]) == ["name", "value", "ci_low", "ci_high", "n_followed"]
    assert policy["value"].tolist() == pytest.approx([p["value"] for p in results["policy"]])
    privacy = pd.read_csv(report["privacy.csv"])
    assert len(privacy) == len(results["privacy"])
    assert privacy["auc"].tolist() == pytest.approx([p["auc"] for p in results["privacy"]])


def test_results_json_round_trips(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    loaded = json.loads(report["results.json"].read_text())
    assert loaded == to_jsonable(results)
    assert loaded["weights_difference"]["max_abs"] == 2.1e-9
    assert loaded["methods"][ENC]["history"][0]["val_auc"] == float(results["methods"][ENC]["history"][0]["val_auc"])
    assert loaded["config"]["arms"] == ["Obs", "Lev", "Lev+5FU"]


def test_results_json_nan_is_null(tmp_path: Path) -> None:
    results = make_results(1)
    results["methods"][ENC]["final"]["test_auc"] = float("nan")
    results["methods"][ENC]["history"][0]["val_loss"] = np.float32("nan")
    results["timing"]["total_seconds"] = np.float64(12.5)
    paths = write_report(results, tmp_path)
    loaded = json.loads(paths["results.json"].read_text())
    assert loaded["methods"][ENC]["final"]["test_auc"] is None
    assert loaded["methods"][ENC]["history"][0]["val_loss"] is None
    assert loaded["timing"]["total_seconds"] == 12.5
    assert "n/a" in paths["summary.md"].read_text()


def test_summary_states_the_numbers(report: Dict[str, Path], results: Dict[str, Any]) -> None:
    text = report["summary.md"].read_text()
    for word in ("colon", "recurrence within 5 years", "Lev+5FU", "dirichlet", "compact"):
        assert word in text
    # 3 significant digits would print both as 0.681: a 4th is added so the comparison reads right
    assert "reached a test AUC of 0.6812 vs 0.6813 for plaintext FedAvg on 180 held-out test patients" in text
    assert "Encrypted FL (FHTO) reached" in text
    assert format_number(0.7034) in text
    aucs = [h["final"]["test_auc"] for h in results["hospitals_alone"].values()]
    assert format_number(np.mean(aucs)) in text
    assert "2.1e-09" in text
    for p in results["policy"]:
        assert p["name"] in text
        assert format_number(p["value"]) in text and format_number(p["ci_low"]) in text
    assert "no difference between them has been demonstrated" in text  # all intervals overlap here
    assert "IPW" in text
    for view in {p["view"] for p in results["privacy"]}:
        assert view in text
    assert format_number(0.5312) in text
    assert "Encryption does not lower this risk" in text
    assert "σ_i²" in text and "n_i" in text
    # the scheduler sentence: hospital 2 got the smaller rate; the final losses appear
    assert "gave hospital 2 a smaller learning rate" in text
    last = {run: results["scheduler_experiment"][run]["history"][-1]["val_loss"] for run in ("adaptive", "fixed")}
    digits = 3 if format_number(last["adaptive"]) != format_number(last["fixed"]) else 4
    assert (f"Final validation loss: {format_number(last['adaptive'], digits, True)} adaptive vs "
            f"{format_number(last['fixed'], digits, True)} fixed") in text
    assert "1 hospital update was missing over 12 rounds" in text
    for plot in ("validation_auc.png", "validation_loss.png", "learning_rates.png", "cost_per_round.png",
                 "scheduler.png", "policy_value.png"):
        assert f"({plot})" in text


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


def test_optional_sections_missing(tmp_path: Path) -> None:
    results = make_results(2)
    for key in ("scheduler_experiment", "privacy", "policy", "weights_difference", "timing", "centralized",
                "hospitals_alone"):
        del results[key]
    del results["config"]["preset"]
    paths = write_report(results, tmp_path)
    assert "scheduler.png" not in paths and "policy_value.png" not in paths
    for name in ("metrics.csv", "final.csv", "summary.md", "validation_auc.png", "learning_rates.png",
                 "cost_per_round.png", "privacy.csv", "policy.csv"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    assert len(pd.read_csv(paths["metrics.csv"])) == _history_lengths(results)
    assert len(pd.read_csv(paths["privacy.csv"])) == 0
    text = paths["summary.md"].read_text()
    assert "No privacy audit was run" in text
    assert "## Adaptive learning-rate scheduler" not in text and "## Treatment policies" not in text
    assert "(scheduler.png)" not in text


def test_stale_plot_removed(tmp_path: Path, results: Dict[str, Any]) -> None:
    write_report(results, tmp_path)
    assert (tmp_path / "scheduler.png").exists()
    smaller = copy.deepcopy(results)
    del smaller["scheduler_experiment"]
    write_report(smaller, tmp_path)
    assert not (tmp_path / "scheduler.png").exists()


def test_minimal_results(tmp_path: Path) -> None:
    paths = write_report({"methods": {"only": {"history": [{"round": 1}]}}}, tmp_path)
    assert paths["summary.md"].read_text().startswith("# ")
    assert len(pd.read_csv(paths["metrics.csv"])) == 1


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r.__setitem__("methods", ["not", "a", "dict"]), "methods"),
        (lambda r: r.pop("methods"), "methods"),
        (lambda r: r["methods"][ENC]["history"][3].pop("round"), "round"),
        (lambda r: r["methods"][PLAIN]["history"][0].__setitem__("round", "first"), "round"),
        (lambda r: r["methods"][ENC]["history"][0].__setitem__("val_auc", "high"), "val_auc"),
        (lambda r: r["methods"][ENC].__setitem__("history", {"round": 1}), "history"),
        (lambda r: r["methods"][ENC]["history"][2].__setitem__("lr", [0.1, 0.2]), "lr"),
        (lambda r: r["methods"][ENC]["history"][2].__setitem__("seconds", 1.0), "seconds"),
        (lambda r: r["centralized"].__setitem__("final", [0.7]), "final"),
        (lambda r: r.__setitem__("policy", {"name": "x"}), "policy"),
        (lambda r: r["policy"][1].pop("name"), "name"),
        (lambda r: r["policy"][0].__setitem__("value", "big"), "value"),
        (lambda r: r["privacy"][0].pop("view"), "view"),
        (lambda r: r["hospitals_alone"].__setitem__("hospital 1", 0.6), "hospital 1"),
        (lambda r: r["scheduler_experiment"].__setitem__("adaptive", []), "adaptive"),
        (lambda r: r.__setitem__("config", "colon"), "config"),
        (lambda r: r["weights_difference"].__setitem__("max_abs", "tiny"), "max_abs"),
    ],
)
def test_malformed_results_raise(tmp_path: Path, results: Dict[str, Any], mutate, key: str) -> None:
    bad = copy.deepcopy(results)
    mutate(bad)
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=key):
        write_report(bad, out)
    assert not out.exists()  # nothing written for malformed input


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="results"):
        write_report([1, 2, 3], tmp_path)  # type: ignore[arg-type]
