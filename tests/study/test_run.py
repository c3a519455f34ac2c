"""The main job end to end on the real bundled trials and on hospital files (small settings; the
full default is `fhto run`)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fhto_native.cli import main
from fhto_native.errors import DataError, ParameterError
from fhto_native.study.config import StudyConfig
from fhto_native.study.data import load_colon
from fhto_native.study.policy import OBSERVED
from fhto_native.study.results import MethodKind
from fhto_native.study.run import run

QUIET = dict(say=lambda line: None)
FAST = dict(n_boot=100, reference_models=2, audit_permutations=50, scheduler_seeds=2, label_noise=(0.0, 0.4))


@pytest.fixture(scope="module")
def colon_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    lines = []
    results = run(StudyConfig(rounds=8, out=str(out), **FAST), say=lines.append)
    return results, out, lines


def test_every_method_shares_the_protocol(colon_run):
    results, out, lines = colon_run
    kinds = [m.kind for m in results.methods]
    assert kinds[:3] == [MethodKind.ENCRYPTED, MethodKind.PLAINTEXT, MethodKind.CENTRALIZED]
    assert kinds.count(MethodKind.ALONE) == 5
    for m in results.methods:
        assert 1 <= m.selected_round <= m.rounds_run <= 8
        # The reported model is the selected round's: its validation loss is the best of the run.
        losses = [r.validation["loss"] for r in m.history]
        assert m.selected_round == int(np.argmin(losses)) + 1, m.label
        assert m.validation.loss == pytest.approx(min(losses), rel=1e-9), m.label
        assert 0.0 < m.test.threshold < 1.0
    assert any(line.startswith("  HE round   1/8") for line in lines)
    # With differential privacy off nothing of it runs: validation-based selection, no DP record.
    assert results.differential_privacy is None and not any("differential privacy" in line for line in lines)
    assert json.loads((out / "results.json").read_text())["differential_privacy"] is None


def test_encryption_changes_the_weights_only_by_noise_and_the_metrics_not_at_all(colon_run):
    results = colon_run[0]
    assert 0 < results.weights_difference < 1e-6
    enc, plain = results.method(MethodKind.ENCRYPTED), results.method(MethodKind.PLAINTEXT)
    assert enc.selected_round == plain.selected_round
    for name in ("auc", "accuracy", "precision", "recall", "f1"):  # ranks and counts: exactly the same
        assert getattr(enc.test, name) == getattr(plain.test, name), name
    assert enc.test.loss == pytest.approx(plain.test.loss, abs=1e-9)
    assert enc.test.threshold == pytest.approx(plain.test.threshold, abs=1e-9)


def test_encrypted_rounds_cost_bytes_and_time(colon_run):
    record = colon_run[0].method(MethodKind.ENCRYPTED).history[-1]
    assert record.bytes["upload"] > 0 and record.bytes["sum"] > 0
    assert record.seconds["encrypt"] > 0 and record.seconds["aggregate"] > 0 and record.seconds["decrypt"] > 0


def test_the_report_folder(colon_run):
    results, out, _ = colon_run
    for name in ("summary.md", "metrics.csv", "final.csv", "results.json", "policy.csv", "privacy.csv",
                 "validation_auc.png", "validation_loss.png", "learning_rates.png", "cost_per_round.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    (enc,) = [m for m in saved["methods"] if m["kind"] == "encrypted"]
    assert enc["history"][-1]["round"] == results.method(MethodKind.ENCRYPTED).rounds_run
    summary = (out / "summary.md").read_text()
    assert "5 simulated hospitals" in summary and "no recurrence within 5 years" in summary


def test_scheduler_experiment_has_three_arms_over_seeds_and_noise(colon_run):
    sched = colon_run[0].scheduler
    assert sched.arms == ["adaptive", "decay only", "fixed"]
    assert len(sched.runs) == 2 * 2 * 3 and len(sched.seeds) == 2
    for arm in sched.arms:
        for noise in (0.0, 0.4):
            s = sched.summary_for(arm, noise)
            runs = [r.test_auc for r in sched.runs if r.arm == arm and r.noise == noise]
            assert s.test_auc_mean == pytest.approx(np.mean(runs)) and s.test_auc_sd == pytest.approx(np.std(runs, ddof=1))
    # decay only and fixed differ in one thing: with decay off nothing changes eta_0.
    fixed = [r for r in sched.runs if r.arm == "fixed"]
    assert all(r.noisy_lr_ratio == pytest.approx(1.0) for r in fixed)
    assert "per-hospital rate" in sched.conclusion


def test_audit_has_a_chance_reference(colon_run):
    audit = colon_run[0].audit
    views = {row.view for row in audit.rows}
    assert views == {"update", "global"}
    for row in audit.rows:
        r = row.result
        assert 0 < r.p_auc <= 1 and r.auc_ci[0] <= r.auc <= r.auc_ci[1]


def test_colon_single_arm_policies_agree_with_kaplan_meier(colon_run):
    checks = colon_run[0].kaplan_meier
    assert {c.policy for c in checks} == {"everyone: Obs", "everyone: Lev", "everyone: Lev+5FU", OBSERVED}
    for c in checks:
        assert c.inside, c


def test_same_seed_same_bytes_other_seed_other_numbers(tmp_path):
    config = dict(rounds=5, audit=False, scheduler_experiment=False, n_boot=100, frontier_epsilons=(2.0,),
                  frontier_seeds=1, reference_models=2, audit_permutations=30, model_replicates=2)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run(StudyConfig(seed=seed, out=str(tmp_path / name), **config), **QUIET)
    for table in ("final.csv", "policy.csv", "metrics.csv", "privacy_frontier.csv", "model.json"):
        assert (tmp_path / "a" / table).read_bytes() == (tmp_path / "b" / table).read_bytes(), table
    assert (tmp_path / "a" / "final.csv").read_bytes() != (tmp_path / "c" / "final.csv").read_bytes()


def test_threshold_keys_match_plaintext_fedavg_and_are_reproducible(tmp_path):
    """Multiparty keys (3 of 5 hospitals decrypt each sum): the same model as plaintext FedAvg, the
    key model in results.json, and the same numbers for the same seed."""
    config = dict(rounds=4, hospitals=5, keys="threshold", key_threshold=3, audit=False,
                  scheduler_experiment=False, n_boot=100)
    results = [run(StudyConfig(seed=0, out=str(tmp_path / name), **config), **QUIET) for name in ("a", "b")]
    first = results[0]
    assert first.weights_difference is not None and first.weights_difference <= 1e-4
    aucs = {m.key: m.test.auc for m in first.methods}
    assert abs(aucs["encrypted"] - aucs["plaintext"]) <= 2e-3
    recorded = json.loads((tmp_path / "a" / "results.json").read_text())
    assert recorded["key_model"]["kind"] == "threshold" and recorded["key_model"]["threshold"] == 3
    assert recorded["config"]["preset"] == "threshold" and recorded["key_model"]["decryptions"] >= 4
    for table in ("final.csv", "policy.csv", "metrics.csv"):
        assert (tmp_path / "a" / table).read_bytes() == (tmp_path / "b" / table).read_bytes(), table


def test_gbsg2_observed_policy_agrees_with_kaplan_meier_and_propensities_are_estimated(tmp_path):
    results = run(StudyConfig(dataset="gbsg2", seed=1, rounds=6, audit=False, scheduler_experiment=False,
                              n_boot=300, out=str(tmp_path)), **QUIET)
    (observed,) = [c for c in results.kaplan_meier if c.policy == OBSERVED]
    assert observed.inside and abs(observed.kaplan_meier - 0.492) < 0.0015
    assert "estimated" in results.policy.propensity
    assert results.data.arms == ["no hormonal therapy", "hormonal therapy"]


def _write_sites(tmp_path, parts, **columns):
    """One CSV per part of the colon trial, with extra columns from callables of the part."""
    paths = []
    for i, part in enumerate(parts):
        df = pd.DataFrame(part.X, columns=list(part.feature_names))
        df["arm"] = [part.arms[t] for t in part.treatment]
        df["recurred"] = part.y.astype(int)
        for name, make in columns.items():
            df[name] = make(part, i)
        path = tmp_path / f"site{i}.csv"
        df.to_csv(path, index=False)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def colon_parts():
    data = load_colon()
    known = data.subset(data.weight > 0)
    return known, [known.subset(idx) for idx in np.array_split(np.random.default_rng(0).permutation(len(known)), 3)]


def test_bring_your_own_files_are_labelled_from_the_data(tmp_path, colon_parts):
    data, parts = colon_parts
    files = _write_sites(tmp_path, parts, platelets=lambda p, i: 250_000 + 40_000 * np.sin(np.arange(len(p))))
    out = tmp_path / "out"
    code = main(["run", "--csv", *files, "--features", ",".join([*data.feature_names, "platelets"]),
                 "--treatment", "arm", "--outcome", "recurred", "--outcome-label", "recurrence",
                 "--rounds", "3", "--no-compare", "--no-audit", "--no-scheduler-experiment", "--bootstrap", "50",
                 "--out", str(out), "--quiet"])
    assert code == 0
    summary = (out / "summary.md").read_text()
    assert "one file per hospital (3 files)" in summary and "dirichlet" not in summary.lower()
    saved = json.loads((out / "results.json").read_text())
    assert [h["source"] for h in saved["data"]["hospitals"]] == files
    assert saved["data"]["outcome_label"] == "recurrence"


def test_one_file_split_by_a_column_is_honoured(tmp_path, colon_parts):
    data, _ = colon_parts
    (path,) = _write_sites(tmp_path, [data], institution=lambda p, i: np.arange(len(p)) % 4)
    out = tmp_path / "out"
    code = main(["run", "--csv", path, "--features", ",".join(data.feature_names), "--treatment", "arm",
                 "--outcome", "recurred", "--split", "column", "--split-column", "institution", "--rounds", "2",
                 "--no-compare", "--no-audit", "--no-scheduler-experiment", "--bootstrap", "50", "--out", str(out),
                 "--quiet"])
    assert code == 0
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["data"]["hospitals"]) == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--split", "column", "--split-column", "institution"], "each file is a hospital"),
        (["--hospitals", "7"], "does not match"),
    ],
)
def test_hospital_options_that_do_not_apply_to_files_are_refused(tmp_path, colon_parts, capsys, args, message):
    data, parts = colon_parts
    files = _write_sites(tmp_path, parts)
    code = main(["run", "--csv", *files, "--features", ",".join(data.feature_names), "--treatment", "arm",
                 "--outcome", "recurred", "--out", str(tmp_path / "out"), "--quiet", *args])
    assert code == 2 and message in capsys.readouterr().err


def test_bad_csv_is_a_clear_error_naming_file_and_column(tmp_path, capsys):
    path = tmp_path / "site.csv"
    pd.DataFrame({"age": [50, 60, "old"], "arm": ["A", "B", "A"], "recurred": [0, 1, 0]}).to_csv(path, index=False)
    other = tmp_path / "other.csv"
    pd.DataFrame({"age": [50, 60, 70], "arm": ["A", "B", "A"], "recurred": [0, 1, 0]}).to_csv(other, index=False)
    code = main(["run", "--csv", str(path), str(other), "--features", "age", "--treatment", "arm",
                 "--outcome", "recurred", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "site.csv" in err and "age" in err


def test_resume_refuses_different_options(tmp_path):
    quick = dict(rounds=2, compare=False, audit=False, scheduler_experiment=False, n_boot=20, out=str(tmp_path))
    run(StudyConfig(**quick), **QUIET)
    with pytest.raises(ParameterError, match="hospitals: None then, 3 now"):
        run(StudyConfig(**{**quick, "hospitals": 3, "resume": True}), **QUIET)
    more = run(StudyConfig(**{**quick, "rounds": 3, "resume": True}), **QUIET)  # more rounds is fine
    assert [r.round for r in more.method(MethodKind.ENCRYPTED).history] == [1, 2, 3]


def test_degenerate_study_is_refused(tmp_path, colon_parts, capsys):
    data, parts = colon_parts
    files = _write_sites(tmp_path, parts)
    for f in files:  # no patient ever has the outcome
        df = pd.read_csv(f)
        df["recurred"] = 0
        df.to_csv(f, index=False)
    code = main(["run", "--csv", *files, "--features", ",".join(data.feature_names), "--treatment", "arm",
                 "--outcome", "recurred", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2 and "event" in capsys.readouterr().err.lower()
    assert DataError is not None


def test_resuming_with_fewer_rounds_than_the_checkpoint_is_refused(tmp_path):
    config = dict(audit=False, scheduler_experiment=False, compare=False, n_boot=20, out=str(tmp_path / "r"))
    run(StudyConfig(rounds=2, **config), **QUIET)
    with pytest.raises(ParameterError, match="holds 2 rounds, more than --rounds 1"):
        run(StudyConfig(rounds=1, resume=True, **config), **QUIET)
    again = run(StudyConfig(rounds=3, resume=True, **config), **QUIET)  # more rounds: continues
    assert {m.key: m.rounds_run for m in again.methods}["encrypted"] == 3
