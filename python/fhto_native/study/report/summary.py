"""``summary.md``: the report a clinician-researcher reads, every sentence generated from the numbers.

:func:`summary_markdown` reads a :class:`~fhto_native.study.results.StudyResults` and nothing
else: hospital counts and the split come from the data summary, the protocol from the recorded
configuration, and each comparison from the methods found by their
:class:`~fhto_native.study.results.MethodKind`. A claim is made only when its numbers support it
("identical" only for equal numbers, "upper bound" only for the best model); sentences that other
modules wrote for the report (the policy estimator, the audit design, the scheduler conclusion)
are quoted as they are.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..policy import MODEL_POLICY
from ..results import MethodKind, MethodResult, StudyResults
from .format import format_bytes, format_number, format_pair, is_missing
from .plots import PLOT_FILES
from .tables import PHASES, alone_mean, attack_value, policy_rows

__all__ = ["summary_markdown", "TABLE_FILES", "REPRODUCIBILITY_NOTE"]

#: Every table file, with what it holds (the summary links those written).
TABLE_FILES: Dict[str, str] = {
    "metrics.csv": "validation metrics and η₀ per method and round (no timings: a seeded run reproduces it)",
    "cost.csv": "seconds per phase, bytes, hospitals reported and failures per method and round",
    "learning_rates.csv": "learning rate and σ² per hospital, method and round",
    "final.csv": "every model: selection, convergence, threshold, validation and test metrics",
    "policy.csv": "the treatment-policy values above",
    "km_check.csv": "the Kaplan-Meier checks above",
    "privacy.csv": "every field of every membership-inference attack",
    "scheduler_runs.csv": "every run of the scheduler experiment",
    "scheduler_summary.csv": "the scheduler experiment's mean and sd per arm and noise level",
    "scheduler_effects.csv": "the scheduler experiment's paired differences between arms",
    "privacy_frontier.csv": "every run of the privacy-utility frontier (epsilon, seed, utility, membership inference)",
    "privacy_frontier_summary.csv": "the privacy-utility frontier per epsilon: means and ranges over seeds",
    "results.json": "everything above, machine-readable",
}

#: What the report says about the seed.
REPRODUCIBILITY_NOTE = "a seeded run is reproducible; it is for reproducibility, not for production keys"

#: Plain names of the audit's views (``AuditRow.view``).
_VIEWS = {
    "update": "one hospital's update (what a plaintext-FL server sees)",
    "global": "the released global model (seen by every participant)",
}
_VIEW_NOTES = {
    "update": "With encrypted FL nobody has this view.",
    "global": "This holds for encrypted FL too.",
}
#: What each arm of the scheduler experiment changes (``SchedulerExperiment.arms``).
_ARMS = {
    "adaptive": "the per-hospital rate η_i = η₀ / (1 + α σ_i²) and the decay of η₀ (the method)",
    "decay only": "the decay of η₀ without the per-hospital rate (α = 0)",
    "fixed": "η₀ throughout: no per-hospital rate, no decay",
}
#: What each paired comparison of the scheduler experiment measures.
_EFFECTS = {
    ("adaptive", "decay only"): "the per-hospital rate",
    ("decay only", "fixed"): "the decay of η₀",
    ("adaptive", "fixed"): "both together",
}
_EFFECT_METRICS = {"test_auc": "test AUC", "test_loss": "test loss"}
_METRIC_WORDS = {"loss": "loss", "accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1",
                 "auc": "AUC"}


# -- small helpers -----------------------------------------------------------------------------

def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def _cell(x: Any) -> str:
    """A number in a table column: 3 significant digits, trailing zeros kept so columns line up."""
    return format_number(x, trailing_zeros=True)


def _plural(n: int, word: str, plural: Optional[str] = None) -> str:
    return f"{format_number(int(n))} {word if n == 1 else plural or word + 's'}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _clause(text: Any) -> str:
    """Text from another module as it is, ended with a full stop."""
    text = str(text).strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _interval(low: Any, high: Any) -> str:
    return "n/a" if is_missing(low) or is_missing(high) else f"{_cell(low)} to {_cell(high)}"


def _bracket(value: Any, ci: Any) -> str:
    """``0.612 [0.581, 0.640]``; the value alone without an interval."""
    if isinstance(ci, (tuple, list)) and len(ci) == 2 and not is_missing(ci[0]) and not is_missing(ci[1]):
        return f"{_cell(value)} [{_cell(ci[0])}, {_cell(ci[1])}]"
    return _cell(value)


def _config(results: StudyResults, name: str) -> Any:
    return (results.config or {}).get(name)


def _setting(results: StudyResults, name: str) -> str:
    value = _config(results, name)
    return "n/a" if value is None else format_number(value) if not isinstance(value, str) else value


def _auc(m: MethodResult) -> float:
    return float(m.test.auc)


# -- sections ----------------------------------------------------------------------------------

def _randomized(value: Optional[bool]) -> str:
    if value is True:
        return "randomized: each patient's arm was assigned at random"
    if value is False:
        return "not randomized: the arm was chosen, not assigned at random"
    return "whether the arm was assigned at random is not recorded"


def _what_was_run(results: StudyResults) -> List[str]:
    data = results.data
    n = len(data.hospitals)
    features = list(data.features)
    shown = ", ".join(features[:20]) + (f", … ({len(features)} in all)" if len(features) > 20 else "")
    lines = [
        "## What was run",
        "",
        f"- **Dataset:** {data.dataset}" + (f" ({data.description})" if data.description else ""),
        f"- **Outcome (the bad outcome the model predicts):** {data.outcome}; the good outcome is "
        f"{data.good_outcome_label}",
        f"- **Censoring:** {data.censoring}",
        f"- **Treatment arms:** {', '.join(data.arms)} ({_randomized(data.randomized)})",
        f"- **Hospitals:** {_plural(n, 'hospital')}; split: {data.split}",
        f"- **Held-out patients:** {format_number(data.validation_rows)} for validation (model selection and "
        f"thresholds) and {format_number(data.test_rows)} for testing (every test number below)",
        f"- **Features ({len(features)}):** {shown}",
        f"- **Standardization:** {data.standardization}",
        f"- **Training:** up to {_setting(results, 'rounds')} rounds of {_setting(results, 'local_epochs')} "
        f"local epochs (the protocol is below)",
        f"- **Encryption:** CKKS preset {_setting(results, 'preset')}; key set {results.key_set}",
        f"- **Keys:** {_keys_text(results.key_model)}",
        f"- **Deployment:** {results.deployment}",
        f"- **Seed:** {_setting(results, 'seed')} ({REPRODUCIBILITY_NOTE})",
    ]
    if not is_missing(results.seconds):
        lines.append(f"- **Time:** the whole study took {format_number(float(results.seconds))} seconds")
    lines.append("")
    if data.hospitals:
        rows = []
        for h in data.hospitals:
            arms = ", ".join(f"{arm} {format_number(int(c))}" for arm, c in h.arms.items())
            rows.append([h.name, h.source, format_number(h.rows), format_number(h.known), format_number(h.censored),
                         format_number(h.events), arms])
        totals = {arm: sum(int(h.arms.get(arm, 0)) for h in data.hospitals) for arm in data.arms}
        rows.append([f"all {n} hospitals", "", format_number(sum(h.rows for h in data.hospitals)),
                     format_number(sum(h.known for h in data.hospitals)),
                     format_number(sum(h.censored for h in data.hospitals)),
                     format_number(sum(h.events for h in data.hospitals)),
                     ", ".join(f"{arm} {format_number(c)}" for arm, c in totals.items())])
        lines += _table(["Hospital", "Source", "Training patients", "Outcome known", "Censored (outcome unknown)",
                         f"Events ({data.outcome_label})", "Patients per arm"], rows) + [""]
    warnings = [*data.warnings, *results.warnings]
    if warnings:
        lines += ["### Warnings", ""] + [f"- **Warning:** {_md(w)}" for w in warnings] + [""]
    return lines


#: How each threshold criterion of the study is described.
_THRESHOLD_RULES = {
    "youden": "to maximize Youden's J (sensitivity + specificity - 1)",
    "f1": "to maximize F1",
}


def _protocol(results: StudyResults) -> List[str]:
    federated = bool(results.methods_of(MethodKind.ENCRYPTED) or results.methods_of(MethodKind.PLAINTEXT))
    epochs = _setting(results, "local_epochs")
    text = (
        f"Every method had the same training budget: up to {_setting(results, 'rounds')} rounds of {epochs} local "
        f"epochs over its own training patients (for centralized training and for a hospital alone a round is "
        f"{epochs} epochs over its rows, so the budgets match). Every method had the same learning-rate schedule: "
        f"a base rate η₀ = {_setting(results, 'eta0')}, multiplied by {_setting(results, 'decay')} after "
        f"{_setting(results, 'patience')} rounds without an improvement of the validation loss"
    )
    if _config(results, "min_delta") is not None:
        text += f" (by more than {_setting(results, 'min_delta')})"
    text += (
        f", and the adaptive per-party factor η_i = η₀ / (1 + α σ_i²) with α = {_setting(results, 'alpha')} and "
        f"σ_i² the variance of party i's update"
        + (" (in the federated methods each hospital is a party)" if federated else "")
        + ". Every method had the same model selection: the model of the round with the lowest validation loss, "
        f"training stopped after {_setting(results, 'early_stopping')} rounds without improvement. Each model's "
        f"decision threshold was then chosen on the validation set {_THRESHOLD_RULES.get(_config(results, 'threshold'), 'by the configured rule')}; "
        "accuracy, precision, recall and F1 below use it."
    )
    lines = ["## Training protocol", "", text, ""]
    dp = results.differential_privacy
    if dp:
        lines += [
            f"**Except under differential privacy:** the federated methods (encrypted FL and plaintext FedAvg) "
            f"trained with record-level differential privacy instead (see the next section): {format_number(dp['rounds'])} "
            f"full-batch steps of size {format_number(dp['lr'])}, no local epochs, no learning-rate adaptation, the last "
            "round's model selected and no early stopping, so that the released models never read validation "
            "patients. The centralized and hospitals-alone baselines are not private: they are references.",
            "",
        ]
    return lines


def _dp(results: StudyResults) -> List[str]:
    dp = results.differential_privacy
    if not dp:
        return []
    spent = dp["epsilon_spent"]
    return [
        "## Differential privacy",
        "",
        f"Every patient of every hospital is protected with (ε, δ) = ({format_number(spent) if spent is not None else '∞'}, "
        f"{format_number(dp['delta'])})-differential privacy (add/remove one patient; target ε = "
        f"{format_number(dp['epsilon_target']) if dp['epsilon_target'] is not None else '∞'}) with respect to everything "
        f"released: the global model after each of the {format_number(dp['rounds'])} rounds. The ε is the "
        f"{_md(dp['accountant'])}'s for {format_number(dp['rounds'])} Gaussian steps of noise multiplier "
        f"{format_number(dp['noise_multiplier'])} at sampling rate {format_number(dp['sample_rate'])}.",
        "",
        f"- **Mechanism:** each round, every hospital sums its patients' gradients, each clipped to norm "
        f"{format_number(dp['clip'])} (so one patient moves the sum by at most that), adds Gaussian noise of standard "
        f"deviation {format_number(dp['hospital_noise_std'])} per coordinate, and encrypts the result. The server adds "
        "ciphertexts and the key holders decrypt only the sum, so the server sees one dose of noise, not one per hospital.",
        f"- **Trust assumption:** the server and up to {dp['colluders_tolerated']} hospital(s) may collude (and read their own "
        f"noise): the remaining honest hospitals' noise still carries the full guarantee, because each hospital adds "
        f"noise as if only {dp['min_contributors'] - dp['colluders_tolerated']} of the {dp['min_contributors']} required "
        "contributors were honest. With more colluders the guarantee weakens; a round with fewer contributors is refused.",
        "- **Not covered:** the federated standardization (means and standard deviations), the training data's ranges "
        "stored with the saved model, and the validation and test patients used to evaluate the models.",
        "",
    ]


def _frontier(results: StudyResults) -> List[str]:
    frontier = results.privacy_frontier
    if frontier is None or not frontier.summary:
        return []
    eps = lambda e: "∞" if e is None or not math.isfinite(e) else format_number(e)  # noqa: E731
    lines = ["## Privacy-utility frontier", "", f"**Design:** {_clause(frontier.design)}", ""]
    lines += _table(
        ["ε (target)", "ε spent", "Seeds", "Test AUC (mean, range)", "Policy value (mean, range)",
         "Membership AUC (mean, range)", "Chance AUC (95th pct.)", "TPR at 1% FPR (mean)", "Chance TPR (95th pct.)"],
        [[eps(s.epsilon), eps(s.epsilon_spent), s.seeds,
          f"{format_number(s.test_auc)} [{format_number(s.test_auc_min)}, {format_number(s.test_auc_max)}]",
          f"{format_number(s.policy_value)} [{format_number(s.policy_value_min)}, {format_number(s.policy_value_max)}]",
          f"{format_number(s.mia_auc)} [{format_number(s.mia_auc_min)}, {format_number(s.mia_auc_max)}]",
          format_number(s.mia_chance_auc_95), format_number(s.mia_tpr_at_1pct_fpr), format_number(s.mia_chance_tpr_95)]
         for s in frontier.summary],
    ) + [""]
    first, last = frontier.summary[0], frontier.summary[-1]
    above = [s for s in frontier.summary if s.mia_auc > s.mia_chance_auc_95]
    sentences = [
        f"From ε = {eps(first.epsilon)} to ε = {eps(last.epsilon)} the mean test AUC goes from "
        f"{format_number(first.test_auc)} to {format_number(last.test_auc)} and the mean policy value from "
        f"{format_number(first.policy_value)} to {format_number(last.policy_value)}.",
        ("At every ε the membership attack's mean AUC stays at or below its chance reference: on this data the "
         f"released global model shows no measurable membership leakage even at ε = {eps(first.epsilon)}, so the frontier "
         "measures the cost of the guarantee, not a leak it closes."
         if not above else
         "The membership attack's mean AUC exceeds its chance reference at ε = "
         + ", ".join(eps(s.epsilon) for s in above) + "."),
        "Ranges are over seeds (initialization and noise); each run's own bootstrap intervals are in "
        "privacy_frontier.csv.",
    ]
    lines += [" ".join(sentences), ""]
    return lines


def _quality(results: StudyResults) -> List[str]:
    lines = ["## Model quality on held-out test patients", ""]
    if not results.methods:
        return lines + ["No model was trained.", ""]
    alone = results.methods_of(MethodKind.ALONE)
    ordered = [m for m in results.methods if m.kind is not MethodKind.ALONE] + alone
    rows = []
    for m in ordered:
        selected = f"{m.selected_round} / {m.rounds_run}" + (" (stopped early)" if m.stopped_early else "")
        t = m.test
        rows.append([m.label, m.description, selected, _cell(t.auc), _cell(t.accuracy), _cell(t.precision),
                     _cell(t.recall), _cell(t.f1), _cell(t.loss), _cell(t.threshold)])
    mean = alone_mean(results)
    if mean is not None:
        rows.append(["hospitals alone (mean)", f"mean over {_plural(len(alone), 'hospital')}, each on its own patients",
                     "", *(_cell(mean[f"test_{k}"]) for k in ("auc", "accuracy", "precision", "recall", "f1", "loss")),
                     ""])
    lines += _table(["Model", "How it was trained", "Selected round / rounds run", "Test AUC", "Accuracy", "Precision",
                     "Recall", "F1", "Loss", "Threshold"], rows) + [""]

    sentences = []
    enc, plain = results.method(MethodKind.ENCRYPTED), results.method(MethodKind.PLAINTEXT)
    central = results.method(MethodKind.CENTRALIZED)
    on = f" on {format_number(results.data.test_rows)} held-out test patients"
    if enc is not None and plain is not None:
        a, b = format_pair(_auc(enc), _auc(plain))
        sentences.append(_sentence(f"{enc.label} reached a test AUC of {a} vs {b} for {plain.label}{on}."))
    elif enc is not None:
        sentences.append(_sentence(f"{enc.label} reached a test AUC of {_cell(_auc(enc))}{on}."))
    if central is not None and not is_missing(_auc(central)):
        c = _auc(central)
        better = [m for m in results.methods if m is not central and not is_missing(_auc(m)) and _auc(m) > c]
        head = f"{_sentence(central.label)}, trained on all training patients pooled in one place, reached {_cell(c)}"
        if not better:
            sentences.append(f"{head}, and no other method reached a higher test AUC: here it is the upper bound "
                             f"that federated learning is measured against, without pooling any patient.")
        else:
            shown = _join([f"{m.label} ({_cell(_auc(m))})" for m in better[:5]])
            more = f" and {len(better) - 5} more" if len(better) > 5 else ""
            sentences.append(f"{head}, lower than {shown}{more}: pooling the patients did not give the best test "
                             f"AUC in this study.")
    aucs = [(m, _auc(m)) for m in alone if not is_missing(_auc(m))]
    if aucs and mean is not None:
        low = min(aucs, key=lambda p: p[1])
        high = max(aucs, key=lambda p: p[1])
        sentences.append(f"Hospitals training alone reached {_cell(mean['test_auc'])} on average (from "
                         f"{_cell(low[1])} for {low[0].label} to {_cell(high[1])} for {high[0].label}).")
        if enc is not None and not is_missing(_auc(enc)):
            diff = _auc(enc) - mean["test_auc"]
            beaten = sum(1 for _, v in aucs if _auc(enc) > v)
            if diff:
                word = "higher" if diff > 0 else "lower"
                than = (f"each of the {len(aucs)} hospitals" if beaten == len(aucs)
                        else f"{beaten} of the {len(aucs)} hospitals")
                sentences.append(f"The encrypted federated model's test AUC is {format_number(abs(diff))} {word} than "
                                 f"that of the average hospital training alone, and higher than that of {than} "
                                 f"training alone.")
            else:
                sentences.append("The encrypted federated model's test AUC equals the average of the hospitals "
                                 "training alone.")
    sentences.append("AUC is the probability that the model ranks a random patient with the bad outcome above one "
                     "without it (0.5 = chance, 1 = perfect).")
    lines += [" ".join(sentences), ""]
    budget = _config(results, "rounds")
    unconverged = [m for m in results.methods if not m.converged]
    if unconverged:
        lines += ["Convergence:", ""]
        for m in unconverged:
            total = budget if isinstance(budget, int) and not isinstance(budget, bool) else m.rounds_run
            lines.append(f"- {_sentence(m.label)}: validation loss was still improving at round {m.rounds_run} of "
                         f"{total}: the model may not have converged; more rounds may help.")
        lines.append("")
    return lines


def _weights_text(d: float) -> str:
    if d == 0:
        return "The two models' weights are identical: encryption did not change the model."
    if d < 1e-6:
        return ("A difference of this size is the rounding noise of CKKS, the approximate arithmetic used for "
                "encryption.")
    if d < 1e-3:
        return ("This is larger than typical CKKS rounding noise but still small relative to model weights; it may "
                "come from the encryption precision or from a different set of hospitals reporting in some round.")
    return ("This is much larger than encryption rounding noise: the two runs did not compute the same model. Check "
            "that they used the same seed and the same hospitals in each round, and the encryption precision.")


def _enc_vs_plain(results: StudyResults) -> List[str]:
    enc, plain = results.method(MethodKind.ENCRYPTED), results.method(MethodKind.PLAINTEXT)
    wd = results.weights_difference
    if (enc is None or plain is None) and is_missing(wd):
        return []
    lines = ["## Encrypted vs plaintext federated learning", ""]
    sentences = []
    if not is_missing(wd):
        sentences.append(f"Largest difference between the two models' weights (max |w_encrypted − w_plaintext| over "
                         f"all weights): **{format_number(float(wd))}**.")
        sentences.append(_weights_text(float(wd)))
    if enc is not None and plain is not None:
        a, b = float(enc.test.auc), float(plain.test.auc)
        if a == b:
            sentences.append(f"Their test AUCs are identical ({_cell(a)}).")
        else:
            x, y = format_pair(a, b)
            sentences.append(f"Their test AUCs differ by {format_number(abs(a - b))} ({x} vs {y}).")
        same, differ = [], []
        for k in ("accuracy", "precision", "recall", "f1", "loss"):
            u, v = float(getattr(enc.test, k)), float(getattr(plain.test, k))
            if u == v:
                same.append(_METRIC_WORDS[k])
            else:
                x, y = format_pair(u, v)
                differ.append(f"{_METRIC_WORDS[k]} by {format_number(abs(u - v))} ({x} vs {y})")
        if same:
            sentences.append(f"Their test {_join(same)} {'is' if len(same) == 1 else 'are'} identical.")
        if differ:
            other = "other test metrics differ" if len(differ) > 1 else "other test metric differs"
            sentences.append(f"{'Their' if not same else 'The'} {other}: {'; '.join(differ)}.")
        if enc.selected_round != plain.selected_round:
            sentences.append(f"The encrypted run selected round {enc.selected_round}, the plaintext run round "
                             f"{plain.selected_round}.")
    return lines + [" ".join(sentences), ""]


def _overlaps(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _policy_model(results: StudyResults) -> str:
    """The label of the method whose predictions the model policy follows."""
    m = next((m for m in results.methods if m.key == results.policy_model), None)
    return m.label if m is not None else results.policy_model


def _policies(results: StudyResults) -> List[str]:
    if results.policy is None:
        return []
    policy = results.policy
    rows = policy_rows(policy)
    good = policy.good_outcome
    lines = [f"## Treatment policies: probability of {good}", ""]
    lines.append(f"Each value is the estimated probability of {good} if every held-out test patient were treated as "
                 f"the policy says. The model policy gives each patient the arm of lowest predicted risk according "
                 f"to {_policy_model(results)}.")
    lines.append("")
    table = [[r.name, _cell(r.value), _interval(r.ci_low, r.ci_high), format_number(int(r.n_followed))] for r in rows]
    level = getattr(policy, "level", None)
    interval = "Confidence interval" if is_missing(level) else f"{format_number(100 * float(level))}% interval"
    lines += _table(["Policy", f"Estimated probability of {good}", interval,
                     "Patients whose treatment matched"], table) + [""]
    lines += [f"- **Estimator:** {_clause(policy.estimator)}", f"- **Propensities:** {_clause(policy.propensity)}",
              f"- **Censoring:** {_clause(policy.censoring)}", ""]
    sentences = []
    valued = [r for r in rows if not is_missing(r.value)]
    if valued:
        best = max(valued, key=lambda r: float(r.value))
        sentences.append(f"The highest point estimate is for \"{best.name}\" ({format_number(best.value)}).")
        model = next((r for r in valued if r.name == MODEL_POLICY), None)
        if model is not None and not is_missing(model.ci_low) and not is_missing(model.ci_high):
            others = [r for r in valued if r is not model and not is_missing(r.ci_low) and not is_missing(r.ci_high)]
            apart = [r.name for r in others
                     if not _overlaps((model.ci_low, model.ci_high), (r.ci_low, r.ci_high))]
            span = f"{format_number(model.ci_low)} to {format_number(model.ci_high)}"
            if others and not apart:
                sentences.append(f"The model policy's interval ({span}) overlaps the intervals of all {len(others)} "
                                 f"other policies, so no difference between them has been demonstrated.")
            elif apart:
                sentences.append(f"The model policy's interval ({span}) does not overlap those of "
                                 + _join([f"\"{a}\"" for a in apart])
                                 + f"; it overlaps {len(others) - len(apart)} other(s).")
    if sentences:
        lines += [" ".join(sentences), ""]
    if results.kaplan_meier:
        checks = results.kaplan_meier
        lines += ["### Kaplan-Meier check", ""]
        lines += _table(["Policy", "Scope", "Kaplan-Meier", "Estimate", "Interval", "Kaplan-Meier inside"],
                        [[c.policy, c.scope, _cell(c.kaplan_meier), _cell(c.value), _interval(c.ci_low, c.ci_high),
                          "yes" if c.inside else "no"] for c in checks]) + [""]
        inside = sum(1 for c in checks if c.inside)
        text = (f"A Kaplan-Meier estimate of the same quantity, which handles censoring without weights, lies inside "
                f"the estimate's interval in {inside} of {_plural(len(checks), 'check')}")
        outside = [f"\"{c.policy}\" ({c.scope})" for c in checks if not c.inside]
        if outside:
            text += (f"; it lies outside for {_join(outside)}: there the censoring handling or the estimate "
                     f"deserves a closer look.")
        else:
            text += ": the censoring handling agrees with it in every check."
        lines += [text, ""]
    caution = (
        "> **Caution.** Each value estimates, from held-out patients, what would have happened under the policy; it "
        "is not a prospective evaluation and not a treatment recommendation. A doubly robust estimate combines an "
        "outcome model with weights from the propensities and is consistent when either of the two is right, not "
        "when both are wrong."
    )
    if results.data.randomized is not True:
        caution += (" The treatment was not shown to be randomized, so the estimates also assume that every factor "
                    "that drove both the treatment and the outcome is among the features (no unmeasured "
                    "confounding).")
    caution += (" With few patients whose treatment matched a policy its interval is wide. Overlapping intervals "
                "mean no difference between the policies has been demonstrated.")
    return lines + [caution, ""]


def _view_name(view: str) -> str:
    return _VIEWS.get(view, view)


def _privacy(results: StudyResults) -> List[str]:
    lines = ["## Privacy audit (membership inference)", ""]
    audit = results.audit
    if audit is None or not audit.rows:
        return lines + ["No privacy audit was run.", ""]
    if audit.design:
        lines += [f"**Audit design:** {_clause(audit.design)}", ""]
    rows = []
    for row in audit.rows:
        r = row.result
        get = lambda name: attack_value(r, name)  # noqa: E731 - a short local accessor
        fp, non = get("false_positives_at_1pct"), get("nonmembers")
        flags = (f" (may flag {format_number(fp)} of {format_number(non)} non-members)"
                 if fp is not None and non is not None else "")
        distinguishable = get("distinguishable")
        rows.append([
            _view_name(row.view), row.target, get("attack"), _bracket(get("auc"), get("auc_ci")),
            _cell(get("null_auc_95")), _cell(get("p_auc")), _bracket(get("advantage"), get("advantage_ci")),
            _cell(get("null_advantage_95")), _cell(get("p_advantage")), f"{_cell(get('tpr_at_1pct_fpr'))}{flags}",
            _cell(get("tpr_at_10pct_fpr")), f"{format_number(get('members'))} / {format_number(non)}",
            "n/a" if distinguishable is None else "yes" if distinguishable else "no",
        ])
    lines += _table(["What the attacker sees", "Target", "Attack", "AUC [95% CI]", "Chance AUC (95th percentile)",
                     "p (AUC)", "Advantage [95% CI]", "Chance advantage (95th percentile)", "p (advantage)",
                     "TPR at 1% FPR", "TPR at 10% FPR", "Members / non-members", "Distinguishable from chance"],
                    rows) + [""]
    lines += [
        "The audit asks whether someone who sees part of the training process can tell if a given patient's record "
        "was used for training. An AUC of 0.5 and an advantage of 0 mean the attacker does no better than guessing; "
        "the chance columns give the 95th percentile of each number when membership is shuffled at random, so a "
        "value below it is what chance alone produces. The true-positive rate (TPR) at a low false-positive rate "
        "(FPR) shows whether a few patients can be identified confidently. A low score means these attacks found "
        "little; it does not prove that no attack can succeed.",
        "",
        "There are two different views:",
        "",
        "1. **An individual hospital's update**: what the server of *plaintext* federated learning sees every round. "
        "Encryption removes this view: with FHTO the server only holds the public key and adds ciphertexts it cannot "
        "read, and only the sum over all hospitals is ever decrypted, so no one sees a single hospital's update.",
        "2. **The global model**: decrypted after every round and shared with every participant, *with or without* "
        "encryption. Encryption does not lower this risk: the numbers for this view apply equally to encrypted and "
        "plaintext federated learning. Reducing it needs other measures (for example differential privacy, fewer "
        "rounds, or restricting who receives the model).",
        "",
    ]
    sentences = []
    views = list(dict.fromkeys(row.view for row in audit.rows))
    for view in views:
        scored = [row for row in audit.rows if row.view == view and not is_missing(attack_value(row.result, "auc"))]
        if not scored:
            continue
        top = max(scored, key=lambda row: float(attack_value(row.result, "auc")))
        r = top.result
        detail = [f"TPR at 1% FPR {format_number(attack_value(r, 'tpr_at_1pct_fpr'))}",
                  f"advantage {format_number(attack_value(r, 'advantage'))}"]
        if attack_value(r, "null_auc_95") is not None:
            detail.insert(0, f"chance level {format_number(attack_value(r, 'null_auc_95'))}")
        note = _VIEW_NOTES.get(view)
        sentences.append(f"For {_view_name(view)}, the strongest attack ({attack_value(r, 'attack')}, against "
                         f"{top.target}) reached AUC {format_number(attack_value(r, 'auc'))} ({', '.join(detail)})."
                         + (f" {note}" if note else ""))
    if sentences:
        lines += [" ".join(sentences), ""]
    judged = [row for row in audit.rows if attack_value(row.result, "distinguishable") is not None]
    found = [row for row in judged if attack_value(row.result, "distinguishable")]
    chance = [row for row in judged if not attack_value(row.result, "distinguishable")]

    def numbers(r) -> str:
        return (f"AUC {format_number(attack_value(r, 'auc'))}, p = {format_number(attack_value(r, 'p_auc'))}; "
                f"advantage {format_number(attack_value(r, 'advantage'))}, "
                f"p = {format_number(attack_value(r, 'p_advantage'))}")

    verdicts = [
        f"- Distinguishable from chance: {attack_value(row.result, 'attack')} against {row.target}, on "
        f"{_view_name(row.view)} ({numbers(row.result)}): this attack tells members from non-members better "
        "than chance." for row in found
    ]
    if chance and not found:
        verdicts.append(f"- Indistinguishable from chance: all {len(chance)} results (every p-value is 0.05 or more; "
                        "the smallest is " + format_number(min(min(attack_value(row.result, "p_auc"),
                                                                   attack_value(row.result, "p_advantage"))
                                                               for row in chance)) + ").")
    elif chance:
        verdicts.append(
            f"- Indistinguishable from chance: the other {len(chance)} results ("
            + "; ".join(f"{attack_value(row.result, 'attack')} against {row.target}" for row in chance) + ")."
        )
    if verdicts:
        lines += verdicts + [""]
    blind = [row for row in audit.rows if attack_value(row.result, "false_positives_at_1pct") == 0]
    if blind:
        sizes = sorted({int(attack_value(row.result, "nonmembers")) for row in blind
                        if attack_value(row.result, "nonmembers") is not None})
        lines += [f"Note: with {_join([format_number(s) for s in sizes]) or 'so few'} non-members, 1% of them is less "
                  f"than one patient, so for {len(blind)} of the {len(audit.rows)} results (those that \"may flag 0\" "
                  f"non-members in the table) the TPR at 1% FPR cannot flag any non-member: it counts only the "
                  f"members scored above every non-member, and says little about rarer leaks.", ""]
    return lines


def _server(results: StudyResults) -> List[str]:
    enc = results.method(MethodKind.ENCRYPTED)
    lines = ["## What the server learns in plaintext", "",
             "Even with encryption, the aggregation server sees:", "",
             "- the round number, and the base rate η₀ and the sensitivity α it sends (each hospital computes its "
             "own rate η_i = η₀ / (1 + α σ_i²) from its own update variance σ_i², which never leaves it);",
             "- which hospitals reported in each round (their ids);",
             "- the size and timing of every message;",
             "- from the key holder's decryption of the sum only: the summed update, the total sample count and the "
             "sample-weighted mean training loss, never one hospital's (each hospital's sample count and training "
             "loss travel inside its encrypted update).", ""]
    if enc is None or not enc.history:
        return lines
    sentences = []
    failures = [(r.round, f) for r in enc.history for f in r.failures]
    rounds = _plural(len(enc.history), "round")
    if failures:
        shown = "; ".join(f"round {rnd}: {f}" for rnd, f in failures[:8]) + ("; …" if len(failures) > 8 else "")
        verb = "was" if len(failures) == 1 else "were"
        sentences.append(f"{_plural(len(failures), 'hospital update')} {verb} missing over {rounds} ({shown}); the sum "
                         f"then covered only the hospitals that reported.")
    else:
        sentences.append(f"No hospital update was missing over {rounds}.")
    return lines + [" ".join(sentences), ""]


def _mean_sd(mean: Any, sd: Any) -> str:
    return _cell(mean) if is_missing(sd) else f"{_cell(mean)} ± {_cell(sd)}"


def _scheduler(results: StudyResults) -> List[str]:
    sched = results.scheduler
    if sched is None:
        return []
    lines = ["## Learning-rate scheduler experiment", ""]
    arms = "; ".join(f"**{a}**: {_ARMS[a]}" if a in _ARMS else f"**{a}**" for a in sched.arms)
    lines += [
        f"In a separate experiment a share of {sched.noisy_hospital}'s training labels was flipped (label noise "
        f"{_join([format_number(p) for p in sched.noise_levels])}), and "
        f"{_plural(len(sched.arms), 'learning-rate arm')} were trained at every noise level over {_plural(len(sched.seeds), 'seed')} "
        f"({', '.join(str(s) for s in sched.seeds)}), paired by seed. The arms: {arms}. Each run followed the "
        "study's protocol, and its selected model was scored on the test patients.",
        "",
    ]
    rows = [[s.arm, format_number(s.noise), _mean_sd(s.test_auc_mean, s.test_auc_sd),
             _mean_sd(s.test_loss_mean, s.test_loss_sd), _cell(s.noisy_lr_ratio_mean), format_number(s.seeds)]
            for s in sched.summary]
    if rows:
        lines += _table(["Arm", "Label noise", "Test AUC (mean ± sd)", "Test loss (mean ± sd)",
                         f"{sched.noisy_hospital}'s rate / the others' (mean)", "Seeds"], rows) + [""]
    effects = [[f"{e.first} − {e.second}", _EFFECTS.get((e.first, e.second), ""), format_number(e.noise),
                _EFFECT_METRICS.get(e.metric, e.metric), _cell(e.mean), _cell(e.sd), _interval(e.ci_low, e.ci_high),
                format_number(e.seeds), "yes" if e.demonstrated else "no"] for e in sched.effects]
    if effects:
        lines += ["Paired differences between arms (first minus second, over the same seeds, with a 95% interval):",
                  ""]
        lines += _table(["Comparison", "What it measures", "Label noise", "Metric", "Mean difference", "SD",
                         "95% interval", "Seeds", "Interval excludes 0"], effects) + [""]
    if sched.conclusion:
        lines += [sched.conclusion, ""]
    return lines


def _median(values: Sequence[float]) -> float:
    values = [v for v in values if not is_missing(v)]
    return float(np.median(values)) if values else math.nan


def _cost(results: StudyResults) -> List[str]:
    federated = [m for m in results.methods if m.kind in (MethodKind.ENCRYPTED, MethodKind.PLAINTEXT) and m.history]
    if not federated:
        return []
    phases = [p for p in PHASES if any(p in r.seconds for m in federated for r in m.history)]
    rows, totals, uploads = [], {}, {}
    for m in federated:
        totals[m.kind] = _median([sum(r.seconds.values()) for r in m.history if r.seconds])
        uploads[m.kind] = _median([r.bytes["upload"] for r in m.history if "upload" in r.bytes])
        per_phase = [_cell(_median([r.seconds[p] for r in m.history if p in r.seconds])) for p in phases]
        rows.append([m.label, _cell(totals[m.kind]), *per_phase, format_bytes(uploads[m.kind]),
                     format_bytes(_median([r.bytes["sum"] for r in m.history if "sum" in r.bytes]))])
    lines = ["## Cost", ""]
    lines += _table(["Method", "Median seconds per round", *(f"median {p} (s)" for p in phases),
                     "Uploads per round (all hospitals, median)", "Aggregate per round (median)"], rows) + [""]
    enc, plain = results.method(MethodKind.ENCRYPTED), results.method(MethodKind.PLAINTEXT)
    if enc is not None and plain is not None and enc.history and plain.history:
        sentences = []
        t_enc, t_plain = totals.get(MethodKind.ENCRYPTED, math.nan), totals.get(MethodKind.PLAINTEXT, math.nan)
        if not is_missing(t_enc) and not is_missing(t_plain):
            ratio = f" ({format_number(t_enc / t_plain)} times as long)" if t_plain > 0 else ""
            sentences.append(f"A round of {enc.label} took a median of {format_number(t_enc)} seconds vs "
                             f"{format_number(t_plain)} for {plain.label}{ratio}.")
        b_enc, b_plain = uploads.get(MethodKind.ENCRYPTED, math.nan), uploads.get(MethodKind.PLAINTEXT, math.nan)
        if not is_missing(b_enc) and not is_missing(b_plain):
            ratio = f" ({format_number(b_enc / b_plain)} times as much)" if b_plain > 0 else ""
            sentences.append(f"The uploads of all hospitals together were {format_bytes(b_enc)} per round vs "
                             f"{format_bytes(b_plain)}{ratio}.")
        if sentences:
            lines += [" ".join(sentences), ""]
    return lines


def _links(plots: Sequence[str], tables: Sequence[str]) -> List[str]:
    lines: List[str] = []
    if plots:
        lines += ["## Plots", ""] + [f"- [{PLOT_FILES[p]}]({p})" for p in plots] + [""]
    if tables:
        lines += ["## Tables", ""] + [f"- [{t}]({t}): {TABLE_FILES[t]}" for t in tables] + [""]
    return lines


def summary_markdown(results: StudyResults, plots: Sequence[str] = (), tables: Sequence[str] = ()) -> str:
    """The Markdown text of ``summary.md``.

    Parameters
    ----------
    results : StudyResults
        What the study measured.
    plots, tables : sequence of str
        File names of the plots and tables written next to it (linked at the end).

    Returns
    -------
    str
        The summary, ending with a newline.

    Raises
    ------
    InputTypeError
        ``results.policy`` that is not a PolicyTable.
    """
    lines = ["# Federated treatment-optimization report", ""]
    for section in (_what_was_run, _protocol, _dp, _quality, _enc_vs_plain, _policies, _privacy, _frontier, _server,
                    _scheduler, _cost):
        lines += section(results)
    lines += _links(plots, tables)
    return "\n".join(lines).rstrip("\n") + "\n"


def _keys_text(model: dict) -> str:
    """One line on who holds the keys."""
    if model.get("kind", "shared") == "shared":
        return "one key set shared by every hospital (any of them can decrypt what it intercepts)"
    return (f"{model.get('description', 'multiparty keys')}; generated by the hospitals in round 0, no party "
            f"holds the secret key")
