"""The report's plots, drawn with matplotlib's Agg backend at a fixed resolution.

:func:`render_plots` returns the PNG bytes of every plot whose data the study produced, and
``None`` for the others (``write_report`` then removes a stale file of that name). Each plot
finds its runs by :class:`~fhto_native.study.results.MethodKind`, never by a display label.
"""
from __future__ import annotations

import io
import math
import textwrap
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..results import MethodKind, MethodResult, StudyResults
from .format import format_number
from .tables import PHASES, policy_rows

__all__ = ["DPI", "PLOT_FILES", "render_plots"]

#: Resolution of every plot (dots per inch).
DPI = 120

#: Every plot file, with its caption in the summary.
PLOT_FILES: Dict[str, str] = {
    "validation_auc.png": "Validation AUC per round (a star marks each method's selected round)",
    "validation_loss.png": "Validation loss per round (a star marks each method's selected round)",
    "learning_rates.png": "Learning rate and update variance per hospital (encrypted run)",
    "cost_per_round.png": "Seconds per round by phase, and bytes per round",
    "scheduler.png": "Scheduler experiment: test AUC and loss per arm and label-noise level",
    "policy_value.png": "Estimated value of each treatment policy, with Kaplan-Meier checks",
    "privacy_frontier.png": "Privacy-utility frontier: test AUC, policy value and membership inference against epsilon",
}

#: Line style per kind of method: colour, line style, width, marker.
_STYLE = {
    MethodKind.ENCRYPTED: ("tab:red", "-", 2.0, "o"),
    MethodKind.PLAINTEXT: ("tab:blue", "--", 1.6, "x"),
    MethodKind.CENTRALIZED: ("0.25", ":", 1.6, "."),
    MethodKind.ALONE: ("0.65", "-", 0.8, None),
}
_CURVE_KINDS = (MethodKind.ENCRYPTED, MethodKind.PLAINTEXT, MethodKind.CENTRALIZED, MethodKind.ALONE)
#: A legend with more entries than this is left out (100 hospitals would hide the plot).
_MAX_LEGEND = 14


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def _legend(ax, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if 0 < len(labels) <= _MAX_LEGEND:
        ax.legend(fontsize=8, **kwargs)


def _no_data(ax, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data recorded", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _curve(m: MethodResult, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    rounds = np.array([r.round for r in m.history], dtype=np.float64)
    values = np.array([r.validation.get(metric, math.nan) for r in m.history], dtype=np.float64)
    return rounds, values


def plot_validation(results: StudyResults, metric: str, label: str) -> Optional[bytes]:
    """``metric`` of the global model per round for the encrypted, plaintext and centralized
    methods (and, thin, each hospital alone), a star at each method's selected round."""
    fig, (ax,) = _figure(8, 4.8)
    plotted: List[float] = []
    alone_labelled = False
    for kind in _CURVE_KINDS:
        for m in results.methods_of(kind):
            rounds, values = _curve(m, metric)
            if not np.isfinite(values).any():
                continue
            color, ls, lw, marker = _STYLE[kind]
            if kind is MethodKind.ALONE:
                name = None if alone_labelled else "each hospital alone"
                alone_labelled = True
            else:
                name = m.label
            ax.plot(rounds, values, color=color, linestyle=ls, linewidth=lw, marker=marker, markersize=4, label=name,
                    zorder=1 if kind is MethodKind.ALONE else 2)
            chosen = values[rounds == m.selected_round]
            if chosen.size and np.isfinite(chosen[0]):
                ax.plot([m.selected_round], [chosen[0]], linestyle="none", marker="*", color=color,
                        markersize=7 if kind is MethodKind.ALONE else 13, markeredgecolor="black",
                        markeredgewidth=0.6, zorder=3)
            plotted.extend(values[np.isfinite(values)].tolist())
    if not plotted:
        return None
    ax.plot([], [], linestyle="none", marker="*", color="white", markeredgecolor="black", markersize=11,
            label="selected round (lowest validation loss)")
    if metric == "auc" and min(plotted) < 0.6:
        ax.axhline(0.5, color="tab:gray", linewidth=0.8, linestyle="--", alpha=0.7, label="chance (AUC 0.5)")
    ax.set_xlabel("round")
    ax.set_ylabel(f"validation {label}")
    ax.set_title(f"Validation {label} per round")
    _integer_x(ax)
    _legend(ax)
    return _png(fig)


def plot_learning_rates(results: StudyResults) -> Optional[bytes]:
    """The encrypted run's learning rate and update variance per hospital per round, and eta_0."""
    enc = results.method(MethodKind.ENCRYPTED)
    if enc is None or not any(r.lr or r.sigma2 for r in enc.history):
        return None
    hospitals = list(dict.fromkeys(h for r in enc.history for h in [*r.lr, *r.sigma2]))
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(hospitals) <= 10 else "tab20"]
    fig, (ax_lr, ax_s2) = _figure(13, 4.8, ncols=2)
    rounds = np.array([r.round for r in enc.history], dtype=np.float64)
    for i, hospital in enumerate(hospitals):
        color = palette(i % palette.N)
        lr = np.array([r.lr.get(hospital, math.nan) for r in enc.history], dtype=np.float64)
        s2 = np.array([r.sigma2.get(hospital, math.nan) for r in enc.history], dtype=np.float64)
        if np.isfinite(lr).any():
            ax_lr.plot(rounds, lr, marker="o", markersize=3, linewidth=1.2, color=color, label=hospital)
        s2 = np.where(s2 > 0, s2, math.nan)
        if np.isfinite(s2).any():
            ax_s2.plot(rounds, s2, marker="o", markersize=3, linewidth=1.2, color=color, label=hospital)
    ax_lr.plot([r.round for r in enc.history], [r.eta0 for r in enc.history], color="black", linestyle="--",
               linewidth=1.2, label="η₀ (base rate)")
    for ax, title, ylabel in ((ax_lr, "Learning rate per hospital", "learning rate"),
                              (ax_s2, "Update variance σ² per hospital", "σ² (log scale)")):
        if not ax.lines:
            _no_data(ax, title)
            continue
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        _integer_x(ax)
        _legend(ax, ncol=2)
    if ax_s2.lines:
        ax_s2.set_yscale("log")
    fig.suptitle(f"Adaptive learning rates: {enc.label}", fontsize=12)
    return _png(fig)


def _byte_unit(top: float) -> Tuple[str, float]:
    return next(((u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)) if top >= f), ("bytes", 1.0))


