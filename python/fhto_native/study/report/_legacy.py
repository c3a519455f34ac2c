"""A report folder a clinician-researcher can read, written from the results of a federated run.

:func:`write_report` takes the ``results`` mapping of an experiment (federated runs, a
centralized reference, hospitals training alone, treatment-policy values, a privacy audit and,
optionally, a learning-rate scheduler experiment) and writes CSV tables, ``results.json``, PNG
plots and a Markdown summary (``summary.md``) whose sentences are generated from the numbers.

The structure of ``results`` is checked before anything is written: a section of the wrong type,
a history entry without ``"round"`` or a non-numeric metric raises
:class:`~fhto_native.errors.ParameterError` naming the offending key. Optional sections and keys
may be missing; what they would have produced is then left out (plots) or left empty (tables).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import ParameterError

__all__ = [
    "write_report",
    "validate_results",
    "metrics_table",
    "learning_rate_table",
    "final_table",
    "policy_table",
    "privacy_table",
    "pick_methods",
    "format_number",
    "format_bytes",
    "to_jsonable",
]

CENTRALIZED = "centralized"
SCHEDULER_ADAPTIVE = "scheduler: adaptive"
SCHEDULER_FIXED = "scheduler: fixed"
HOSPITALS_MEAN = "hospitals alone (mean)"

VAL_METRICS = ("val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc")
TEST_METRICS = ("test_loss", "test_accuracy", "test_precision", "test_recall", "test_f1", "test_auc")
PHASES = ("train", "encrypt", "aggregate", "decrypt", "evaluate")
BYTE_KINDS = ("upload", "sum")
POLICY_COLUMNS = ("name", "value", "ci_low", "ci_high", "n_followed")
PRIVACY_COLUMNS = (
    "view", "target", "attack", "auc", "tpr_at_1pct_fpr", "tpr_at_10pct_fpr", "advantage", "members", "nonmembers",
)

#: Every file :func:`write_report` may write; files of these names that a call does not produce
#: (a plot whose data is missing) are removed so the folder never mixes two reports.
REPORT_FILES = (
    "metrics.csv", "learning_rates.csv", "final.csv", "policy.csv", "privacy.csv", "results.json",
    "validation_auc.png", "validation_loss.png", "learning_rates.png", "cost_per_round.png",
    "scheduler.png", "policy_value.png", "summary.md",
)

_DPI = 120


# --------------------------------------------------------------------------------------------
# number formatting and JSON conversion
# --------------------------------------------------------------------------------------------

def _isnan(x: Any) -> bool:
    """True for None and for numbers that are not finite."""
    if x is None:
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_number(x: Any, digits: int = 3, trailing_zeros: bool = False) -> str:
    """Format a number for people: ``digits`` significant digits, ``"n/a"`` for missing.

    Integers print in full (thousands separated from 10,000 on); floats use ``digits``
    significant digits, switching to scientific notation below 0.001 and from one million on.

    Parameters
    ----------
    x
        A number (Python or numpy), ``None`` or NaN.
    digits
        Significant digits for floats.
    trailing_zeros
        Keep trailing zeros (``0.600`` rather than ``0.6``), for columns of numbers to compare.

    Returns
    -------
    str
        For example ``0.612``, ``95.2``, ``2.1e-09``, ``12,345``, ``n/a``.
    """
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 10_000 else str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-3 or a >= 1e6:
        mantissa, exp = f"{v:.{max(digits - 1, 0)}e}".split("e")
        if "." in mantissa and not trailing_zeros:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exp):+03d}"
    if a >= 10 ** digits:
        return f"{round(v):,}" if a >= 10_000 else str(round(v))
    return f"{v:#.{digits}g}".rstrip(".") if trailing_zeros else f"{v:.{digits}g}"


def format_bytes(n: Any) -> str:
    """Format a byte count with a decimal unit (B, kB, MB, GB) and 3 significant digits."""
    if _isnan(n):
        return "n/a"
    v = float(n)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{int(round(v))} B"


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types: numpy scalars and arrays to numbers and lists, NaN and
    infinities to ``None``, tuples and sets to lists, mapping keys to strings, paths and dates to
    strings; anything else to its ``str``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (_dt.date, _dt.datetime, _dt.time)):
        return obj.isoformat()
    if hasattr(obj, "item") and callable(obj.item):  # 0-d arrays, torch scalars
        try:
            return to_jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


# --------------------------------------------------------------------------------------------
# structure checks: every accessor names the key that is wrong
# --------------------------------------------------------------------------------------------

def _where(parent: str, key: Any) -> str:
    return f"{parent}[{key!r}]"


def _mapping(value: Any, where: str, optional: bool = True) -> Mapping:
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"{where} must be a mapping (dict); got {type(value).__name__}")
    return value


def _sequence(value: Any, where: str) -> Sequence:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise ParameterError(f"{where} must be a list; got {type(value).__name__}")
    return list(value)


def _num(value: Any, where: str) -> float:
    """A number or NaN for missing; anything else is malformed."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{where} must be a number; got a bool")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    raise ParameterError(f"{where} must be a number; got {type(value).__name__} {value!r:.60}")


def _round(entry: Mapping, where: str) -> int:
    if "round" not in entry:
        raise ParameterError(f"{where} has no key 'round' (every history entry needs its round number)")
    value = entry["round"]
    r = _num(value, _where(where, "round"))
    if not math.isfinite(r) or r != int(r):
        raise ParameterError(f"{_where(where, 'round')} must be a whole number; got {value!r}")
    return int(r)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterError(f"{where} must be a non-empty string; got {value!r:.60}")
    return value


def _history(run: Mapping, where: str) -> List[Tuple[Mapping, str]]:
    """The history entries of a run with their error locations, each checked to be a mapping."""
    where_h = _where(where, "history")
    out = []
    for i, entry in enumerate(_sequence(run.get("history"), where_h)):
        where_i = f"{where_h}[{i}]"
        out.append((_mapping(entry, where_i, optional=False), where_i))
    return out


def _runs(results: Mapping) -> List[Tuple[str, Mapping, str]]:
    """Every run with a history, as (method name, run, error location): the federated methods in
    order, then the centralized reference, then the scheduler experiment's two runs."""
    runs: List[Tuple[str, Mapping, str]] = []
    methods = _mapping(results.get("methods"), "results['methods']")
    for name, run in methods.items():
        where = _where("results['methods']", name)
        runs.append((_name(name, f"a key of results['methods'] ({name!r})"), _mapping(run, where, optional=False), where))
    if results.get("centralized") is not None:
        runs.append((CENTRALIZED, _mapping(results["centralized"], "results['centralized']"), "results['centralized']"))
    sched = _mapping(results.get("scheduler_experiment"), "results['scheduler_experiment']")
    for key, label in (("adaptive", SCHEDULER_ADAPTIVE), ("fixed", SCHEDULER_FIXED)):
        if sched.get(key) is not None:
            where = _where("results['scheduler_experiment']", key)
            runs.append((label, _mapping(sched[key], where), where))
    return runs


