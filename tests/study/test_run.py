"""The main job end to end, on small settings (the full default is `fhto run`)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fhto_native.cli import main
from fhto_native.errors import DataError
from fhto_native.fl.data import load_colon
from fhto_native.fl.run import RunConfig, run


@pytest.fixture(scope="module")
def colon_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    lines = []
    results = run(RunConfig(rounds=4, n_boot=50, reference_models=2, out=str(out)), say=lines.append)
    return results, out, lines


def test_every_comparison_and_section_is_there(colon_run):
    results, out, lines = colon_run
    assert set(results["methods"]) == {"encrypted FL (FHTO)", "plaintext FedAvg"}
    for entry in (*results["methods"].values(), results["centralized"], *results["hospitals_alone"].values()):
        assert 0.0 <= entry["final"]["test_auc"] <= 1.0
    assert len(results["hospitals_alone"]) == 5
    assert [r["round"] for r in results["methods"]["encrypted FL (FHTO)"]["history"]] == [1, 2, 3, 4]
    assert {row["view"] for row in results["privacy"]} == {
        "hospital update (seen by a plaintext-FL server; removed by HE)",
        "global model (seen by every participant, with or without HE)",
    }
    assert {row["attack"] for row in results["privacy"]} == {"loss threshold", "reference models (calibrated loss)"}
    names = [row["name"] for row in results["policy"]]
    assert names[0].startswith("model policy") and "everyone: Lev+5FU" in names
    assert any(line.startswith("  HE round   4/4") for line in lines)


def test_encryption_changes_the_weights_only_by_noise(colon_run):
    results, _, _ = colon_run
    assert 0 < results["weights_difference"]["max_abs"] < 1e-6


def test_encrypted_rounds_cost_bytes_and_time(colon_run):
    results, _, _ = colon_run
    record = results["methods"]["encrypted FL (FHTO)"]["history"][-1]
    assert record["bytes"]["upload"] > 0 and record["bytes"]["sum"] > 0
    assert record["seconds"]["encrypt"] > 0 and record["seconds"]["aggregate"] > 0 and record["seconds"]["decrypt"] > 0


def test_the_report_folder(colon_run):
    _, out, _ = colon_run
    for name in ("summary.md", "metrics.csv", "results.json", "policy.csv", "privacy.csv", "validation_auc.png",
                 "validation_loss.png", "learning_rates.png", "cost_per_round.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    assert saved["methods"]["encrypted FL (FHTO)"]["history"][-1]["round"] == 4


def test_scheduler_experiment_is_measured(colon_run):
    sched = colon_run[0]["scheduler_experiment"]
    assert sched["sigma2_noisy_over_clean"] > 0 and sched["lr_noisy_over_clean"] > 0
    assert {"adaptive", "fixed", "clean, adaptive"} <= set(sched)


def test_gbsg2_runs(tmp_path):
    results = run(RunConfig(dataset="gbsg2", rounds=2, compare=False, audit=False, scheduler_experiment=False,
                            n_boot=20, out=str(tmp_path)), say=lambda line: None)
    assert results["config"]["arms"] == ["no hormonal therapy", "hormonal therapy"]


def test_bring_your_own_csv_files(tmp_path):
    data = load_colon()
    frames = []
    for i, idx in enumerate(np.array_split(np.random.default_rng(0).permutation(len(data)), 3)):
        part = data.subset(idx)
        df = pd.DataFrame(part.X, columns=list(part.feature_names))
        df["arm"] = [part.arms[t] for t in part.treatment]
        df["recurred"] = part.y.astype(int)
        path = tmp_path / f"site{i}.csv"
        df.to_csv(path, index=False)
        frames.append(str(path))
    code = main(["run", "--csv", *frames, "--features", ",".join(data.feature_names), "--treatment", "arm",
                 "--outcome", "recurred", "--rounds", "2", "--no-compare", "--no-audit", "--no-scheduler-experiment",
                 "--bootstrap", "20", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["config"]["rows"]["hospital 3"] > 0


def test_bad_csv_is_a_clear_error_naming_file_and_column(tmp_path, capsys):
    path = tmp_path / "site.csv"
    pd.DataFrame({"age": [50, 60, "old"], "arm": ["A", "B", "A"], "recurred": [0, 1, 0]}).to_csv(path, index=False)
    code = main(["run", "--csv", str(path), "--features", "age", "--treatment", "arm", "--outcome", "recurred",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "site.csv" in err and "age" in err


def test_resume_refuses_different_options(tmp_path):
    from fhto_native.errors import ParameterError

    quick = dict(rounds=2, compare=False, audit=False, scheduler_experiment=False, n_boot=20, out=str(tmp_path))
    run(RunConfig(**quick), say=lambda line: None)
    with pytest.raises(ParameterError, match="hospitals: 5 then, 3 now"):
        run(RunConfig(**{**quick, "hospitals": 3, "resume": True}), say=lambda line: None)
    more = run(RunConfig(**{**quick, "rounds": 3, "resume": True}), say=lambda line: None)  # more rounds is fine
    assert [r["round"] for r in more["methods"]["encrypted FL (FHTO)"]["history"]] == [1, 2, 3]
