"""The report's tables: pandas DataFrames read from :class:`~fhto_native.study.results.StudyResults`.

Each function returns one table of the report folder (``write_report`` writes it as CSV with
:func:`to_csv_bytes`), or ``None`` where the study did not run that part. Nothing here measures
anything: every number is a field of the results. Tables that a seeded study reproduces exactly
(``metrics.csv``, ``final.csv``, ``policy.csv``, ...) hold no timings, so the same seed gives
byte-identical files; the timings live in ``cost.csv``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from ...errors import InputTypeError
from ..results import (
    METRIC_NAMES,
    FrontierPoint,
    FrontierSummary,
    MethodKind,
    MethodResult,
    SchedulerEffect,
    SchedulerRun,
    SchedulerSummary,
    StudyResults,
)

__all__ = [
    "FLOAT_FORMAT",
    "PHASES",
    "BYTE_KINDS",
    "ATTACK_FIELDS",
    "ALONE_MEAN_KEY",
    "ALONE_MEAN_LABEL",
    "to_csv_bytes",
    "policy_rows",
    "attack_value",
    "alone_mean",
    "metrics_table",
    "cost_table",
    "learning_rate_table",
    "final_table",
    "policy_table",
    "km_table",
    "privacy_table",
    "scheduler_runs_table",
    "scheduler_summary_table",
    "scheduler_effects_table",
    "frontier_table",
    "frontier_summary_table",
]

#: How floats are written: 12 significant digits, so equal numbers give equal bytes.
FLOAT_FORMAT = "%.12g"
#: Round phases in table order (a run records those it has: plaintext runs do not encrypt).
PHASES = ("train", "encrypt", "aggregate", "decrypt", "evaluate")
#: Byte counts of a round in table order: all uploads together, and the aggregate.
BYTE_KINDS = ("upload", "sum")
#: The fields of an attack result (``fhto_native.study.privacy.AttackResult``) in table order.
ATTACK_FIELDS = (
    "attack", "auc", "auc_ci", "null_auc_95", "p_auc", "advantage", "advantage_ci", "null_advantage_95",
    "p_advantage", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci", "null_tpr_at_1pct_fpr_95", "false_positives_at_1pct", "tpr_at_10pct_fpr",
    "null_tpr_at_10pct_fpr_95", "members", "nonmembers", "distinguishable",
)
#: Fields of an attack result that are (low, high) intervals, written as two columns.
_INTERVALS = ("auc_ci", "advantage_ci", "tpr_at_1pct_fpr_ci")
#: The key and label of final.csv's row averaging the hospitals that trained alone.
ALONE_MEAN_KEY = "alone (mean)"
ALONE_MEAN_LABEL = "hospitals alone (mean)"
_POLICY_FIELDS = ("rows", "estimator", "propensity", "censoring", "good_outcome")


def to_csv_bytes(table: pd.DataFrame) -> bytes:
    """The CSV form of ``table``: no index, floats as :data:`FLOAT_FORMAT`, missing values empty,
    ``\\n`` line ends, UTF-8."""
    return table.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode("utf-8")


def _ordered(known: Sequence[str], found: Sequence[str]) -> List[str]:
    """``known`` names that occur in ``found``, in their order, then the others in order of appearance."""
    seen = set(found)
    out = [k for k in known if k in seen]
    for k in found:
        if k not in out:
            out.append(k)
    return out


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def policy_rows(policy: Any) -> List[Any]:
    """The rows of a policy table (``fhto_native.study.policy.PolicyTable``).

    Raises
    ------
    InputTypeError
        ``policy`` without the fields of a PolicyTable (the message names the missing ones).
    """
    missing = [name for name in _POLICY_FIELDS if not hasattr(policy, name)]
    if missing:
        raise InputTypeError(
            f"results.policy must be a PolicyTable (rows, estimator, propensity, censoring, good_outcome); "
            f"got {type(policy).__name__} without {', '.join(missing)}"
        )
    return list(policy.rows)


def attack_value(result: Any, name: str) -> Any:
    """A field of an attack result, ``None`` where this result does not have it."""
    return getattr(result, name, None)


def _history_frame(results: StudyResults, row_of) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for m in results.methods:
        for record in m.history:
            rows.append({"method": m.key, "label": m.label, "round": record.round, **row_of(record)})
    return rows


def metrics_table(results: StudyResults) -> pd.DataFrame:
    """One row per (method, round): the method's key and label, the round, the global model's
    validation metrics (``val_<metric>``, at threshold 0.5) and the base rate ``eta0``.

    No timings: a seeded study gives the same table, byte for byte.
    """
    found: List[str] = []

    def row_of(record) -> Dict[str, Any]:
        found.extend(record.validation)
        return {**{f"val_{k}": float(v) for k, v in record.validation.items()}, "eta0": float(record.eta0)}

    rows = _history_frame(results, row_of)
    metrics = [f"val_{k}" for k in _ordered(METRIC_NAMES, found)]
    table = pd.DataFrame(rows, columns=["method", "label", "round", *metrics, "eta0"])
    return table.astype({"round": "int64", **{c: "float64" for c in [*metrics, "eta0"]}})


def cost_table(results: StudyResults) -> pd.DataFrame:
    """One row per (method, round): seconds per phase (``seconds_<phase>``), their total, bytes
    per kind (``bytes_upload``: all uploads of the round together; ``bytes_sum``: the aggregate),
    how many hospitals reported and the failures (``"; "``-joined)."""
    phases: List[str] = []
    kinds: List[str] = []

    def row_of(record) -> Dict[str, Any]:
        phases.extend(record.seconds)
        kinds.extend(record.bytes)
        row: Dict[str, Any] = {f"seconds_{k}": float(v) for k, v in record.seconds.items()}
        row["seconds_total"] = float(sum(record.seconds.values())) if record.seconds else math.nan
        row.update({f"bytes_{k}": int(v) for k, v in record.bytes.items()})
        row["reported"] = int(record.reported)
        row["failures"] = "; ".join(record.failures)
        return row

    rows = _history_frame(results, row_of)
    seconds = [f"seconds_{p}" for p in _ordered(PHASES, phases)] + ["seconds_total"]
    nbytes = [f"bytes_{k}" for k in _ordered(BYTE_KINDS, kinds)]
    table = pd.DataFrame(rows, columns=["method", "label", "round", *seconds, *nbytes, "reported", "failures"])
    return table.astype({"round": "int64", "reported": "int64", **{c: "float64" for c in seconds},
                         **{c: "Int64" for c in nbytes}})


def learning_rate_table(results: StudyResults) -> pd.DataFrame:
    """One row per (method, round, hospital): the hospital's learning rate ``lr`` and its update
    variance ``sigma2`` (NaN where a round recorded only one of them)."""
    rows: List[Dict[str, Any]] = []
    for m in results.methods:
        for record in m.history:
            for hospital in _ordered(list(record.lr), list(record.sigma2)):
                rows.append({
                    "method": m.key, "round": record.round, "hospital": hospital,
                    "lr": _float(record.lr.get(hospital)), "sigma2": _float(record.sigma2.get(hospital)),
                })
    table = pd.DataFrame(rows, columns=["method", "round", "hospital", "lr", "sigma2"])
    return table.astype({"round": "int64", "lr": "float64", "sigma2": "float64"})


def _metric_columns(prefix: str) -> List[str]:
    return [f"{prefix}_{k}" for k in METRIC_NAMES]


def _final_row(m: MethodResult) -> Dict[str, Any]:
    row: Dict[str, Any] = {
        "key": m.key, "kind": m.kind.value, "label": m.label, "hospital": m.hospital, "rows": m.rows,
        "selected_round": m.selected_round, "rounds_run": m.rounds_run, "stopped_early": m.stopped_early,
        "converged": m.converged, "threshold": float(m.test.threshold),
    }
    for prefix, metrics in (("val", m.validation), ("test", m.test)):
        row.update({f"{prefix}_{k}": float(getattr(metrics, k)) for k in METRIC_NAMES})
    return row


def alone_mean(results: StudyResults) -> Optional[Dict[str, float]]:
    """Unweighted mean over the hospitals trained alone of every validation and test metric
    (``val_<metric>``, ``test_<metric>``); None without such hospitals."""
    alone = results.methods_of(MethodKind.ALONE)
    if not alone:
        return None
    out: Dict[str, float] = {}
    for prefix, attr in (("val", "validation"), ("test", "test")):
        for k in METRIC_NAMES:
            values = np.array([float(getattr(getattr(m, attr), k)) for m in alone], dtype=np.float64)
            values = values[np.isfinite(values)]
            out[f"{prefix}_{k}"] = float(values.mean()) if values.size else math.nan
    return out


def final_table(results: StudyResults) -> pd.DataFrame:
    """One row per method, in the study's order: key, kind, label, hospital (alone methods),
    training rows, selected round, rounds run, whether training stopped early and converged, the
    decision threshold, and validation and test metrics at that threshold. With hospitals trained
    alone, a last row (key ``"alone (mean)"``, kind ``"alone (mean)"``) holds the unweighted mean
    of their metrics."""
    rows = [_final_row(m) for m in results.methods]
    mean = alone_mean(results)
    if mean is not None:
        rows.append({"key": ALONE_MEAN_KEY, "kind": ALONE_MEAN_KEY, "label": ALONE_MEAN_LABEL, **mean})
    columns = ["key", "kind", "label", "hospital", "rows", "selected_round", "rounds_run", "stopped_early",
               "converged", "threshold", *_metric_columns("val"), *_metric_columns("test")]
    table = pd.DataFrame(rows, columns=columns)
    floats = ["threshold", *_metric_columns("val"), *_metric_columns("test")]
    table = table.astype({"rows": "Int64", "selected_round": "Int64", "rounds_run": "Int64",
                          "stopped_early": "boolean", "converged": "boolean", **{c: "float64" for c in floats}})
    return table


def policy_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """The treatment policies' estimated values: name, value, ci_low, ci_high, n_followed, then the
    good outcome valued, the estimator, the propensities and the censoring handling (the same on
    every row) and the model whose predictions the model policy follows. None without policies.

    Raises
    ------
    InputTypeError
        ``results.policy`` that is not a PolicyTable.
    """
    if results.policy is None:
        return None
    policy = results.policy
    rows = [
        {"name": str(r.name), "value": _float(r.value), "ci_low": _float(r.ci_low), "ci_high": _float(r.ci_high),
         "n_followed": int(r.n_followed), "good_outcome": str(policy.good_outcome),
         "estimator": str(policy.estimator), "propensity": str(policy.propensity),
         "censoring": str(policy.censoring), "model": results.policy_model}
        for r in policy_rows(policy)
    ]
    columns = ["name", "value", "ci_low", "ci_high", "n_followed", "good_outcome", "estimator", "propensity",
               "censoring", "model"]
    return pd.DataFrame(rows, columns=columns).astype(
        {"value": "float64", "ci_low": "float64", "ci_high": "float64", "n_followed": "int64"})


def km_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """Each Kaplan-Meier check: policy, scope, the Kaplan-Meier value, the policy estimate and its
    interval, and whether the Kaplan-Meier value lies inside. None without checks."""
    if not results.kaplan_meier:
        return None
    rows = [
        {"policy": c.policy, "scope": c.scope, "kaplan_meier": _float(c.kaplan_meier), "value": _float(c.value),
         "ci_low": _float(c.ci_low), "ci_high": _float(c.ci_high), "inside": bool(c.inside)}
        for c in results.kaplan_meier
    ]
    return pd.DataFrame(rows, columns=["policy", "scope", "kaplan_meier", "value", "ci_low", "ci_high", "inside"])


def _attack_columns(result: Any) -> Dict[str, Any]:
    names = list(ATTACK_FIELDS)
    if dataclasses.is_dataclass(result):
        names += [f.name for f in dataclasses.fields(result) if f.name not in names]
    row: Dict[str, Any] = {}
    for name in names:
        value = attack_value(result, name)
        if name in _INTERVALS or (isinstance(value, (tuple, list)) and len(value) == 2):
            low, high = value if isinstance(value, (tuple, list)) and len(value) == 2 else (None, None)
            row[f"{name}_low"], row[f"{name}_high"] = _float(low), _float(high)
        elif isinstance(value, (np.bool_, bool)):
            row[name] = bool(value)
        elif isinstance(value, (np.integer,)):
            row[name] = int(value)
        elif isinstance(value, (np.floating,)):
            row[name] = float(value)
        else:
            row[name] = value
    return row


def privacy_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """The membership-inference audit, one row per (view, target, attack): every field of the
    attack result, intervals as ``<field>_low`` and ``<field>_high``. None without an audit."""
    if results.audit is None:
        return None
    rows = [{"view": r.view, "target": r.target, **_attack_columns(r.result)} for r in results.audit.rows]
    columns: List[str] = ["view", "target"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    if not rows:
        for name in ATTACK_FIELDS:
            columns += [f"{name}_low", f"{name}_high"] if name in _INTERVALS else [name]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("members", "nonmembers", "false_positives_at_1pct"):
        if column in table and table[column].notna().all():
            table[column] = table[column].astype("int64")
    if "distinguishable" in table and table["distinguishable"].notna().all():
        table["distinguishable"] = table["distinguishable"].astype(bool)
    return table


def frontier_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """Every run of the privacy-utility frontier (epsilon, seed, test AUC, policy value and its
    interval, membership inference with intervals and chance). None when it did not run."""
    if results.privacy_frontier is None:
        return None
    return _dataclass_table(results.privacy_frontier.points, FrontierPoint)


def frontier_summary_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """The frontier per epsilon: means over the seeds and their range. None when it did not run."""
    if results.privacy_frontier is None:
        return None
    return _dataclass_table(results.privacy_frontier.summary, FrontierSummary)


def _dataclass_table(items: Sequence[Any], cls: type, extra: Sequence[str] = ()) -> pd.DataFrame:
    columns = [f.name for f in dataclasses.fields(cls)] + list(extra)
    rows = [{c: getattr(item, c) for c in columns} for item in items]
    return pd.DataFrame(rows, columns=columns)


def scheduler_runs_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """Every run of the scheduler experiment (arm, noise, seed, test AUC and loss, ...). None
    without the experiment."""
    if results.scheduler is None:
        return None
    return _dataclass_table(results.scheduler.runs, SchedulerRun)


def scheduler_summary_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """Mean and standard deviation over seeds per arm and noise level. None without the experiment."""
    if results.scheduler is None:
        return None
    return _dataclass_table(results.scheduler.summary, SchedulerSummary)


def scheduler_effects_table(results: StudyResults) -> Optional[pd.DataFrame]:
    """The paired differences between arms (first minus second) with their 95% intervals and
    whether the interval excludes zero. None without the experiment."""
    if results.scheduler is None:
        return None
    table = _dataclass_table(results.scheduler.effects, SchedulerEffect, extra=("demonstrated",))
    return table.astype({"demonstrated": bool}) if len(table) else table
