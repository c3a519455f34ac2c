"""The scheduler ablation: does the per-hospital rate eta_i = eta_0 / (1 + alpha sigma_i^2) help,
beyond the validation-driven decay of eta_0?

Three arms that change one thing at a time:

* ``adaptive``: the per-hospital rate and the decay (the method);
* ``decay only``: alpha = 0, the decay kept (every hospital gets eta_0);
* ``fixed``: alpha = 0 and no decay.

One hospital (the median-sized one, so that size alone does not single it out) gets a share of
its labels flipped, at several noise levels; every arm runs at every level over several seeds,
with the same flipped patients, initial model and minibatch order for the three arms of a seed
(paired). Runs take the plaintext path: encryption changes the weights by CKKS noise only (the
main run measures that). Each run uses the study's protocol (budget, selection by best
validation loss, early stopping); its selected model is scored on the test set.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, List, Sequence

import numpy as np
from scipy import stats

from .cohort import Cohort
from .hospital import derived_seed
from .report.format import format_table
from .results import MethodKind, SchedulerEffect, SchedulerExperiment, SchedulerRun, SchedulerSummary
from .training import train_method

__all__ = ["ARMS", "run_scheduler_experiment", "paired_effect", "conclusion"]

#: The arms, in table order.
ARMS = ("adaptive", "decay only", "fixed")
#: The paired comparisons: the per-hospital rate, the decay, and both together.
COMPARISONS = (("adaptive", "decay only"), ("decay only", "fixed"), ("adaptive", "fixed"))

Printer = Callable[[str], None]


def _noisy_hospital(cohort: Cohort) -> int:
    sizes = [len(d) for d in cohort.hospitals]
    return int(np.argsort(sizes, kind="stable")[len(sizes) // 2])


def _mean_sd(values: Sequence[float]) -> tuple:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


def paired_effect(first: Sequence[float], second: Sequence[float]) -> tuple:
    """(mean, sd, ci_low, ci_high) of the paired differences first - second, with a 95%
    t-interval (nan bounds for fewer than two pairs)."""
    d = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, d.size - 1)) * sd / math.sqrt(d.size)
    return mean, sd, mean - half, mean + half


def run_scheduler_experiment(cohort: Cohort, say: Printer) -> SchedulerExperiment:
    config = cohort.config
    index = _noisy_hospital(cohort)
    name = cohort.names[index]
    target = cohort.hospitals[index]
    seeds = [derived_seed("scheduler experiment", config.seed, s) % 2**31 for s in range(config.scheduler_seeds)]
    levels = list(config.label_noise)
    say(f"scheduler experiment: {name} ({len(target)} patients) with labels flipped at "
        f"{', '.join(f'{p:g}' for p in levels)}; arms {', '.join(ARMS)}; {len(seeds)} seeds (plaintext path):")
    runs: List[SchedulerRun] = []
    for s, seed in enumerate(seeds):
        # One draw per patient and seed: the flipped patients are the same for every arm, and a
        # higher noise level flips a superset of a lower one's.
        draw = np.random.default_rng(seed).random(len(target))
        for noise in levels:
            flip = (draw < noise) & (target.weight > 0)
            # The flipped labels no longer follow the follow-up times: keep the censoring weights
            # and drop the times the outcome was derived from.
            noisy = dataclasses.replace(target, y=np.where(flip, 1.0 - target.y, target.y),
                                        time=None, event=None, horizon=None)
            parties = dict(zip(cohort.names, cohort.hospitals))
            parties[name] = noisy
            for arm in ARMS:
                trained = train_method(
                    cohort, key=f"scheduler {arm}", kind=MethodKind.PLAINTEXT, label=arm,
                    description=f"scheduler experiment: {arm}", parties=parties,
                    scheduler=config.scheduler(arm=arm), seed=seed,
                )
                history = trained.result.history  # rates and variances from the hospitals' own logs
                ratios = [
                    r.lr[name] / np.mean([v for k, v in r.lr.items() if k != name])
                    for r in history[1:] if name in r.lr and len(r.lr) > 1
                ]
                runs.append(SchedulerRun(
                    arm=arm, noise=noise, seed=seed,
                    test_auc=trained.result.test.auc, test_loss=trained.result.test.loss,
                    best_val_loss=trained.best_loss, selected_round=trained.result.selected_round,
                    rounds_run=trained.result.rounds_run,
                    noisy_lr_ratio=float(np.mean(ratios)) if ratios else 1.0,
                    noisy_sigma2=float(np.mean([r.sigma2[name] for r in history if name in r.sigma2])),
                ))
        say(f"  seed {s + 1}/{len(seeds)} done")

    def pick(arm: str, noise: float, metric: str) -> List[float]:
        return [getattr(r, metric) for r in runs if r.arm == arm and r.noise == noise]

    summary = []
    for noise in levels:
        for arm in ARMS:
            auc_mean, auc_sd = _mean_sd(pick(arm, noise, "test_auc"))
            loss_mean, loss_sd = _mean_sd(pick(arm, noise, "test_loss"))
            summary.append(SchedulerSummary(
                arm=arm, noise=noise, seeds=len(seeds), test_auc_mean=auc_mean, test_auc_sd=auc_sd,
                test_loss_mean=loss_mean, test_loss_sd=loss_sd,
                noisy_lr_ratio_mean=float(np.mean(pick(arm, noise, "noisy_lr_ratio"))),
            ))
    effects = []
    for noise in levels:
        for first, second in COMPARISONS:
            for metric in ("test_auc", "test_loss"):
                mean, sd, lo, hi = paired_effect(pick(first, noise, metric), pick(second, noise, metric))
                effects.append(SchedulerEffect(noise=noise, first=first, second=second, metric=metric,
                                               mean=mean, sd=sd, ci_low=lo, ci_high=hi, seeds=len(seeds)))
    text = conclusion(effects, levels, len(seeds))
    for line in format_table(
        ["noise", "arm", "test AUC (mean +- sd)", "test loss (mean +- sd)", "noisy hospital's rate / others'"],
        [[f"{s.noise:g}", s.arm, f"{s.test_auc_mean:.3f} +- {s.test_auc_sd:.3f}",
          f"{s.test_loss_mean:.4f} +- {s.test_loss_sd:.4f}", f"{s.noisy_lr_ratio_mean:.3f}"] for s in summary],
    ):
        say("  " + line)
    say(f"  {text}")
    return SchedulerExperiment(
        noisy_hospital=name, arms=list(ARMS), noise_levels=levels, seeds=seeds, runs=runs,
        summary=summary, effects=effects, conclusion=text,
    )


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _levels(noises: Sequence[float]) -> str:
    return ", ".join(f"{p:g}" for p in noises)


def _changes(up: Sequence[float], up_text: str, down: Sequence[float], down_text: str) -> str:
    """'raised X at noise a, b and lowered X at noise c' for the levels where an effect was shown."""
    bits = [f"{up_text} at noise {_levels(up)}"] if up else []
    bits += [f"{down_text} at noise {_levels(down)}"] if down else []
    return " and ".join(bits)


def conclusion(effects: Sequence[SchedulerEffect], levels: Sequence[float], n_seeds: int) -> str:
    """The plain sentences on whether the per-hospital rate helps, generated from the effects."""
    def effect(first: str, second: str, noise: float, metric: str) -> SchedulerEffect:
        return next(e for e in effects if e.first == first and e.second == second and e.noise == noise
                    and e.metric == metric)

    per_hospital = [effect("adaptive", "decay only", p, "test_auc") for p in levels]
    parts = [f"noise {e.noise:g}: {_signed(e.mean)} [{_signed(e.ci_low)}, {_signed(e.ci_high)}]" for e in per_hospital]
    head = (f"Over {n_seeds} seeds, the per-hospital rate (adaptive minus decay only) changed test AUC by "
            + "; ".join(parts) + " (mean [95% interval])")
    if n_seeds < 2:
        return f"{head}: one seed gives no interval, so no effect can be demonstrated; run more seeds."
    helped = [e.noise for e in per_hospital if e.demonstrated and e.mean > 0]
    hurt = [e.noise for e in per_hospital if e.demonstrated and e.mean < 0]
    if not helped and not hurt:
        verdict = "no interval excludes zero, so the per-hospital rate did not measurably change test AUC at any noise level."
    else:
        verdict = ("it " + _changes(helped, "raised test AUC", hurt, "lowered test AUC")
                   + "; at the other levels no interval excludes zero.")
    loss = [effect("adaptive", "decay only", p, "test_loss") for p in levels]
    worse = [e.noise for e in loss if e.demonstrated and e.mean > 0]
    better = [e.noise for e in loss if e.demonstrated and e.mean < 0]
    if worse or better:
        loss_text = (" On test loss, the per-hospital rate "
                     + _changes(worse, "raised (worsened) test loss", better, "lowered (improved) test loss") + ".")
    else:
        loss_text = " It did not measurably change test loss either."
    if helped and not hurt and not worse:
        overall = " So here the per-hospital rate helps."
    elif (hurt or worse) and not (helped or better):
        overall = " So here the per-hospital rate does not help; where it has a measurable effect, it hurts."
    elif not (helped or hurt or worse or better):
        overall = " So here the per-hospital rate does not measurably help."
    else:
        overall = " Its effects are mixed."
    decay = [effect("decay only", "fixed", p, "test_auc") for p in levels]
    up = [e.noise for e in decay if e.demonstrated and e.mean > 0]
    down = [e.noise for e in decay if e.demonstrated and e.mean < 0]
    if up or down:
        tail = " The decay of eta_0 alone (decay only minus fixed) " + _changes(up, "raised test AUC", down,
                                                                                 "lowered test AUC") + "."
    else:
        tail = " The decay of eta_0 alone (decay only minus fixed) did not measurably change test AUC."
    return f"{head}: {verdict}{loss_text}{overall}{tail}"
