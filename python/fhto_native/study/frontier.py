"""The privacy-utility frontier: what differential privacy costs the model and what it buys
against membership inference, measured.

For every epsilon of ``frontier_epsilons`` (inf: the same mechanism with clipping and no noise)
and ``frontier_seeds`` seeds, the federated model is trained with the study's DP mechanism
(:mod:`.dp`; same rounds, clip, step and delta as ``--dp-*`` or their defaults) and scored:
its test AUC, the value of its treatment policy on the test set (doubly robust, with its bootstrap
interval), and the reference-model membership-inference attack on it as a released global model
(AUC and TPR at 1% FPR with bootstrap intervals, and the label-permutation chance reference). The
runs aggregate in plaintext: the encrypted sum gives the same weights to within the CKKS error
(``weights_difference`` of the main run), and the frontier measures differential privacy only.
Only epsilon changes between the rows; each seed changes the initialization and the noise.
"""
from __future__ import annotations

from typing import Callable, List

import numpy as np

from .audit import GLOBAL, MembershipAuditor, known
from .cohort import Cohort, concat
from .dp import DPPlan
from .hospital import derived_seed
from .models import predict_risk
from .policy import MODEL_POLICY, policy_value_table
from .results import FrontierPoint, FrontierSummary, MethodKind, PrivacyFrontier
from .training import train_method

__all__ = ["run_privacy_frontier"]

Printer = Callable[[str], None]


def run_privacy_frontier(cohort: Cohort, say: Printer) -> PrivacyFrontier:
    config = cohort.config
    settings = {"delta": config.DP_DELTA, "clip": config.DP_CLIP, "colluders": config.DP_COLLUDERS,
                "lr": config.DP_LR, **config.dp_settings()}
    hospitals = len(cohort.hospitals)
    members = known(concat(cohort.hospitals, "every hospital's training rows"))
    auditor = MembershipAuditor(cohort, lambda line: None)
    test = cohort.test
    randomized = bool(cohort.summary.randomized)
    points: List[FrontierPoint] = []
    say(f"privacy-utility frontier: epsilon in {', '.join(f'{e:g}' for e in config.frontier_epsilons)}, "
        f"{config.frontier_seeds} seeds each, {config.rounds} rounds")
    for epsilon in config.frontier_epsilons:
        plan = DPPlan.calibrate(
            epsilon=epsilon, delta=settings["delta"], clip=settings["clip"], rounds=config.rounds, hospitals=hospitals,
            min_contributors=min(config.min_hospitals or hospitals, hospitals), colluders=settings["colluders"],
            lr=settings["lr"],
        )
        for s in range(config.frontier_seeds):
            seed = derived_seed("frontier", config.seed, s) % 2**31
            trained = train_method(
                cohort, key=f"frontier_{s}", kind=MethodKind.PLAINTEXT, label=f"DP-FedSGD epsilon={epsilon:g}",
                description="differentially private federated training (privacy-utility frontier)",
                parties=dict(zip(cohort.names, cohort.hospitals)), scheduler=config.scheduler(), seed=seed, dp=plan,
            )
            risk = predict_risk(cohort.model(trained.weights), test.X, len(cohort.arms), cohort.mean, cohort.std)
            policy = policy_value_table(
                test.y, test.treatment, risk, cohort.arms, weight=test.weight, time=test.time, event=test.event,
                horizon=test.horizon, X=test.X, propensity="design" if randomized else "estimated",
                n_boot=config.n_boot, seed=seed, good_outcome=cohort.summary.good_outcome_label,
            )
            row = next(r for r in policy.rows if r.name == MODEL_POLICY)
            attack = auditor.attack(GLOBAL, f"frontier epsilon={epsilon:g} seed {s}", trained.weights, members)[-1].result
            points.append(FrontierPoint(
                epsilon=epsilon, seed=s, epsilon_spent=plan.spent(trained.result.rounds_run), noise_multiplier=plan.sigma,
                test_auc=trained.result.test.auc, policy_value=row.value, policy_low=row.ci_low, policy_high=row.ci_high,
                mia_auc=attack.auc, mia_auc_low=attack.auc_ci[0], mia_auc_high=attack.auc_ci[1],
                mia_chance_auc_95=attack.null_auc_95, mia_tpr_at_1pct_fpr=attack.tpr_at_1pct_fpr,
                mia_tpr_low=attack.tpr_at_1pct_fpr_ci[0], mia_tpr_high=attack.tpr_at_1pct_fpr_ci[1],
                mia_chance_tpr_95=attack.null_tpr_at_1pct_fpr_95,
            ))
        mine = points[-config.frontier_seeds:]
        say(f"  epsilon {epsilon:>4g}: noise multiplier {plan.sigma:7.3f}, test AUC "
            f"{np.mean([p.test_auc for p in mine]):.3f}, policy value {np.mean([p.policy_value for p in mine]):.3f}, "
            f"membership AUC {np.mean([p.mia_auc for p in mine]):.3f} (chance 95% {np.mean([p.mia_chance_auc_95 for p in mine]):.3f})")
    summary = []
    for epsilon in config.frontier_epsilons:
        mine = [p for p in points if p.epsilon == epsilon]
        col = lambda name: np.array([getattr(p, name) for p in mine], dtype=float)  # noqa: E731
        summary.append(FrontierSummary(
            epsilon=epsilon, seeds=len(mine), epsilon_spent=float(col("epsilon_spent").max()),
            test_auc=float(col("test_auc").mean()), test_auc_min=float(col("test_auc").min()),
            test_auc_max=float(col("test_auc").max()), policy_value=float(col("policy_value").mean()),
            policy_value_min=float(col("policy_value").min()), policy_value_max=float(col("policy_value").max()),
            mia_auc=float(col("mia_auc").mean()), mia_auc_min=float(col("mia_auc").min()),
            mia_auc_max=float(col("mia_auc").max()), mia_tpr_at_1pct_fpr=float(col("mia_tpr_at_1pct_fpr").mean()),
            mia_chance_auc_95=float(col("mia_chance_auc_95").mean()), mia_chance_tpr_95=float(col("mia_chance_tpr_95").mean()),
        ))
    design = (
        f"DP-FedSGD ({config.rounds} full-batch rounds, clip {settings['clip']:g}, step {settings['lr']:g}, delta "
        f"{settings['delta']:g}, noise shared by {hospitals} hospitals tolerating {settings['colluders']} colluder(s)); "
        f"{config.frontier_seeds} seeds per epsilon (initialization and noise); plaintext aggregation; policy value: "
        f"doubly robust on the test set, {config.n_boot} bootstrap resamples; membership inference: the reference-model "
        f"attack on the global model, {auditor.design}"
    )
    return PrivacyFrontier(points=points, summary=summary, design=design)
