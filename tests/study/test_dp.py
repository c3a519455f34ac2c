"""Differential privacy of the federated methods: the accountant, clipping, the shared noise, the
study's DP mode and the privacy-utility frontier."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from fhto_native.cli import main
from fhto_native.errors import ParameterError
from fhto_native.study import dp
from fhto_native.study.config import StudyConfig
from fhto_native.study.models import TreatmentResponseModel
from fhto_native.study.results import MethodKind
from fhto_native.study.run import run

QUIET = dict(say=lambda line: None)
SMALL = dict(rounds=5, audit=False, scheduler_experiment=False, n_boot=50, reference_models=2,
             audit_permutations=30, frontier_epsilons=(math.inf, 2.0), frontier_seeds=1, model_replicates=3)


# -- the accountant ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma, rate, steps", [(1.1, 1.0, 20), (9.6484375, 1.0, 20), (2.0, 0.05, 300)])
def test_the_spent_epsilon_is_the_librarys(sigma, rate, steps):
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    expected, _ = get_privacy_spent(orders=orders, rdp=compute_rdp(q=rate, noise_multiplier=sigma, steps=steps, orders=orders),
                                    delta=1e-5)
    assert dp.spent_epsilon(sigma, 1e-5, steps, rate) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("epsilon", [8.0, 2.0, 1.0])
def test_the_calibrated_noise_spends_at_most_the_target_and_nearly_all_of_it(epsilon):
    sigma = dp.noise_multiplier(epsilon, 1e-5, 20)
    spent = dp.spent_epsilon(sigma, 1e-5, 20)
    assert epsilon * 0.97 <= spent <= epsilon
    assert dp.noise_multiplier(math.inf, 1e-5, 20) == 0.0 and dp.spent_epsilon(0.0, 1e-5, 20) == math.inf


# -- clipping and the noise shares --------------------------------------------------------------------
def _per_example_gradients(model, x, y, w):
    rows = []
    for i in range(x.shape[0]):
        model.zero_grad()
        logit = model(x[i:i + 1]).reshape(())
        loss = w[i] * torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.tensor(y[i]))
        loss.backward()
        rows.append(torch.nn.utils.parameters_to_vector([p.grad for p in model.parameters()]).detach().numpy().copy())
    return np.array(rows)


def test_clipping_bounds_each_patients_influence():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = TreatmentResponseModel(6, 3)
    x = torch.from_numpy(rng.normal(0, 3, (40, 9)))
    y = (rng.random(40) < 0.5).astype(np.float64)
    w = rng.uniform(0.5, 4.0, 40)
    clip = 0.05
    g = dp.clipped_gradient_sum(model, x, y, w, clip)
    raw = _per_example_gradients(model, x, y, w)
    assert np.linalg.norm(raw, axis=1).max() > 5 * clip  # the clip binds
    manual = sum(r * min(1.0, clip / np.linalg.norm(r)) for r in raw)
    assert np.allclose(g, manual, atol=1e-12)
    for i in range(40):  # removing any one patient moves the sum by at most the clip
        keep = np.arange(40) != i
        without = dp.clipped_gradient_sum(model, x[torch.from_numpy(keep)], y[keep], w[keep], clip)
        assert np.linalg.norm(g - without) <= clip * (1 + 1e-12)


def test_the_shared_noise_carries_the_guarantee_after_the_colluders_leave():
    plan = dp.DPPlan.calibrate(epsilon=2.0, delta=1e-5, clip=0.5, rounds=20, hospitals=5, min_contributors=5,
                               colluders=1, lr=1.0)
    # Honest shares after one colluder subtracts its own: variance exactly (sigma C)^2.
    assert (5 - 1) * plan.hospital_noise_std ** 2 == pytest.approx((plan.sigma * plan.clip) ** 2)
    assert plan.describe()["epsilon_spent"] <= 2.0
    with pytest.raises(ParameterError, match="colluders"):
        dp.DPPlan.calibrate(epsilon=2.0, delta=1e-5, clip=1, rounds=20, hospitals=3, min_contributors=3, colluders=3, lr=1)
    with pytest.raises(ParameterError, match="delta"):
        dp.DPPlan.calibrate(epsilon=2.0, delta=0.0, clip=1, rounds=20, hospitals=3, min_contributors=3, colluders=1, lr=1)


def test_dp_options_are_checked():
    with pytest.raises(ParameterError, match="--dp-delta applies with --dp-epsilon"):
        StudyConfig(dp_delta=1e-6)
    with pytest.raises(ParameterError, match="--dp-epsilon must be a positive"):
        StudyConfig(dp_epsilon=0.0)
    with pytest.raises(ParameterError, match="--dp-clip"):
        StudyConfig(dp_epsilon=1.0, dp_clip=-1.0)
    assert StudyConfig().dp_settings() == {}
    assert StudyConfig(dp_epsilon=4.0).dp_settings()["delta"] == StudyConfig.DP_DELTA


# -- the study in DP mode --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    lines = []
    results = run(StudyConfig(dp_epsilon=2.0, out=str(out), compare=False, **SMALL), say=lines.append)
    return results, out, lines


def test_a_dp_run_records_the_epsilon_it_spent(dp_run):
    results, out, lines = dp_run
    saved = json.loads((out / "results.json").read_text())
    privacy = saved["differential_privacy"]
    assert 1.9 <= privacy["epsilon_spent"] <= 2.0 and privacy["epsilon_target"] == 2.0
    assert privacy["rounds"] == 5 and privacy["colluders_tolerated"] == 1
    enc = results.method(MethodKind.ENCRYPTED)
    assert enc.selected_round == enc.rounds_run == 5  # the last round, no early stopping
    assert any("epsilon spent" in line for line in lines)
    assert "## Differential privacy" in (out / "summary.md").read_text()


def test_the_encrypted_dp_run_equals_its_plaintext_twin(tmp_path):
    results = run(StudyConfig(dp_epsilon=4.0, out=str(tmp_path), compare=True, **{**SMALL, "privacy_frontier": False,
                                                                                    "model_replicates": 0}), **QUIET)
    assert results.weights_difference is not None and results.weights_difference < 1e-5


def test_dp_is_refused_over_flower_and_with_too_many_colluders(tmp_path, capsys):
    assert main(["flower", "--local", "2", "--dp-epsilon", "2", "--rounds", "1", "--out", str(tmp_path)]) == 2
    assert "in process only" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="colluders"):
        run(StudyConfig(dp_epsilon=2.0, dp_colluders=5, out=str(tmp_path / "c"), **SMALL), **QUIET)


def test_the_frontier_table_and_plot(dp_run):
    results, out, _ = dp_run
    frontier = results.privacy_frontier
    assert [s.epsilon for s in frontier.summary] == [math.inf, 2.0]
    assert frontier.summary[0].epsilon_spent == math.inf and frontier.summary[1].epsilon_spent <= 2.0
    for p in frontier.points:
        assert p.mia_auc_low <= p.mia_auc <= p.mia_auc_high and p.policy_low <= p.policy_value <= p.policy_high
        assert p.mia_tpr_low <= p.mia_tpr_at_1pct_fpr <= p.mia_tpr_high
    for name in ("privacy_frontier.csv", "privacy_frontier_summary.csv", "privacy_frontier.png"):
        assert (out / name).stat().st_size > 0
    assert "## Privacy-utility frontier" in (out / "summary.md").read_text()