def _ordered(known: Sequence[str], found: Iterable[str]) -> List[str]:
    extra: List[str] = []
    for k in found:
        if k not in known and k not in extra:
            extra.append(k)
    return list(known) + extra


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------

def metrics_table(results: Mapping) -> pd.DataFrame:
    """One row per (method, round): validation metrics, ``eta0``, seconds per phase, bytes,
    hospitals reported and failures.

    Runs: every entry of ``results["methods"]``, ``"centralized"`` (its rounds are epochs) and the
    scheduler experiment's ``"scheduler: adaptive"`` and ``"scheduler: fixed"``.

    Raises
    ------
    ParameterError
        A malformed run or history entry (the message names the key).
    """
    rows: List[Dict[str, Any]] = []
    val_keys: List[str] = []
    phases: List[str] = []
    kinds: List[str] = []
    for method, run, where in _runs(results):
        for entry, where_i in _history(run, where):
            row: Dict[str, Any] = {"method": method, "round": _round(entry, where_i)}
            for key, value in entry.items():
                if isinstance(key, str) and key.startswith("val_"):
                    row[key] = _num(value, _where(where_i, key))
                    val_keys.append(key)
            row["eta0"] = _num(entry.get("eta0"), _where(where_i, "eta0"))
            seconds = _mapping(entry.get("seconds"), _where(where_i, "seconds"))
            for phase, value in seconds.items():
                row[f"seconds_{phase}"] = _num(value, _where(_where(where_i, "seconds"), phase))
                phases.append(str(phase))
            nbytes = _mapping(entry.get("bytes"), _where(where_i, "bytes"))
            for kind, value in nbytes.items():
                row[f"bytes_{kind}"] = _num(value, _where(_where(where_i, "bytes"), kind))
                kinds.append(str(kind))
            row["reported"] = _num(entry.get("reported"), _where(where_i, "reported"))
            row["failures"] = "; ".join(_failures(entry, where_i))
            rows.append(row)
    columns = (["method", "round"] + _ordered(VAL_METRICS, val_keys) + ["eta0"]
               + [f"seconds_{p}" for p in _ordered(PHASES, phases)]
               + [f"bytes_{k}" for k in _ordered(BYTE_KINDS, kinds)] + ["reported", "failures"])
    table = pd.DataFrame(rows, columns=columns)
    numeric = [c for c in columns if c not in ("method", "failures")]
    table[numeric] = table[numeric].astype("float64")
    table["round"] = table["round"].astype("int64")
    for column in ["reported"] + [c for c in table.columns if c.startswith("bytes_")]:
        values = table[column].dropna()
        if (values == values.round()).all():
            table[column] = table[column].astype("Int64")
    return table


def _failures(entry: Mapping, where: str) -> List[str]:
    value = entry.get("failures")
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(f) for f in _sequence(value, _where(where, "failures"))]


def learning_rate_table(results: Mapping) -> pd.DataFrame:
    """One row per (method, round, hospital): the hospital's learning rate ``lr`` and the update
    variance ``sigma2`` the server saw (NaN where a run did not record one).

    Raises
    ------
    ParameterError
        ``lr`` or ``sigma2`` of a history entry not a mapping of numbers.
    """
    rows: List[Dict[str, Any]] = []
    for method, run, where in _runs(results):
        for entry, where_i in _history(run, where):
            rnd = _round(entry, where_i)
            lr = _mapping(entry.get("lr"), _where(where_i, "lr"))
            sigma2 = _mapping(entry.get("sigma2"), _where(where_i, "sigma2"))
            for hospital in _ordered(list(lr), sigma2):
                rows.append({
                    "method": method, "round": rnd, "hospital": str(hospital),
                    "lr": _num(lr.get(hospital), _where(_where(where_i, "lr"), hospital)),
                    "sigma2": _num(sigma2.get(hospital), _where(_where(where_i, "sigma2"), hospital)),
                })
    table = pd.DataFrame(rows, columns=["method", "round", "hospital", "lr", "sigma2"])
    return table.astype({"round": "int64", "lr": "float64", "sigma2": "float64"})


def _final_row(name: str, kind: str, final: Any, where: str, rows: Any = None) -> Dict[str, Any]:
    final = _mapping(final, where)
    row: Dict[str, Any] = {"method": name, "kind": kind, "rows": rows}
    for key, value in final.items():
        row[str(key)] = _num(value, _where(where, key))
    return row


