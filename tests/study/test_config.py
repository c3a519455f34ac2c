"""The study's options: one set of defaults, refusals instead of silently ignored options, and a
resume guard derived from the options themselves."""
from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from fhto_native.cli import build_parser, main
from fhto_native.errors import ParameterError
from fhto_native.fl.server import Server
from fhto_native.fl.scheduler import AdaptiveLR
from fhto_native.study.config import StudyConfig, guard_resume


def test_one_set_of_defaults():
    config, scheduler = StudyConfig(), AdaptiveLR()
    for name in ("eta0", "alpha", "patience", "decay", "min_delta"):
        assert getattr(config, name) == getattr(scheduler, name), name
    server = inspect.signature(Server).parameters
    assert config.batch_size == server["batch_size"].default
    assert config.local_epochs == server["local_epochs"].default
    # The CLI takes its defaults from the config, not from a copy.
    args = build_parser().parse_args(["run"])
    for name in ("rounds", "local_epochs", "batch_size", "eta0", "alpha", "patience", "decay", "early_stopping",
                 "preset", "seed", "scheduler_seeds", "label_noise", "dirichlet_alpha", "treatment", "out"):
        assert getattr(args, name) == getattr(config, name), name


def test_scheduler_arms_change_one_thing_at_a_time():
    config = StudyConfig(alpha=500.0, patience=3, decay=0.25)
    adaptive, decay_only, fixed = (config.scheduler(arm=a) for a in ("adaptive", "decay only", "fixed"))
    assert (adaptive.alpha, adaptive.decay) == (500.0, 0.25)
    assert (decay_only.alpha, decay_only.decay, decay_only.patience) == (0.0, 0.25, 3)
    assert (fixed.alpha, fixed.decay) == (0.0, 1.0)
    with pytest.raises(ParameterError, match="unknown scheduler arm"):
        config.scheduler(arm="cosine")


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(hospitals=1), "at least 2 hospitals"),
        (dict(dataset="csv", files=("a.csv",), features=("x",), outcome="y"), "federation of one hospital"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",), outcome="y", split="iid"),
         "each file is a hospital"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",), outcome="y", hospitals=5),
         "does not match the 2 files"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",), outcome="y", split_column="site"),
         "split-column"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",)), "needs the outcome"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",), outcome="y", time="t", event="e",
              horizon=5.0), "not both"),
        (dict(dataset="csv", files=("a.csv", "b.csv"), features=("x",), time="t"), "all of --time"),
        (dict(split="column"), "needs --split-column"),
        (dict(split="column", split_column="sex", hospitals=3), "--hospitals applies"),
        (dict(split_column="sex"), "applies to --split column"),
        (dict(horizon=100.0), "applies to --csv"),
        (dict(rounds=0), "rounds"),
        (dict(label_noise=(0.6,)), "label_noise"),
        (dict(seed=-1), "seed"),
        (dict(alpha=-1.0), "alpha"),
    ],
)
def test_options_that_do_not_apply_are_refused_not_ignored(options, message):
    with pytest.raises(ParameterError, match=message):
        StudyConfig(**options)


def test_csv_defaults_come_from_the_files():
    one_each = StudyConfig(dataset="csv", files=("a.csv", "b.csv", "c.csv"), features=("x",), outcome="y")
    assert one_each.resolved_split == "files" and one_each.resolved_hospitals is None
    split = StudyConfig(dataset="csv", files=("a.csv",), features=("x",), outcome="y", split="column",
                        split_column="institution")
    assert split.resolved_split == "column"
    assert StudyConfig().resolved_split == "dirichlet" and StudyConfig().resolved_hospitals == 5


def test_resume_guard_is_derived_from_the_options(tmp_path):
    free = {f.name for f in dataclasses.fields(StudyConfig) if not f.metadata.get("resume", True)}
    identity = StudyConfig().identity()
    # Every option is either part of the identity or marked free; nothing is forgotten.
    assert free | set(identity) == {f.name for f in dataclasses.fields(StudyConfig)}
    assert {"rounds", "out", "resume", "n_boot"} <= free and {"seed", "eta0", "hospitals", "preset"} <= set(identity)
    guard_resume(StudyConfig(out=str(tmp_path)), tmp_path)
    assert json.loads((tmp_path / "checkpoints" / "options.json").read_text()) == identity
    guard_resume(StudyConfig(out=str(tmp_path), rounds=80, resume=True), tmp_path)  # more rounds: fine
    with pytest.raises(ParameterError, match="early_stopping: 10 then, 3 now"):
        guard_resume(StudyConfig(out=str(tmp_path), early_stopping=3, resume=True), tmp_path)
    (tmp_path / "checkpoints" / "options.json").write_text("[1, 2]")
    with pytest.raises(ParameterError, match="unreadable"):
        guard_resume(StudyConfig(out=str(tmp_path), resume=True), tmp_path)


def test_cli_refuses_bad_noise_levels(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--label-noise", "a,b"])
    assert "comma-separated numbers" in capsys.readouterr().err
