"""The report folder of a study: CSV tables, ``results.json``, PNG plots and ``summary.md``.

:func:`write_report` reads a :class:`~fhto_native.study.results.StudyResults` and writes every
file the study has data for; a file of :data:`REPORT_FILES` that this study does not produce (no
scheduler experiment, no audit) is removed, so a folder never mixes two reports. Everything is
computed in memory first and each file is written through a temporary and a rename
(:func:`fhto_native._files.write_atomic`), so a refused input writes nothing and a reader never
sees half a file.

The tables live in :mod:`.tables`, the plots in :mod:`.plots`, the summary in :mod:`.summary` and
the number formatting (shared with the console) in :mod:`.format`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pandas as pd

from ..._files import make_folder, remove_file, write_atomic
from ...errors import InputTypeError, ParameterError
from ..policy import MODEL_POLICY
from ..results import StudyResults
from . import tables as _tables
from .format import format_bytes, format_number, format_table
from .plots import PLOT_FILES, render_plots
from .summary import TABLE_FILES, summary_markdown

__all__ = ["write_report", "REPORT_FILES", "format_number", "format_bytes", "format_table"]

_CSV: Tuple[Tuple[str, Callable[[StudyResults], Optional[pd.DataFrame]]], ...] = (
    ("metrics.csv", _tables.metrics_table),
    ("cost.csv", _tables.cost_table),
    ("learning_rates.csv", _tables.learning_rate_table),
    ("final.csv", _tables.final_table),
    ("policy.csv", _tables.policy_table),
    ("km_check.csv", _tables.km_table),
    ("privacy.csv", _tables.privacy_table),
    ("scheduler_runs.csv", _tables.scheduler_runs_table),
    ("scheduler_summary.csv", _tables.scheduler_summary_table),
    ("scheduler_effects.csv", _tables.scheduler_effects_table),
    ("privacy_frontier.csv", _tables.frontier_table),
    ("privacy_frontier_summary.csv", _tables.frontier_summary_table),
)

#: Every file :func:`write_report` may write. Files of these names that a study does not produce
#: are removed from the folder.
REPORT_FILES: Tuple[str, ...] = (
    *(name for name, _ in _CSV), "results.json", *PLOT_FILES, "summary.md",
)


def write_report(results: StudyResults, out: Path) -> List[Path]:
    """Write the report folder of ``results`` into ``out``.

    Parameters
    ----------
    results : StudyResults
        What the study measured.
    out : path-like
        The folder; created if missing. Files of :data:`REPORT_FILES` in it are replaced, and
        those this study does not produce are removed.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`REPORT_FILES`: ``metrics.csv``,
        ``cost.csv``, ``learning_rates.csv``, ``final.csv``, ``results.json`` and ``summary.md``
        always; the policy, Kaplan-Meier, privacy and scheduler tables and each plot when the
        study has their data.

    Raises
    ------
    InputTypeError
        ``results`` not a StudyResults, ``out`` not a path, or ``results.policy`` not a
        PolicyTable. Nothing is written then.
    ParameterError
        ``out`` exists and is not a folder. Nothing is written then.
    StorageError
        The system refused to create the folder or write or remove a file (the message names it).
    """
    if not isinstance(results, StudyResults):
        raise InputTypeError(f"results must be a StudyResults; got {type(results).__name__}")
    if not isinstance(out, (str, os.PathLike)):
        raise InputTypeError(f"out must be a folder path; got {type(out).__name__}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"out must be a folder; {folder} exists and is not one")

    files: Dict[str, Optional[bytes]] = {}
    for name, make in _CSV:
        table = make(results)
        files[name] = None if table is None else _tables.to_csv_bytes(table)
    text = json.dumps(results.to_json(), sort_keys=True, indent=1, allow_nan=False, ensure_ascii=False)
    files["results.json"] = (text + "\n").encode("utf-8")
    files.update(render_plots(results, MODEL_POLICY))
    plots = [name for name in PLOT_FILES if files[name] is not None]
    tables = [name for name in TABLE_FILES if files.get(name) is not None]
    files["summary.md"] = summary_markdown(results, plots, tables).encode("utf-8")

    make_folder(folder)
    written: List[Path] = []
    for name in REPORT_FILES:
        path = folder / name
        data = files[name]
        if data is None:
            remove_file(path)  # a stale file from an earlier report would contradict this one
            continue
        write_atomic(path, data)
        written.append(path)
    return written