def final_table(results: Mapping) -> pd.DataFrame:
    """Final test metrics: one row per federated method, the centralized reference, the scheduler
    experiment's runs, each hospital alone (``"<hospital> alone"``) and ``"hospitals alone (mean)"``
    (the unweighted mean over hospitals of each metric).

    Raises
    ------
    ParameterError
        A ``final`` that is not a mapping of numbers, or a malformed ``hospitals_alone`` entry.
    """
    rows: List[Dict[str, Any]] = []
    for method, run, where in _runs(results):
        kind = ("centralized" if method == CENTRALIZED
                else "scheduler experiment" if method in (SCHEDULER_ADAPTIVE, SCHEDULER_FIXED) else "federated")
        rows.append(_final_row(method, kind, run.get("final"), _where(where, "final")))
    alone = _mapping(results.get("hospitals_alone"), "results['hospitals_alone']")
    alone_rows = []
    for hospital, info in alone.items():
        where = _where("results['hospitals_alone']", hospital)
        info = _mapping(info, where, optional=False)
        n = _num(info.get("rows"), _where(where, "rows"))
        alone_rows.append(_final_row(f"{hospital} alone", "hospital alone", info.get("final"),
                                     _where(where, "final"), None if math.isnan(n) else int(n)))
    rows.extend(alone_rows)
    metric_keys = [k for r in rows for k in r if k not in ("method", "kind", "rows")]
    columns = ["method", "kind", "rows"] + _ordered(TEST_METRICS, metric_keys)
    if alone_rows:
        mean_row: Dict[str, Any] = {"method": HOSPITALS_MEAN, "kind": "hospital alone (mean)", "rows": None}
        for key in columns[3:]:
            values = np.array([r.get(key, math.nan) for r in alone_rows], dtype=float)
            mean_row[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        rows.append(mean_row)
    table = pd.DataFrame(rows, columns=columns)
    table[columns[3:]] = table[columns[3:]].astype("float64")
    table["rows"] = table["rows"].astype("Int64")
    return table


_TEXT_COLUMNS = ("name", "view", "target", "attack")


def _records(results: Mapping, key: str, known: Sequence[str], required: str) -> pd.DataFrame:
    where = f"results[{key!r}]"
    rows: List[Dict[str, Any]] = []
    found: List[str] = []
    for i, item in enumerate(_sequence(results.get(key), where)):
        where_i = f"{where}[{i}]"
        item = _mapping(item, where_i, optional=False)
        if required not in item:
            raise ParameterError(f"{where_i} has no key {required!r}")
        row: Dict[str, Any] = {}
        for k, v in item.items():
            k = str(k)
            found.append(k)
            if k in _TEXT_COLUMNS or (k not in known and (isinstance(v, str) or v is None)):
                row[k] = v if v is None or isinstance(v, str) else str(v)
            elif k in known or isinstance(v, (int, float, np.integer, np.floating)):
                row[k] = _num(v, _where(where_i, k))
            else:
                row[k] = json.dumps(to_jsonable(v))
        _name(row[required], _where(where_i, required))
        rows.append(row)
    return pd.DataFrame(rows, columns=_ordered(known, found))


def policy_table(results: Mapping) -> pd.DataFrame:
    """``results["policy"]`` as a table: name, value, ci_low, ci_high, n_followed (and any other keys).

    Raises
    ------
    ParameterError
        ``policy`` not a list of mappings, an entry without ``"name"``, or a non-numeric value.
    """
    return _records(results, "policy", POLICY_COLUMNS, "name")


def privacy_table(results: Mapping) -> pd.DataFrame:
    """``results["privacy"]`` as a table: view, target, attack, auc, TPRs, advantage, members,
    nonmembers (and any other keys).

    Raises
    ------
    ParameterError
        ``privacy`` not a list of mappings, an entry without ``"view"``, or a non-numeric value.
    """
    return _records(results, "privacy", PRIVACY_COLUMNS, "view")


def validate_results(results: Any) -> None:
    """Check the structure of ``results`` and raise on the first malformed key.

    Raises
    ------
    ParameterError
        ``results`` not a mapping, ``methods`` missing or not a mapping, or any section, run,
        history entry or value of the wrong type; the message names the key.
    """
    if not isinstance(results, Mapping):
        raise ParameterError(f"results must be a mapping (dict); got {type(results).__name__}")
    if "methods" not in results:
        raise ParameterError("results has no key 'methods' (the federated runs)")
    _mapping(results["methods"], "results['methods']", optional=False)
    _mapping(results.get("config"), "results['config']")
    sched = _mapping(results.get("scheduler_experiment"), "results['scheduler_experiment']")
    if sched and "noise" in sched:
        _num(sched["noise"], "results['scheduler_experiment']['noise']")
    wd = _mapping(results.get("weights_difference"), "results['weights_difference']")
    if "max_abs" in wd:
        _num(wd["max_abs"], "results['weights_difference']['max_abs']")
    timing = _mapping(results.get("timing"), "results['timing']")
    if "total_seconds" in timing:
        _num(timing["total_seconds"], "results['timing']['total_seconds']")
    metrics_table(results)
    learning_rate_table(results)
    final_table(results)
    policy_table(results)
    privacy_table(results)


def pick_methods(names: Iterable[str]) -> Tuple[Optional[str], Optional[str]]:
    """Choose the encrypted and the plaintext federated method among ``names``.

    The encrypted method is the first name containing "encrypt" or "fhto" (any case), else the
    first name; the plaintext one is the first other name containing "plaintext" or "fedavg",
    else the first other name.

    Returns
    -------
    (encrypted, plaintext)
        Either may be ``None`` when there are too few methods.
    """
    names = list(names)
    enc = next((n for n in names if "encrypt" in n.lower() or "fhto" in n.lower()), names[0] if names else None)
    rest = [n for n in names if n != enc]
    plain = next((n for n in rest if "plaintext" in n.lower() or "fedavg" in n.lower()), rest[0] if rest else None)
    return enc, plain


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------

_STYLES = [("-", "o"), ("--", "x"), ("-.", "s"), (":", "^"), ("-", "D"), ("--", "v")]


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    return path


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def _no_data(ax, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data recorded", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_validation(metrics: pd.DataFrame, runs: Sequence[str], metric: str, label: str, path: Path) -> Optional[Path]:
    fig, (ax,) = _figure(8, 4.8)
    plotted = 0
    for i, method in enumerate(runs):
        part = metrics[metrics["method"] == method].sort_values("round")
        if metric not in part or not part[metric].notna().any():
            continue
        if method == CENTRALIZED:
            ax.plot(part["round"], part[metric], color="0.35", linestyle=":", marker=".", label="centralized (per epoch)")
        else:
            ls, mk = _STYLES[i % len(_STYLES)]
            ax.plot(part["round"], part[metric], linestyle=ls, marker=mk, markersize=5, linewidth=1.8, label=method)
        plotted += 1
    if not plotted:
        return None
    if metric == "val_auc" and metrics.loc[metrics["method"].isin(runs), metric].min() < 0.6:
        ax.axhline(0.5, color="red", linewidth=0.8, linestyle="--", alpha=0.6, label="chance (AUC 0.5)")
    has_central = CENTRALIZED in runs and metrics.loc[metrics["method"] == CENTRALIZED, metric].notna().any()
    ax.set_xlabel("round" + (" (epoch for centralized training)" if has_central else ""))
    ax.set_ylabel(label)
    ax.set_title(f"{label[0].upper()}{label[1:]} per round")
    _integer_x(ax)
    ax.legend(fontsize=9)
    return _save(fig, path)


def _plot_learning_rates(rates: pd.DataFrame, metrics: pd.DataFrame, method: str, path: Path) -> Optional[Path]:
    part = rates[rates["method"] == method]
    if part.empty:
        return None
    fig, (ax_lr, ax_s2) = _figure(13, 4.8, ncols=2)
    for hospital, rows in part.groupby("hospital", sort=False):
        rows = rows.sort_values("round")
        if rows["lr"].notna().any():
            ax_lr.plot(rows["round"], rows["lr"], marker="o", markersize=3, label=hospital)
        s2 = rows["sigma2"].where(rows["sigma2"] > 0)
        if s2.notna().any():
            ax_s2.plot(rows["round"], s2, marker="o", markersize=3, label=hospital)
    eta = metrics[metrics["method"] == method].sort_values("round")
    if eta["eta0"].notna().any():
        ax_lr.plot(eta["round"], eta["eta0"], color="black", linestyle="--", linewidth=1.2, label="η₀ (base rate)")
    for ax, title, ylabel in ((ax_lr, "Learning rate per hospital", "learning rate"),
                              (ax_s2, "Update variance σ² per hospital (seen by the server)", "σ² (log scale)")):
        if not ax.lines:
            _no_data(ax, title)
            continue
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        _integer_x(ax)
        ax.legend(fontsize=8, ncol=2)
    if ax_s2.lines:
        ax_s2.set_yscale("log")
    fig.suptitle(f"Adaptive learning rates — {method}", fontsize=12)
    return _save(fig, path)


def _plot_cost(metrics: pd.DataFrame, enc: Optional[str], plain: Optional[str], path: Path) -> Optional[Path]:
    sec_cols = [c for c in metrics.columns if c.startswith("seconds_")]
    enc_rows = metrics[metrics["method"] == enc].sort_values("round") if enc else metrics.iloc[0:0]
    has_seconds = bool(sec_cols) and not enc_rows.empty and enc_rows[sec_cols].notna().any().any()
    series = []
    for method, ls in ((enc, "-"), (plain, "--")):
        if method is None:
            continue
        rows = metrics[metrics["method"] == method].sort_values("round")
        for kind, mk in (("upload", "o"), ("sum", "s")):
            col = f"bytes_{kind}"
            if col in rows and rows[col].notna().any():
                series.append((f"{method}: {kind}", rows["round"], rows[col], ls, mk))
    if not has_seconds and not series:
        return None
    fig, (ax_t, ax_b) = _figure(13, 4.8, ncols=2)
    if has_seconds:
        bottom = np.zeros(len(enc_rows))
        for col in sec_cols:
            values = enc_rows[col].fillna(0).to_numpy(dtype=float)
            if not values.any():
                continue
            ax_t.bar(enc_rows["round"], values, bottom=bottom, label=col[len("seconds_"):], width=0.8)
            bottom += values
        typical = float(np.median(bottom))
        if len(bottom) > 2 and typical > 0 and bottom.max() > 4 * typical:
            # one slow round (often the first, warming up) would flatten all the others: cut it
            top = 3 * typical
            ax_t.set_ylim(0, top)
            for rnd, total in zip(enc_rows["round"], bottom):
                if total > top:
                    ax_t.annotate(f"{format_number(total)} s ↑", (rnd, top), xytext=(0, -12), textcoords="offset points",
                                  ha="center", fontsize=8, color="black",
                                  bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
        ax_t.set_title(f"Seconds per round by phase — {enc}")
        ax_t.set_xlabel("round")
        ax_t.set_ylabel("seconds")
        _integer_x(ax_t)
        ax_t.legend(fontsize=9, title="phase")
    else:
        _no_data(ax_t, "Seconds per round by phase")
    if series:
        values = np.concatenate([s[2].to_numpy(dtype=float) for s in series])
        top = float(np.nanmax(values))
        positive = values[values > 0]
        low = float(positive.min()) if positive.size else top
        unit, scale = next(((u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)) if top >= f), ("bytes", 1.0))
        for label, x, y, ls, mk in series:
            ax_b.plot(x, y / scale, linestyle=ls, marker=mk, markersize=4, label=label)
        if low > 0 and top / low > 30:
            ax_b.set_yscale("log")
        ax_b.set_title("Bytes per round (all uploads; the aggregate)")
        ax_b.set_xlabel("round")
        ax_b.set_ylabel(unit + (" (log scale)" if ax_b.get_yscale() == "log" else ""))
        _integer_x(ax_b)
        ax_b.legend(fontsize=8)
    else:
        _no_data(ax_b, "Bytes per round")
    return _save(fig, path)


def _plot_scheduler(metrics: pd.DataFrame, rates: pd.DataFrame, noisy: Optional[str], noise: float,
                    path: Path) -> Optional[Path]:
    runs = [(SCHEDULER_ADAPTIVE, "adaptive", "-", "o"), (SCHEDULER_FIXED, "fixed", "--", "x")]
    if not any((metrics["method"] == m).any() for m, *_ in runs):
        return None
    fig, axes = _figure(16, 4.8, ncols=3)
    for ax, metric, title in ((axes[0], "val_loss", "validation loss"), (axes[1], "val_auc", "validation AUC")):
        for method, label, ls, mk in runs:
            rows = metrics[metrics["method"] == method].sort_values("round")
            if metric in rows and rows[metric].notna().any():
                ax.plot(rows["round"], rows[metric], linestyle=ls, marker=mk, markersize=4, label=f"{label} learning rate")
        if not ax.lines:
            _no_data(ax, title)
            continue
        ax.set_title(title[0].upper() + title[1:])
        ax.set_xlabel("round")
        ax.set_ylabel(title)
        _integer_x(ax)
        ax.legend(fontsize=9)
    ax = axes[2]
    adaptive = rates[(rates["method"] == SCHEDULER_ADAPTIVE) & rates["lr"].notna()]
    others_labelled = False
    for hospital, rows in adaptive.groupby("hospital", sort=False):
        rows = rows.sort_values("round")
        if hospital == noisy:
            ax.plot(rows["round"], rows["lr"], color="tab:red", linewidth=2.4, marker="o", markersize=4,
                    label=f"{hospital} (noisy labels), adaptive", zorder=3)
        else:
            ax.plot(rows["round"], rows["lr"], color="tab:blue", linewidth=1, alpha=0.6,
                    label=None if others_labelled else "other hospitals, adaptive")
            others_labelled = True
    fixed = rates[(rates["method"] == SCHEDULER_FIXED) & rates["lr"].notna()]
    if not fixed.empty:
        mean_fixed = fixed.groupby("round")["lr"].mean()
        ax.plot(mean_fixed.index, mean_fixed.to_numpy(), color="black", linestyle="--", label="fixed (all hospitals)")
    if ax.lines:
        ax.set_title("Learning rate: noisy hospital vs the others")
        ax.set_xlabel("round")
        ax.set_ylabel("learning rate")
        _integer_x(ax)
        ax.legend(fontsize=8)
    else:
        _no_data(ax, "Learning rate per hospital")
    noise_text = f", label noise {format_number(noise)}" if math.isfinite(noise) else ""
    fig.suptitle(f"Scheduler experiment: adaptive vs fixed learning rate"
                 f"{' (noisy hospital: ' + noisy + noise_text + ')' if noisy else ''}", fontsize=12)
    return _save(fig, path)


def _plot_policy(policy: pd.DataFrame, path: Path) -> Optional[Path]:
    policy = policy[policy["value"].notna()] if "value" in policy else policy.iloc[0:0]
    if policy.empty:
        return None
    n = len(policy)
    fig, (ax,) = _figure(9, 1.4 + 0.55 * n)
    y = np.arange(n)
    value = policy["value"].to_numpy(dtype=float)
    low = policy["ci_low"].to_numpy(dtype=float) if "ci_low" in policy else np.full(n, np.nan)
    high = policy["ci_high"].to_numpy(dtype=float) if "ci_high" in policy else np.full(n, np.nan)
    err = np.vstack([np.nan_to_num(value - low), np.nan_to_num(high - value)]).clip(min=0)
    model = np.array([str(name).lower().startswith("model") for name in policy["name"]])
    colors = np.where(model, "tab:red", "tab:blue")
    for i in range(n):
        ax.errorbar(value[i], y[i], xerr=err[:, i:i + 1], fmt="o", color=colors[i], capsize=4, markersize=6)
        ci = f"  [{format_number(low[i])}, {format_number(high[i])}]" if np.isfinite(low[i]) and np.isfinite(high[i]) else ""
        ax.annotate(f"{format_number(value[i])}{ci}", (value[i], y[i]), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([textwrap.fill(str(name), 38) for name in policy["name"]], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("estimated policy value (IPW on held-out patients) with confidence interval")
    ax.set_title("Treatment policies: estimated value")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------

def _pair(a: float, b: float) -> Tuple[str, str]:
    """Format two numbers to compare, with a 4th significant digit when 3 would make them look equal."""
    x, y = format_number(a, trailing_zeros=True), format_number(b, trailing_zeros=True)
    if x == y and a != b:
        x, y = format_number(a, 4, True), format_number(b, 4, True)
    return x, y


def _cell(x: Any) -> str:
    """A number in a table column: 3 significant digits, trailing zeros kept so columns line up."""
    return format_number(x, trailing_zeros=True)


def _plural(n: int, word: str, plural: Optional[str] = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _value(table: pd.DataFrame, method: str, column: str) -> float:
    if column not in table:
        return math.nan
    part = table.loc[table["method"] == method, column]
    return float(part.iloc[0]) if len(part) and pd.notna(part.iloc[0]) else math.nan


def _last(metrics: pd.DataFrame, method: str, column: str) -> float:
    if column not in metrics:
        return math.nan
    part = metrics[metrics["method"] == method].sort_values("round")[column].dropna()
    return float(part.iloc[-1]) if len(part) else math.nan


def _config_lines(config: Mapping, results: Mapping) -> List[str]:
    lines = ["## What was run", ""]
    shown = set()

    def item(label: str, key: str, text: Optional[str] = None) -> None:
        if key in config and config[key] is not None:
            shown.add(key)
            lines.append(f"- **{label}:** {text if text is not None else _plain(config[key])}")

    item("Dataset", "dataset")
    item("Outcome predicted", "outcome")
    arms = config.get("arms")
    if isinstance(arms, (list, tuple)):
        item("Treatment arms", "arms", ", ".join(str(a) for a in arms))
    hospitals = config.get("hospitals")
    alone = _mapping(results.get("hospitals_alone"), "results['hospitals_alone']")
    if hospitals is None and alone:
        lines.append(f"- **Hospitals:** {len(alone)}")
    item("Hospitals", "hospitals")
    item("How patients were split across hospitals", "split")
    item("Federated rounds", "rounds")
    item("Encryption preset (CKKS parameters)", "preset")
    sched = config.get("scheduler")
    if isinstance(sched, Mapping):
        item("Learning-rate scheduler", "scheduler", ", ".join(f"{k} = {_plain(v)}" for k, v in sched.items()))
    rows = config.get("rows")
    if isinstance(rows, Mapping):
        item("Patients (rows)", "rows", ", ".join(f"{_plain(v)} {k}" for k, v in rows.items()))
    features = config.get("features")
    if isinstance(features, (list, tuple)):
        names = [str(f) for f in features]
        text = ", ".join(names[:15]) + (f", … ({len(names)} in all)" if len(names) > 15 else f" ({len(names)})")
        item("Features", "features", text)
    item("Random seed", "seed")
    nested = config.get("scheduler") if isinstance(config.get("scheduler"), Mapping) else {}
    rest = [k for k in config if k not in shown and not _empty(config[k])
            and not (k in nested and _plain(nested[k]) == _plain(config[k]))]
    if not config:
        lines.append("No configuration was recorded.")
    if rest:
        lines += ([] if lines[-1] == "" else [""]) + ["Other settings: " + "; ".join(f"{k} = {_plain(config[k])}" for k in rest) + "."]
    total = _mapping(results.get("timing"), "results['timing']").get("total_seconds")
    if total is not None and math.isfinite(float(total)):
        lines += ["", f"The whole experiment took {format_number(float(total))} seconds."]
    return lines


def _empty(value: Any) -> bool:
    return isinstance(value, (str, list, tuple, Mapping)) and len(value) == 0


def _plain(value: Any) -> str:
    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool):
        return format_number(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        return ", ".join(f"{k} = {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _quality_lines(final: pd.DataFrame, enc: Optional[str], plain: Optional[str], methods: Sequence[str],
                   config: Mapping) -> List[str]:
    lines = ["## Model quality on held-out test patients", ""]
    def described(method: str) -> str:
        name = method.lower()
        if method == CENTRALIZED:
            return "all training patients pooled in one place (reference; not private)"
        if "encrypt" in name or "fhto" in name:
            return "federated; each hospital's update encrypted (CKKS), the server only sums ciphertexts"
        if "plaintext" in name or "fedavg" in name:
            return "federated; the server sees every hospital's update in the clear"
        return "federated"

    order = [m for m in methods] + ([CENTRALIZED] if (final["method"] == CENTRALIZED).any() else [])
    alone = final[final["kind"] == "hospital alone"]
    rows = []
    for method in order:
        rows.append([method, described(method),
                     *(_cell(_value(final, method, c)) for c in ("test_auc", "test_accuracy", "test_f1"))])
    if len(alone):
        rows.append([HOSPITALS_MEAN, f"each hospital trains only on its own patients; mean over {len(alone)} hospitals",
                     *(_cell(_value(final, HOSPITALS_MEAN, c)) for c in ("test_auc", "test_accuracy", "test_f1"))])
    if not rows:
        return lines + ["No final test metrics were recorded.", ""]
    lines += _table(["Model", "How it was trained", "Test AUC", "Test accuracy", "Test F1"], rows) + [""]

    sentences = []
    auc = {m: _value(final, m, "test_auc") for m in order}
    test_rows = config.get("rows", {}).get("test") if isinstance(config.get("rows"), Mapping) else None
    on = f" on {format_number(test_rows)} held-out test patients" if test_rows is not None else ""
    if enc is not None and plain is not None and not (math.isnan(auc[enc]) and math.isnan(auc[plain])):
        a, b = _pair(auc[enc], auc[plain])
        sentences.append(_sentence(f"{enc} reached a test AUC of {a} vs {b} for {plain}{on}."))
    elif enc is not None and not math.isnan(auc[enc]):
        sentences.append(_sentence(f"{enc} reached a test AUC of {format_number(auc[enc])}{on}."))
    if CENTRALIZED in auc and not math.isnan(auc[CENTRALIZED]):
        sentences.append(f"Training on all patients pooled in one place (centralized) reached {format_number(auc[CENTRALIZED])}.")
    if len(alone):
        a = alone["test_auc"].dropna() if "test_auc" in alone else pd.Series(dtype=float)
        mean = _value(final, HOSPITALS_MEAN, "test_auc")
        if len(a):
            sentences.append(f"Hospitals training alone reached {format_number(mean)} on average "
                             f"(from {format_number(a.min())} to {format_number(a.max())}).")
            if enc is not None and math.isfinite(auc[enc]) and math.isfinite(mean):
                diff = auc[enc] - mean
                if diff:
                    word = "higher" if diff > 0 else "lower"
                    sentences.append(f"The encrypted federated model's test AUC is {format_number(abs(diff))} {word} "
                                     f"than that of the average hospital training alone.")
                else:
                    sentences.append("The encrypted federated model's test AUC equals the average of hospitals "
                                     "training alone.")
    sentences.append("AUC is the probability that the model ranks a random patient with the outcome above one "
                     "without it (0.5 = chance, 1 = perfect).")
    return lines + [" ".join(sentences), ""]


def _weights_lines(results: Mapping, final: pd.DataFrame, enc: Optional[str], plain: Optional[str]) -> List[str]:
    wd = _mapping(results.get("weights_difference"), "results['weights_difference']")
    if "max_abs" not in wd or _isnan(wd["max_abs"]):
        return []
    d = float(wd["max_abs"])
    what = str(wd.get("description") or "max |w_encrypted − w_plaintext| after the last round")
    lines = ["## Encrypted vs plaintext federated learning", "",
             f"Largest difference between the two models' weights ({what}): **{format_number(d)}**.", ""]
    auc_gap = (abs(_value(final, enc, "test_auc") - _value(final, plain, "test_auc"))
               if enc is not None and plain is not None else math.nan)
    gap = ("" if not math.isfinite(auc_gap) else " (their test AUCs are identical)" if auc_gap == 0
           else f" (their test AUCs differ by {format_number(auc_gap)})")
    if d == 0:
        text = f"The two models are identical{gap}: encryption did not change the model."
    elif d < 1e-6:
        text = (f"A difference of this size is the rounding noise of CKKS, the approximate arithmetic used for "
                f"encryption; it is far too small to change a prediction, so encrypted FL computed the same model as "
                f"plaintext FedAvg{gap}.")
    elif d < 1e-3:
        text = (f"This is larger than typical CKKS rounding noise but still small relative to model weights{gap}; "
                f"it may come from the encryption precision or from a different set of hospitals reporting in some round.")
    else:
        text = (f"This is much larger than encryption rounding noise{gap}: the two runs did not compute the same "
                f"model. Check that they used the same seed and the same hospitals in each round, and the "
                f"encryption precision.")
    return lines + [text, ""]


def _overlaps(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _policy_lines(policy: pd.DataFrame, config: Mapping) -> List[str]:
    if policy.empty:
        return []
    lines = ["## Treatment policies", ""]
    rows = []
    for _, p in policy.iterrows():
        lo, hi = p.get("ci_low"), p.get("ci_high")
        ci = f"{_cell(lo)} to {_cell(hi)}" if pd.notna(lo) and pd.notna(hi) else "n/a"
        n = p.get("n_followed")
        rows.append([p["name"], _cell(p.get("value")), ci,
                     format_number(int(n)) if pd.notna(n) else "n/a"])
    lines += _table(["Policy", "Estimated value", "Confidence interval", "Patients whose treatment matched"], rows)
    lines.append("")
    sentences = []
    if "policy_value" in config:
        sentences.append(f"Value: {_plain(config['policy_value'])}.")
    valued = policy[policy["value"].notna()] if "value" in policy else policy.iloc[0:0]
    if len(valued):
        best = valued.loc[valued["value"].astype(float).idxmax()]
        sentences.append(f"The highest point estimate is for \"{best['name']}\" ({format_number(best['value'])}).")
        models = [i for i, name in valued["name"].items() if str(name).lower().startswith("model")]
        if models and {"ci_low", "ci_high"} <= set(valued.columns):
            m = valued.loc[models[0]]
            if pd.notna(m["ci_low"]) and pd.notna(m["ci_high"]):
                others = valued.drop(index=models[0])
                others = others[others["ci_low"].notna() & others["ci_high"].notna()]
                apart = [o["name"] for _, o in others.iterrows()
                         if not _overlaps((m["ci_low"], m["ci_high"]), (o["ci_low"], o["ci_high"]))]
                if len(others) and not apart:
                    sentences.append(f"The model policy's interval ({format_number(m['ci_low'])} to "
                                     f"{format_number(m['ci_high'])}) overlaps the intervals of all {len(others)} other "
                                     f"policies, so no difference between them has been demonstrated.")
                elif apart:
                    sentences.append(f"The model policy's interval ({format_number(m['ci_low'])} to "
                                     f"{format_number(m['ci_high'])}) does not overlap those of: "
                                     + ", ".join(f"\"{a}\"" for a in apart)
                                     + f"; it overlaps {len(others) - len(apart)} other(s).")
    lines += [" ".join(sentences), ""] if sentences else []
    lines += [
        "> **Caution.** Each value is an inverse-probability-weighted (IPW) estimate computed on held-out patients "
        "of a randomized trial: a policy is scored on the patients whose randomized treatment happened to match "
        "its recommendation, reweighted by the chance of that assignment. It estimates what would have happened "
        "under the policy; it is not a prospective evaluation and not a treatment recommendation. With few "
        "matching patients the intervals are wide. Overlapping intervals mean no difference between policies "
        "has been demonstrated.",
        "",
    ]
    return lines


def _view_kind(view: str) -> str:
    v = view.lower()
    if "update" in v:
        return "update"
    if "global" in v or "model" in v:
        return "global"
    return "other"


def _privacy_lines(privacy: pd.DataFrame) -> List[str]:
    lines = ["## Privacy audit (membership inference)", ""]
    if privacy.empty:
        return lines + ["No privacy audit was run.", ""]
    cols = [("view", "What the attacker sees"), ("target", "Target"), ("attack", "Attack"), ("auc", "AUC"),
            ("tpr_at_1pct_fpr", "TPR at 1% FPR"), ("tpr_at_10pct_fpr", "TPR at 10% FPR"), ("advantage", "Advantage")]
    rows = []
    for _, r in privacy.iterrows():
        row = [r.get(c) if c in ("view", "target", "attack") else _cell(r.get(c)) for c, _ in cols]
        row = ["" if (isinstance(v, float) and math.isnan(v)) or v is None else v for v in row]
        members = f"{format_number(r.get('members'))} / {format_number(r.get('nonmembers'))}"
        rows.append(row + [members])
    lines += _table([h for _, h in cols] + ["Members / non-members"], rows) + [""]
    lines += [
        "The audit asks whether someone who sees part of the training process can tell if a given patient's record "
        "was used for training. An AUC of 0.5 and an advantage of 0 mean the attacker does no better than "
        "guessing; the true-positive rate (TPR) at a low false-positive rate (FPR) shows whether a few patients can "
        "be identified confidently. A low score means these attacks found little; it does not prove that no attack "
        "can succeed.",
        "",
        "There are two different views:",
        "",
        "1. **An individual hospital's update** — what the server of *plaintext* federated learning sees every "
        "round. Encryption removes this view: with FHTO the server only holds the public key and adds ciphertexts "
        "it cannot read, and only the sum over all hospitals is ever decrypted, so no one sees a single "
        "hospital's update.",
        "2. **The global model** — decrypted after every round and shared with every participant, *with or without* "
        "encryption. Encryption does not lower this risk: the numbers for this view apply equally to encrypted and "
        "plaintext federated learning. Reducing it needs other measures (for example differential privacy, fewer "
        "rounds, or restricting who receives the model).",
        "",
    ]
    sentences = []
    for view, group in privacy.groupby("view", sort=False):
        g = group[group["auc"].notna()] if "auc" in group else group.iloc[0:0]
        if g.empty:
            continue
        top = g.loc[g["auc"].astype(float).idxmax()]
        detail = []
        if "tpr_at_1pct_fpr" in top and pd.notna(top["tpr_at_1pct_fpr"]):
            detail.append(f"TPR at 1% FPR {format_number(top['tpr_at_1pct_fpr'])}")
        if "advantage" in top and pd.notna(top["advantage"]):
            detail.append(f"advantage {format_number(top['advantage'])}")
        who = ", against ".join(str(top[c]) for c in ("attack", "target") if c in top and isinstance(top[c], str))
        kind = _view_kind(str(view))
        note = (" With encrypted FL nobody has this view." if kind == "update"
                else " This holds for encrypted FL too." if kind == "global" else "")
        sentences.append(f"For \"{view}\", the strongest attack{f' ({who})' if who else ''} reached AUC {format_number(top['auc'])}"
                         + (f" ({', '.join(detail)})" if detail else "") + "." + note)
    return lines + ([" ".join(sentences), ""] if sentences else [])


def _server_lines(metrics: pd.DataFrame, rates: pd.DataFrame, enc: Optional[str]) -> List[str]:
    lines = ["## What the server learns in plaintext", "",
             "Even with encryption, the aggregation server sees:", "",
             "- the round number;",
             "- which hospitals reported in each round (their ids);",
             "- each hospital's sample count n_i, used to weight the sum;",
             "- each hospital's update variance σ_i², used by the adaptive learning-rate scheduler;",
             "- the size and timing of every message.", ""]
    if enc is None:
        return lines
    sentences = []
    part = rates[(rates["method"] == enc) & rates["sigma2"].notna()]
    if len(part):
        sentences.append(f"In the {enc} run the σ_i² values it saw ranged from {format_number(part['sigma2'].min())} "
                         f"to {format_number(part['sigma2'].max())}.")
    runs = metrics[metrics["method"] == enc]
    failures = [(int(r["round"]), f) for _, r in runs.iterrows() for f in str(r["failures"] or "").split("; ") if f]
    if len(runs):
        if failures:
            shown = "; ".join(f"round {rnd}: {f}" for rnd, f in failures[:8]) + ("; …" if len(failures) > 8 else "")
            verb = "was" if len(failures) == 1 else "were"
            sentences.append(f"{_plural(len(failures), 'hospital update')} {verb} missing over "
                             f"{_plural(len(runs), 'round')} ({shown}); "
                             f"the sum then covered only the hospitals that reported.")
        else:
            sentences.append(f"No hospital update was missing over {_plural(len(runs), 'round')}.")
    return lines + ([" ".join(sentences), ""] if sentences else [])


def _cost_lines(metrics: pd.DataFrame, enc: Optional[str], plain: Optional[str]) -> List[str]:
    if enc is None:
        return []
    rows = metrics[metrics["method"] == enc]
    if rows.empty:
        return []
    sentences = []
    cols = [c for c in rows.columns if c.startswith("seconds_") and rows[c].notna().any()]
    if cols:
        total = float(rows[cols].sum(axis=1, min_count=1).median())
        sentences.append(f"A round of {enc} took a median of {format_number(total)} seconds (median per phase: "
                         + ", ".join(f"{c[len('seconds_'):]} {format_number(rows[c].median())}" for c in cols) + ").")
    if "bytes_upload" in rows and rows["bytes_upload"].notna().any():
        up = rows["bytes_upload"].mean()
        text = f"Uploads of all hospitals together were {format_bytes(up)} per round"
        if plain is not None:
            p = metrics.loc[metrics["method"] == plain, "bytes_upload"].dropna()
            if len(p) and p.mean() > 0:
                text += (f" vs {format_bytes(p.mean())} for {plain} "
                         f"({format_number(up / p.mean())} times as much)")
        sentences.append(text + ".")
    if not sentences:
        return []
    return ["## Cost", "", " ".join(sentences), ""]


def _scheduler_lines(results: Mapping, metrics: pd.DataFrame, rates: pd.DataFrame, final: pd.DataFrame) -> List[str]:
    sched = _mapping(results.get("scheduler_experiment"), "results['scheduler_experiment']")
    if not sched:
        return []
    noisy = sched.get("noisy_hospital")
    noise = _num(sched.get("noise"), "results['scheduler_experiment']['noise']")
    lines = ["## Adaptive learning-rate scheduler", ""]
    setup = "In a separate experiment"
    if noisy is not None:
        setup += f" the labels of {noisy} were made noisy"
        setup += f" (label noise {format_number(noise)})" if math.isfinite(noise) else ""
    setup += ", and the adaptive learning-rate scheduler was compared with a fixed learning rate."
    sentences = [setup]
    adaptive = rates[(rates["method"] == SCHEDULER_ADAPTIVE) & rates["lr"].notna()]
    if len(adaptive):
        means = adaptive.groupby("hospital", sort=False)["lr"].mean()
        smallest = str(means.idxmin())
        if noisy is not None and noisy in means.index and len(means) > 1:
            others = means.drop(index=noisy)
            word = ("a smaller" if means[noisy] < others.mean() else "a larger" if means[noisy] > others.mean()
                    else "the same")
            sentences.append(f"The adaptive scheduler gave {noisy} {word} learning rate — {format_number(means[noisy])} "
                             f"on average over the rounds vs {format_number(others.mean())} for the other hospitals.")
            sentences.append(f"The smallest average learning rate went to {smallest}"
                             + (" (the noisy hospital)." if smallest == noisy else f", not to the noisy hospital ({noisy})."))
        else:
            sentences.append(f"The smallest average learning rate went to {smallest} ({format_number(means.min())}).")
    s2 = _num(sched.get("sigma2_noisy_over_clean"), "results['scheduler_experiment']['sigma2_noisy_over_clean']")
    lr = _num(sched.get("lr_noisy_over_clean"), "results['scheduler_experiment']['lr_noisy_over_clean']")
    if noisy is not None and math.isfinite(s2) and math.isfinite(lr):
        effect = "larger" if s2 > 1 else "smaller" if s2 < 1 else "unchanged"
        sentences.append(
            f"Against a run on clean labels with the same seeds, the noisy labels made {noisy}'s updates {effect} "
            f"(mean σ² {format_number(s2)} times its clean value), so the formula gave it a learning rate "
            f"{format_number(lr)} times its clean-run value relative to the other hospitals."
        )
    la, lf = _last(metrics, SCHEDULER_ADAPTIVE, "val_loss"), _last(metrics, SCHEDULER_FIXED, "val_loss")
    if math.isfinite(la) or math.isfinite(lf):
        verdict = ""
        if math.isfinite(la) and math.isfinite(lf):
            verdict = (" — lower with the adaptive scheduler" if la < lf else " — lower with the fixed rate" if lf < la
                       else " — the same")
        a, b = _pair(la, lf)
        sentences.append(f"Final validation loss: {a} adaptive vs {b} fixed{verdict}.")
    ta, tf = _value(final, SCHEDULER_ADAPTIVE, "test_auc"), _value(final, SCHEDULER_FIXED, "test_auc")
    if math.isfinite(ta) or math.isfinite(tf):
        a, b = _pair(ta, tf)
        sentences.append(f"Test AUC: {a} adaptive vs {b} fixed.")
    return lines + [" ".join(sentences), ""]


_PLOT_CAPTIONS = {
    "validation_auc.png": "Validation AUC per round",
    "validation_loss.png": "Validation loss per round",
    "learning_rates.png": "Learning rate and update variance per hospital",
    "cost_per_round.png": "Seconds and bytes per round",
    "scheduler.png": "Scheduler experiment: adaptive vs fixed learning rate",
    "policy_value.png": "Estimated value of each treatment policy",
}


def _summary(results: Mapping, metrics: pd.DataFrame, rates: pd.DataFrame, final: pd.DataFrame, policy: pd.DataFrame,
             privacy: pd.DataFrame, enc: Optional[str], plain: Optional[str], plots: Sequence[str]) -> str:
    config = _mapping(results.get("config"), "results['config']")
    methods = list(_mapping(results.get("methods"), "results['methods']"))
    lines = ["# Federated treatment-optimization report", ""]
    lines += _config_lines(config, results) + [""]
    lines += _quality_lines(final, enc, plain, methods, config)
    lines += _weights_lines(results, final, enc, plain)
    lines += _policy_lines(policy, config)
    lines += _privacy_lines(privacy)
    lines += _server_lines(metrics, rates, enc)
    lines += _scheduler_lines(results, metrics, rates, final)
    lines += _cost_lines(metrics, enc, plain)
    if plots:
        lines += ["## Plots", ""] + [f"- [{_PLOT_CAPTIONS[p]}]({p})" for p in plots] + [""]
    lines += ["## Tables", "",
              "- [metrics.csv](metrics.csv): validation metrics, seconds and bytes per method and round",
              "- [learning_rates.csv](learning_rates.csv): learning rate and σ² per hospital and round",
              "- [final.csv](final.csv): test metrics of every model",
              "- [policy.csv](policy.csv) and [privacy.csv](privacy.csv): the tables above",
              "- [results.json](results.json): everything, machine-readable", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def write_report(results: Mapping, out_dir: str | os.PathLike) -> Dict[str, Path]:
    """Write the report folder for ``results`` into ``out_dir``.

    Parameters
    ----------
    results
        The experiment's results: ``methods`` (required; federated runs with ``history`` and
        ``final``), and optionally ``config``, ``centralized``, ``hospitals_alone``, ``policy``,
        ``privacy``, ``scheduler_experiment``, ``weights_difference`` and ``timing``.
    out_dir
        Folder to write into; created if missing. Files of the same names are overwritten.

    Returns
    -------
    dict
        File name (e.g. ``"metrics.csv"``, ``"validation_auc.png"``) to the path written. The
        CSVs, ``results.json`` and ``summary.md`` are always written (a missing section gives a
        table with its header only); a plot is written only when its data are present
        (``scheduler.png`` only with a scheduler experiment).

    Raises
    ------
    ParameterError
        ``results`` malformed; nothing is written then. The message names the offending key.
    """
    validate_results(results)
    metrics = metrics_table(results)
    rates = learning_rate_table(results)
    final = final_table(results)
    policy = policy_table(results)
    privacy = privacy_table(results)
    methods = list(results["methods"])
    enc, plain = pick_methods(methods)
    sched = _mapping(results.get("scheduler_experiment"), "results['scheduler_experiment']")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}

    def csv(name: str, table: pd.DataFrame) -> None:
        path = out / name
        table.to_csv(path, index=False)
        written[name] = path

    csv("metrics.csv", metrics)
    csv("learning_rates.csv", rates)
    csv("final.csv", final)
    csv("policy.csv", policy)
    csv("privacy.csv", privacy)
    path = out / "results.json"
    path.write_text(json.dumps(to_jsonable(results), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written["results.json"] = path

    curves = methods + [CENTRALIZED]
    lr_method = enc if enc is not None and (rates["method"] == enc).any() else next(
        (m for m in methods if (rates["method"] == m).any()), None)
    plots = {
        "validation_auc.png": lambda p: _plot_validation(metrics, curves, "val_auc", "validation AUC", p),
        "validation_loss.png": lambda p: _plot_validation(metrics, curves, "val_loss", "validation loss", p),
        "learning_rates.png": lambda p: _plot_learning_rates(rates, metrics, lr_method, p) if lr_method else None,
        "cost_per_round.png": lambda p: _plot_cost(metrics, enc, plain, p),
        "scheduler.png": lambda p: _plot_scheduler(
            metrics, rates, sched.get("noisy_hospital"), _num(sched.get("noise"), "noise"), p) if sched else None,
        "policy_value.png": lambda p: _plot_policy(policy, p),
    }
    made = []
    for name, plot in plots.items():
        path = out / name
        if plot(path) is not None:
            written[name] = path
            made.append(name)
        elif path.exists():
            path.unlink()  # a stale plot from an earlier report would contradict this one

    path = out / "summary.md"
    path.write_text(_summary(results, metrics, rates, final, policy, privacy, enc, plain, made), encoding="utf-8")
    written["summary.md"] = path
    return written