def plot_cost(results: StudyResults) -> Optional[bytes]:
    """Seconds per round by phase (stacked, encrypted run) and bytes per round (encrypted and
    plaintext: all uploads together, and the aggregate)."""
    enc = results.method(MethodKind.ENCRYPTED)
    plain = results.method(MethodKind.PLAINTEXT)
    has_seconds = enc is not None and any(r.seconds for r in enc.history)
    series = []
    for m, ls in ((enc, "-"), (plain, "--")):
        if m is None:
            continue
        for kind, marker in (("upload", "o"), ("sum", "s")):
            points = [(r.round, r.bytes[kind]) for r in m.history if kind in r.bytes]
            if points:
                x, y = zip(*points)
                series.append((f"{m.label}: {'all uploads' if kind == 'upload' else 'aggregate'}",
                               np.array(x, dtype=np.float64), np.array(y, dtype=np.float64), ls, marker))
    if not has_seconds and not series:
        return None
    fig, (ax_t, ax_b) = _figure(13, 4.8, ncols=2)
    if has_seconds:
        rounds = np.array([r.round for r in enc.history], dtype=np.float64)
        phases = [p for p in PHASES if any(p in r.seconds for r in enc.history)]
        phases += sorted({p for r in enc.history for p in r.seconds} - set(phases))
        bottom = np.zeros(len(rounds))
        for phase in phases:
            values = np.array([r.seconds.get(phase, 0.0) for r in enc.history], dtype=np.float64)
            if not values.any():
                continue
            ax_t.bar(rounds, values, bottom=bottom, width=0.8, label=phase)
            bottom += values
        typical = float(np.median(bottom))
        if len(bottom) > 2 and typical > 0 and bottom.max() > 4 * typical:
            # one slow round (often the first, warming up) would flatten all the others: cut it
            top = 3 * typical
            ax_t.set_ylim(0, top)
            for rnd, total in zip(rounds, bottom):
                if total > top:
                    ax_t.annotate(f"{format_number(total)} s ↑", (rnd, top), xytext=(0, -12),
                                  textcoords="offset points", ha="center", fontsize=8,
                                  bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
        ax_t.set_title(f"Seconds per round by phase: {enc.label}")
        ax_t.set_xlabel("round")
        ax_t.set_ylabel("seconds")
        _integer_x(ax_t)
        ax_t.legend(fontsize=8, title="phase")
    else:
        _no_data(ax_t, "Seconds per round by phase")
    if series:
        values = np.concatenate([s[2] for s in series])
        top = float(np.nanmax(values))
        positive = values[values > 0]
        unit, scale = _byte_unit(top)
        for name, x, y, ls, marker in series:
            ax_b.plot(x, y / scale, linestyle=ls, marker=marker, markersize=4, label=name)
        if positive.size and top / float(positive.min()) > 30:
            ax_b.set_yscale("log")
        ax_b.set_title("Bytes per round")
        ax_b.set_xlabel("round")
        ax_b.set_ylabel(unit + (" (log scale)" if ax_b.get_yscale() == "log" else ""))
        _integer_x(ax_b)
        ax_b.legend(fontsize=8)
    else:
        _no_data(ax_b, "Bytes per round")
    return _png(fig)


def plot_scheduler(results: StudyResults) -> Optional[bytes]:
    """Test AUC and test loss, mean ± sd over seeds, per arm at each label-noise level."""
    sched = results.scheduler
    if sched is None or not sched.summary:
        return None
    fig, (ax_auc, ax_loss) = _figure(13, 4.8, ncols=2)
    levels = list(sched.noise_levels) or sorted({s.noise for s in sched.summary})
    arms = list(sched.arms) or list(dict.fromkeys(s.arm for s in sched.summary))
    spread = 0.25 * (min(np.diff(sorted(levels))) if len(levels) > 1 else 0.1)
    offsets = np.linspace(-spread / 2, spread / 2, len(arms)) if len(arms) > 1 else np.zeros(1)
    markers = ["o", "s", "^", "D", "v", "x"]
    for i, arm in enumerate(arms):
        rows = [s for s in sched.summary if s.arm == arm]
        rows.sort(key=lambda s: s.noise)
        if not rows:
            continue
        x = np.array([s.noise for s in rows], dtype=np.float64) + offsets[i]
        for ax, mean, sd in ((ax_auc, "test_auc_mean", "test_auc_sd"), (ax_loss, "test_loss_mean", "test_loss_sd")):
            y = np.array([getattr(s, mean) for s in rows], dtype=np.float64)
            err = np.nan_to_num(np.array([getattr(s, sd) for s in rows], dtype=np.float64))
            ax.errorbar(x, y, yerr=err, fmt=markers[i % len(markers)], linestyle="-", linewidth=1, capsize=4,
                        markersize=6, label=arm)
    for ax, name in ((ax_auc, "test AUC"), (ax_loss, "test loss")):
        ax.set_xticks(levels)
        ax.set_xticklabels([format_number(p) for p in levels])
        ax.set_xlabel(f"share of {sched.noisy_hospital}'s labels flipped")
        ax.set_ylabel(f"{name} (mean ± sd over {len(sched.seeds)} seeds)")
        ax.set_title(f"{name[0].upper()}{name[1:]} per arm")
        ax.grid(True, alpha=0.3)
        _legend(ax, title="learning-rate arm")
    fig.suptitle(f"Scheduler experiment: noisy labels at {sched.noisy_hospital}", fontsize=12)
    return _png(fig)


def plot_policy(results: StudyResults, model_policy: Optional[str]) -> Optional[bytes]:
    """Each policy's estimated value with its interval; a Kaplan-Meier value as a diamond where
    the study computed one for that policy."""
    if results.policy is None:
        return None
    rows = [r for r in policy_rows(results.policy) if r.value is not None and math.isfinite(float(r.value))]
    if not rows:
        return None
    n = len(rows)
    fig, (ax,) = _figure(9, 1.6 + 0.55 * n)
    y = np.arange(n)
    for i, r in enumerate(rows):
        value, low, high = float(r.value), float(r.ci_low), float(r.ci_high)
        err = np.array([[max(value - low, 0.0)], [max(high - value, 0.0)]]) if math.isfinite(low) and math.isfinite(
            high) else None
        color = "tab:red" if r.name == model_policy else "tab:blue"
        ax.errorbar(value, y[i], xerr=err, fmt="o", color=color, capsize=4, markersize=6)
        ci = f"  [{format_number(low)}, {format_number(high)}]" if err is not None else ""
        ax.annotate(f"{format_number(value)}{ci}", (value, y[i]), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)
    scopes: List[str] = []
    markers = ["D", "s", "^", "v", "P"]
    for check in results.kaplan_meier:
        index = next((i for i, r in enumerate(rows) if r.name == check.policy), None)
        if index is None or not math.isfinite(float(check.kaplan_meier)):
            continue
        first = check.scope not in scopes
        if first:
            scopes.append(check.scope)
        k = scopes.index(check.scope)
        ax.plot([check.kaplan_meier], [y[index] + 0.18], linestyle="none", marker=markers[k % len(markers)],
                markerfacecolor="none", markeredgecolor="black", markersize=7,
                label=f"Kaplan-Meier ({check.scope})" if first else None)
    ax.set_yticks(y)
    ax.set_yticklabels([textwrap.fill(str(r.name), 38) for r in rows], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(textwrap.fill(f"estimated probability of {results.policy.good_outcome} (with interval)", 80))
    ax.set_title("Treatment policies: estimated value")
    ax.grid(True, axis="x", alpha=0.3)
    if scopes:
        ax.legend(fontsize=8, loc="best")
    return _png(fig)


def plot_frontier(results: StudyResults) -> Optional[bytes]:
    """Test AUC, policy value and membership-inference AUC and TPR at 1% FPR against epsilon:
    each seed's point, the mean line, and the chance references of the attack."""
    frontier = results.privacy_frontier
    if frontier is None or not frontier.summary:
        return None
    epsilons = [s.epsilon for s in frontier.summary]
    finite = [e for e in epsilons if np.isfinite(e)]
    top = 2 * max(finite) if finite else 1.0  # where inf (no noise) is drawn
    pos = lambda e: top if not np.isfinite(e) else e  # noqa: E731
    fig, axes = _figure(16, 4.4, ncols=3)
    panels = (
        ("test_auc", None, "test AUC"),
        ("policy_value", ("policy_low", "policy_high"), "policy value (model's recommendations)"),
        ("mia_auc", ("mia_auc_low", "mia_auc_high"), "membership-inference AUC (global model)"),
    )
    for ax, (name, interval, label) in zip(axes, panels):
        for p in frontier.points:
            y = getattr(p, name)
            if interval is not None:
                lo, hi = getattr(p, interval[0]), getattr(p, interval[1])
                ax.errorbar([pos(p.epsilon)], [y], yerr=[[y - lo], [hi - y]], fmt="o", color="tab:blue", alpha=0.35,
                            capsize=3, markersize=4)
            else:
                ax.plot([pos(p.epsilon)], [y], "o", color="tab:blue", alpha=0.5, markersize=5)
        xs = [pos(s.epsilon) for s in frontier.summary]
        ax.plot(xs, [getattr(s, name) for s in frontier.summary], "-", color="tab:red", linewidth=1.5,
                label=f"mean of {frontier.summary[0].seeds} seeds")
        if name == "mia_auc":
            ax.plot(xs, [s.mia_chance_auc_95 for s in frontier.summary], "--", color="gray",
                    label="chance, 95th percentile")
            ax.axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels(["∞" if not np.isfinite(e) else format_number(e) for e in epsilons])
        ax.set_xlabel("epsilon (∞: clipping, no noise)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        _legend(ax)
    fig.suptitle("Privacy-utility frontier (differentially private federated training)", fontsize=12)
    return _png(fig)


def render_plots(results: StudyResults, model_policy: Optional[str] = None) -> Dict[str, Optional[bytes]]:
    """PNG bytes of every plot of :data:`PLOT_FILES`, ``None`` where the study has no data for it.

    ``model_policy`` names the policy row of the model (drawn in red).
    """
    makers: Dict[str, Callable[[], Optional[bytes]]] = {
        "validation_auc.png": lambda: plot_validation(results, "auc", "AUC"),
        "validation_loss.png": lambda: plot_validation(results, "loss", "loss"),
        "learning_rates.png": lambda: plot_learning_rates(results),
        "cost_per_round.png": lambda: plot_cost(results),
        "scheduler.png": lambda: plot_scheduler(results),
        "policy_value.png": lambda: plot_policy(results, model_policy),
        "privacy_frontier.png": lambda: plot_frontier(results),
    }
    return {name: make() for name, make in makers.items()}
