"""The saved model and decision support for new patients (fhto recommend)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from fhto_native.cli import main
from fhto_native.errors import DataError, FormatError, ParameterError
from fhto_native.study.cohort import prepare
from fhto_native.study.config import StudyConfig
from fhto_native.study.models import predict_risk
from fhto_native.study.recommend import FeatureSpec, SavedModel, recommend
from fhto_native.study.results import MethodKind
from fhto_native.study.run import run

COLUMNS = ["sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]
CONFIG = dict(rounds=6, audit=False, scheduler_experiment=False, privacy_frontier=False, n_boot=50, model_replicates=4)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    config = StudyConfig(out=str(out), compare=False, **CONFIG)
    results = run(config, say=lambda line: None)
    cohort = prepare(config, lambda line: None)
    return results, out, cohort


def _patients(cohort, n=20) -> pd.DataFrame:
    X = cohort.test.X[:n]
    return pd.DataFrame({c: [str(int(v)) if float(v).is_integer() else str(v) for v in X[:, j]] for j, c in enumerate(COLUMNS)})


def test_the_saved_model_is_the_evaluated_model(saved):
    results, out, cohort = saved
    model = SavedModel.load(out / "model.json")
    enc = results.method(MethodKind.ENCRYPTED)
    assert cohort.score(model.weights, cohort.test)["auc"] == pytest.approx(enc.test.auc, abs=1e-12)
    expected = predict_risk(cohort.model(model.weights), cohort.test.X, len(cohort.arms), cohort.mean, cohort.std)
    assert np.allclose(model.risks(cohort.test.X), expected, atol=1e-12)
    body = json.loads((out / "model.json").read_text())
    assert body["format"] == "fhto.treatment-model" and body["version"] == 1
    assert body["arms"] == ["Obs", "Lev", "Lev+5FU"] and body["control_arm"] == "Obs"
    assert body["training"]["differential_privacy"] is None and body["interval"]["replicates"] == 4
    kinds = {f["name"]: f["kind"] for f in body["features"]}
    assert kinds["age"] == "numeric" and kinds["differ"] == "code" and kinds["sex"] == "code"


def test_recommend_round_trip_equals_the_in_memory_model(saved, tmp_path):
    _, out, cohort = saved
    model = SavedModel.load(out)
    copy = model.save(tmp_path / "copy.json")
    again = SavedModel.load(copy)
    table = recommend(again, _patients(cohort))
    X = cohort.test.X[:20]
    risk = model.risks(X)
    for k, arm in enumerate(model.arms):
        assert np.allclose(table[f"p_{arm}"], risk[:, k], atol=1e-12)
        assert (table[f"p_{arm}_low"] <= table[f"p_{arm}"]).all() and (table[f"p_{arm}"] <= table[f"p_{arm}_high"]).all()
    best = risk.argmin(axis=1)
    assert list(table["recommended"]) == [model.arms[k] for k in best]
    assert np.allclose(table["risk_difference"], risk[np.arange(20), best] - risk[:, 0])
    assert (table["risk_difference"] <= 0).all() and not table["out_of_range"].any()
    lev = recommend(model, _patients(cohort), reference_arm="Lev")
    assert np.allclose(lev["risk_difference"], risk[np.arange(20), best] - risk[:, 1])


def test_the_bar_command_line(saved, tmp_path, capsys):
    _, out, cohort = saved
    patients = tmp_path / "P.csv"
    _patients(cohort).to_csv(patients, index=False)
    result = tmp_path / "R.csv"
    assert main(["recommend", str(out), "--patients", str(patients), "--out", str(result), "--plot",
                 str(tmp_path / "R.png")]) == 0
    table = pd.read_csv(result)
    assert len(table) == 20 and set(table["recommended"]) <= {"Obs", "Lev", "Lev+5FU"}
    assert (tmp_path / "R.png").stat().st_size > 0
    assert "not a prescription" in capsys.readouterr().out
    missing = tmp_path / "missing.csv"
    _patients(cohort).drop(columns=["node4"]).to_csv(missing, index=False)
    assert main(["recommend", str(out), "--patients", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "missing column 'node4'" in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f.assign(differ=["7"] + list(f["differ"][1:])), "row 1, column 'differ': unknown category '7'"),
        (lambda f: f.assign(age=list(f["age"][:2]) + ["old"] + list(f["age"][3:])), "row 3, column 'age': 'old' is not a number"),
        (lambda f: f.assign(nodes=list(f["nodes"][:4]) + [""] + list(f["nodes"][5:])), "row 5, column 'nodes': missing value"),
        (lambda f: f.assign(age=["inf"] + list(f["age"][1:])), "row 1, column 'age': 'inf' is not a finite number"),
        (lambda f: f.iloc[:0], "no patients"),
    ],
)
def test_bad_patients_are_refused_naming_row_and_column(saved, tmp_path, capsys, edit, message):
    _, out, cohort = saved
    path = tmp_path / "bad.csv"
    edit(_patients(cohort)).to_csv(path, index=False)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        recommend(out, path)
    assert main(["recommend", str(out), "--patients", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_out_of_range_patients_are_flagged_and_a_bad_reference_refused(saved):
    _, out, cohort = saved
    frame = _patients(cohort, 3)
    frame.loc[1, "age"] = "150"
    table = recommend(out, frame)
    assert list(table["out_of_range"]) == [False, True, False] and table["out_of_range_columns"][1] == "age"
    with pytest.raises(ParameterError, match="reference arm 'Surgery' is not one of"):
        recommend(out, frame, reference_arm="Surgery")


def test_a_changed_or_foreign_model_file_is_refused(saved, tmp_path, capsys):
    _, out, _ = saved
    body = json.loads((out / "model.json").read_text())
    tampered = dict(body, weights=[w + 1e-9 for w in body["weights"]])
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    with pytest.raises(FormatError, match="corrupted"):
        SavedModel.load(tmp_path / "t.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(body, version=2)))
    with pytest.raises(FormatError, match="version 2 model; this build reads version 1"):
        SavedModel.load(tmp_path / "v.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(FormatError, match="not a saved model"):
        SavedModel.load(tmp_path / "x.json")
    (tmp_path / "o.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(FormatError, match="not a saved FHTO treatment model"):
        SavedModel.load(tmp_path / "o.json")
    assert main(["recommend", str(tmp_path), "--patients", "x.csv"]) == 2
    assert "has no model.json" in capsys.readouterr().err


def test_text_labels_map_to_their_codes():
    spec = FeatureSpec("tgrade", "label", 2.0, 0.5, 1.0, 3.0, labels={"I": 1.0, "II": 2.0, "III": 3.0})
    model = SavedModel(weights=np.zeros((1 + 2) * 4 + 4 + 4 + 1), hidden=4, features=[spec], arms=("a", "b"), control_arm="a",
                       outcome="bad", good_outcome="good", training={}, interval={})
    table = recommend(model, pd.DataFrame({"tgrade": ["II", "III"]}))
    assert len(table) == 2 and np.allclose(table["p_a"], 0.5)
    with pytest.raises(DataError, match="row 1, column 'tgrade': unknown category 'IV'"):
        recommend(model, pd.DataFrame({"tgrade": ["IV"]}))


def test_a_dp_model_takes_its_intervals_from_the_mechanisms_noise(tmp_path):
    out = tmp_path / "dp"
    run(StudyConfig(out=str(out), dp_epsilon=2.0, compare=False, **CONFIG), say=lambda line: None)
    model = SavedModel.load(out)
    assert model.replicates is None and model.weight_noise_std > 0
    assert model.training["differential_privacy"]["epsilon_spent"] <= 2.0
    assert model.interval["method"] == "differential-privacy noise"
    cohort_free = pd.DataFrame({c: ["1"] * 3 for c in COLUMNS}).assign(age=["60", "61", "62"], nodes=["2", "3", "4"])
    table = recommend(model, cohort_free)
    assert math.isfinite(table["p_Obs_high"].max()) and (table["p_Obs_high"] > table["p_Obs_low"]).all()
