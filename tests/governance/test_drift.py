"""Tests for governance.monitoring.drift (pure numpy/scipy; no Django, no database)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from governance.monitoring.drift import (
    DEFAULT_DRIFT_THRESHOLDS,
    MISSING_LABEL,
    chi_square_test,
    combine_levels,
    feature_drift,
    infer_kind,
    ks_test,
    overall_level,
    performance_decay,
    population_stability_index,
    prediction_drift,
)

# A 0.5 sd mean shift of a normal feature has a *population* decile PSI of 0.2377 (see
# test_half_sd_shift_is_a_warn_under_the_default_psi_breach), just under the usual 0.25 breach
# line. The synthetic-drift tests use a 0.2 PSI breach so that shift is a breach.
THRESHOLDS = {"psi": {"warn": 0.1, "breach": 0.2}, "p_value": {"warn": 0.01, "breach": 0.001}}

N = 50_000


def make_frame(seed: int, n: int = N) -> pd.DataFrame:
    """Mixed-dtype frame: float, int, object, str, category and bool columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50.0, 10.0, n),
            "age": rng.integers(18, 80, n),
            "country": pd.Series(rng.choice(["FR", "DE", "IT"], n, p=[0.5, 0.3, 0.2])).astype(
                object
            ),
            "channel": pd.Series(rng.choice(["web", "app", "shop"], n)),
            "segment": pd.Categorical(
                rng.choice(["a", "b", "c"], n), categories=["a", "b", "c", "unused"]
            ),
            "is_member": rng.random(n) < 0.3,
        }
    )


# --------------------------------------------------------------------------------------------
# PSI against hand computations
# --------------------------------------------------------------------------------------------


def test_psi_numeric_two_bins_by_hand() -> None:
    reference = np.arange(1.0, 11.0)  # 1..10
    # Median of 1..10 with linear interpolation: position 0.5 * 9 = 4.5 -> 5 + 0.5 * (6 - 5) = 5.5
    # Bins (-inf, 5.5] and (5.5, inf): reference 5 | 5 -> shares 0.5 | 0.5.
    # Current: 0 is below the reference minimum and 100 above its maximum; the open-ended bins
    # still count them: {0,1,2,2,3,3,4,4} = 8 | {6,100} = 2 -> shares 0.8 | 0.2.
    current = np.array([0, 1, 2, 2, 3, 3, 4, 4, 6, 100], dtype=float)
    # PSI = (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5)
    #     = 0.3 ln 1.6 + 0.3 ln 2.5 = 0.3 ln 4 = 0.3 * 1.3862944 = 0.4158883
    result = population_stability_index(reference, current, bins=2)
    assert result.edges == (5.5,)
    assert [b.reference_count for b in result.bins] == [5, 5]
    assert [b.current_count for b in result.bins] == [8, 2]
    assert [b.label for b in result.bins] == ["(-inf, 5.5]", "(5.5, inf)"]
    assert result.value == pytest.approx(0.3 * math.log(4), rel=1e-12)
    assert result.value == pytest.approx(0.4158883, abs=1e-7)
    assert sum(b.contribution for b in result.bins) == pytest.approx(result.value)


def test_psi_numeric_empty_bin_is_floored_to_epsilon() -> None:
    reference = np.arange(1.0, 9.0)  # 1..8
    # Quartile cut points, position q * 7: 1.75 -> 2.75, 3.5 -> 4.5, 5.25 -> 6.25
    # Reference bins {1,2} {3,4} {5,6} {7,8} -> 0.25 each.
    current = np.array([1, 1, 1, 1, 3, 3, 7, 7], dtype=float)
    # Current shares 0.5, 0.25, 0, 0.25; the empty third bin is floored to epsilon = 1e-4:
    #   bin 1: (0.5 - 0.25) ln(0.5 / 0.25)     = 0.25 * 0.6931472            = 0.1732868
    #   bin 2: (0.25 - 0.25) ln(1)             = 0
    #   bin 3: (1e-4 - 0.25) ln(1e-4 / 0.25)   = -0.2499 * ln(4e-4)
    #                                          = -0.2499 * -7.8240460         = 1.9552291
    #   bin 4: 0
    #   PSI = 0.1732868 + 1.9552291 = 2.1285159
    result = population_stability_index(reference, current, bins=4, epsilon=1e-4)
    assert result.edges == pytest.approx((2.75, 4.5, 6.25))
    assert [b.current_count for b in result.bins] == [4, 2, 0, 2]
    assert result.bins[2].current_share == 0.0
    assert result.bins[2].contribution == pytest.approx(-0.2499 * math.log(4e-4))
    assert result.value == pytest.approx(2.1285159, abs=1e-6)


def test_psi_categorical_by_hand_names_new_category() -> None:
    reference = list("aaaaabbbcc")  # a 0.5, b 0.3, c 0.2
    current = list("aaaabbbbdd")  # a 0.4, b 0.4, c 0 (floored to 1e-4), d 0.2 (new)
    # a: (0.4 - 0.5) ln(0.4 / 0.5)       = -0.1 * -0.2231436       = 0.0223144
    # b: (0.4 - 0.3) ln(0.4 / 0.3)       =  0.1 *  0.2876821       = 0.0287682
    # c: (1e-4 - 0.2) ln(1e-4 / 0.2)     = -0.1999 * -7.6009025    = 1.5194204
    # d: (0.2 - 1e-4) ln(0.2 / 1e-4)     =  0.1999 *  7.6009025    = 1.5194204
    # PSI = 3.0899234
    result = population_stability_index(reference, current, kind="categorical")
    assert result.new_categories == ("d",)
    assert [b.label for b in result.bins] == ["a", "b", "c", "d"]
    assert [b.reference_count for b in result.bins] == [5, 3, 2, 0]
    assert [b.current_count for b in result.bins] == [4, 4, 0, 2]
    assert result.value == pytest.approx(3.0899234, abs=1e-6)


def test_psi_identical_samples_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    assert population_stability_index(x, x).value == 0.0


def test_quantile_edges_and_counts_match_a_naive_implementation() -> None:
    rng = np.random.default_rng(1)
    reference = np.round(rng.gamma(2.0, 2.0, 5_000), 1)  # rounded: plenty of ties
    current = np.round(rng.gamma(2.2, 2.0, 4_000), 1)
    result = population_stability_index(reference, current, bins=10)
    expected_edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    np.testing.assert_allclose(result.edges, expected_edges, rtol=1e-12)
    edges = np.asarray(result.edges)
    # Right-closed bins: a value equal to an edge belongs to the bin below it.
    naive_ref = np.bincount((reference[:, None] > edges).sum(axis=1), minlength=edges.size + 1)
    naive_cur = np.bincount((current[:, None] > edges).sum(axis=1), minlength=edges.size + 1)
    assert [b.reference_count for b in result.bins] == naive_ref.tolist()
    assert [b.current_count for b in result.bins] == naive_cur.tolist()


def test_psi_deduplicates_edges_of_tied_data() -> None:
    reference = np.array([0.0] * 80 + [1.0] * 20)
    # Decile positions q * 99: 9.9 ... 69.3 all fall inside the zeros -> 0.0; 79.2 sits between
    # s[79] = 0 and s[80] = 1 -> 0.2; 89.1 -> 1.0. Nine cut points collapse to three.
    result = population_stability_index(reference, np.array([0.0] * 50 + [1.0] * 50))
    assert result.edges == pytest.approx((0.0, 0.2, 1.0))
    assert [b.reference_count for b in result.bins] == [80, 0, 20, 0]
    assert [b.current_count for b in result.bins] == [50, 0, 50, 0]


def test_psi_numeric_counts_missing_values_in_their_own_bin() -> None:
    reference = np.arange(100.0)
    current = np.where(np.arange(100) % 4 == 0, np.nan, np.arange(100.0))
    result = population_stability_index(reference, current)
    assert result.bins[-1].label == MISSING_LABEL
    assert result.bins[-1].reference_count == 0
    assert result.bins[-1].current_count == 25
    assert sum(b.current_count for b in result.bins) == 100


# --------------------------------------------------------------------------------------------
# KS and chi-square against scipy
# --------------------------------------------------------------------------------------------


def test_ks_equals_scipy_exact_for_small_samples() -> None:
    rng = np.random.default_rng(2)
    reference = rng.integers(0, 20, 800).astype(float)  # ties on purpose
    current = rng.integers(1, 21, 600).astype(float)
    expected = stats.ks_2samp(reference, current)  # "auto" -> exact at this size
    result = ks_test(reference, current)
    assert result.method == "exact"
    assert result.statistic == expected.statistic
    assert result.p_value == expected.pvalue


@pytest.mark.parametrize("tied", [False, True])
def test_ks_equals_scipy_statistic_and_uses_asymptotic_p_for_large_samples(tied: bool) -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 1.0, 20_000)
    current = rng.normal(0.03, 1.0, 15_000)
    if tied:
        reference, current = np.round(reference, 1), np.round(current, 1)
    result = ks_test(reference, current)
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert result.method == "asymp"
    assert result.statistic == expected.statistic  # bit-identical, not approx
    en = 20_000 * 15_000 / 35_000
    assert result.p_value == stats.kstwobign.sf(math.sqrt(en) * result.statistic)
    # Limiting distribution vs scipy's finite-n one: close, and never the smaller p-value.
    assert result.p_value == pytest.approx(expected.pvalue, rel=0.02)
    assert result.p_value >= expected.pvalue


def test_ks_drops_nans() -> None:
    rng = np.random.default_rng(4)
    reference, current = rng.normal(size=300), rng.normal(0.2, 1.0, 200)
    with_nans = np.concatenate([current, [np.nan] * 7])
    expected = stats.ks_2samp(reference, current)
    result = ks_test(reference, with_nans)
    assert (result.statistic, result.p_value) == (expected.statistic, expected.pvalue)
    assert result.n_current == 200


def test_chi_square_equals_scipy_on_the_2_by_k_table() -> None:
    rng = np.random.default_rng(5)
    reference = rng.choice(["a", "b", "c", "d"], 3_000, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(["a", "b", "c", "e"], 2_000, p=[0.35, 0.35, 0.2, 0.1])
    labels = pd.Series(np.concatenate([reference, current]))
    side = pd.Series(["reference"] * 3_000 + ["current"] * 2_000)
    table = pd.crosstab(side, labels).to_numpy()
    assert table.shape == (2, 5)
    expected = stats.chi2_contingency(table)
    result = chi_square_test(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.dof == expected.dof == 4
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_two_categories_uses_scipy_default_yates_correction() -> None:
    reference = [True] * 70 + [False] * 30
    current = [True] * 55 + [False] * 45
    expected = stats.chi2_contingency([[70, 30], [55, 45]])
    result = chi_square_test(reference, current)
    assert result.dof == 1
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Feature drift
# --------------------------------------------------------------------------------------------


def test_clean_batch_is_ok() -> None:
    report = feature_drift(make_frame(10), make_frame(11), thresholds=THRESHOLDS)
    assert {name: f.level for name, f in report.features.items()} == dict.fromkeys(
        ["income", "age", "country", "channel", "segment", "is_member"], "ok"
    )
    assert report.level == "ok"
    assert report.drifted == []


def test_synthetic_drift_is_a_breach_and_the_rest_stays_ok() -> None:
    reference, current = make_frame(10), make_frame(11)
    current["income"] = current["income"] + 0.5 * 10.0  # mean + 0.5 sd
    new_country = np.random.default_rng(12).random(N) < 0.1
    current.loc[new_country, "country"] = "PL"  # 10 % of production from an unseen country
    report = feature_drift(reference, current, thresholds=THRESHOLDS)

    income = report.features["income"]
    assert (income.kind, income.test) == ("numeric", "ks")
    assert income.level == "breach"
    assert 0.2 < income.psi.value < 0.28
    assert income.p_value < 1e-100

    country = report.features["country"]
    assert (country.kind, country.test) == ("categorical", "chi2")
    assert country.level == "breach"
    assert country.psi.new_categories == ("PL",)
    assert "PL" in country.reason

    for name in ("age", "channel", "segment", "is_member"):
        assert report.features[name].level == "ok", name
    assert report.level == "breach"
    assert report.drifted == ["country", "income"]
    json.dumps(report.to_dict(), allow_nan=False)


def test_half_sd_shift_is_a_warn_under_the_default_psi_breach() -> None:
    # Population decile PSI of N(0.5, 1) against N(0, 1): sum over deciles of (q - p) ln(q / p)
    # with p = 0.1 and q the shifted normal's mass in each decile = 0.2377 < 0.25.
    cuts = np.concatenate([[-np.inf], stats.norm.ppf(np.arange(1, 10) / 10), [np.inf]])
    q = np.diff(stats.norm.cdf(cuts, loc=0.5))
    population_psi = float(((q - 0.1) * np.log(q / 0.1)).sum())
    assert population_psi == pytest.approx(0.2377, abs=1e-4)

    rng = np.random.default_rng(20)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 100_000)})
    current = pd.DataFrame({"x": rng.normal(0.5, 1.0, 100_000)})
    result = feature_drift(reference, current, thresholds=DEFAULT_DRIFT_THRESHOLDS).features["x"]
    assert result.psi.value == pytest.approx(population_psi, abs=0.01)
    assert result.level == "warn"


def test_significant_but_tiny_shift_on_a_huge_sample_is_not_an_alert() -> None:
    rng = np.random.default_rng(30)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 300_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1.0, 300_000)})
    result = feature_drift(reference, current, thresholds=THRESHOLDS).features["x"]
    assert result.p_value_level == "breach"  # p far below 0.001 ...
    assert result.psi_level == "ok"  # ... but PSI ~ 0.001
    assert result.level == "ok"


def test_large_psi_on_a_tiny_sample_needs_significance() -> None:
    rng = np.random.default_rng(33)
    reference = pd.DataFrame({"x": rng.normal(size=40)})
    current = pd.DataFrame({"x": rng.normal(size=40)})
    result = feature_drift(reference, current, thresholds=THRESHOLDS).features["x"]
    assert result.psi_level == "breach"  # small-sample PSI is biased upwards ...
    assert result.p_value_level == "ok"  # ... and the KS test sees no evidence
    assert result.level == "ok"


def test_missing_features_raise_a_value_error_naming_them() -> None:
    reference = make_frame(10, n=100)
    current = reference.drop(columns=["income", "segment"])
    with pytest.raises(ValueError, match="income, segment"):
        feature_drift(reference, current, thresholds=THRESHOLDS)
    with pytest.raises(ValueError, match="reference data: nope"):
        feature_drift(reference, reference, features=["age", "nope"], thresholds=THRESHOLDS)


def test_features_selects_columns() -> None:
    frame = make_frame(10, n=500)
    report = feature_drift(frame, frame, features=["age", "is_member"], thresholds=THRESHOLDS)
    assert list(report.features) == ["age", "is_member"]


def test_kinds_override_and_duplicate_columns() -> None:
    frame = make_frame(10, n=2_000)
    report = feature_drift(
        frame, frame, features=["age"], kinds={"age": "categorical"}, thresholds=THRESHOLDS
    )
    assert (report.features["age"].kind, report.features["age"].test) == ("categorical", "chi2")
    doubled = pd.concat([frame, frame[["age"]]], axis=1)
    with pytest.raises(ValueError, match="duplicate columns in the reference data: age"):
        feature_drift(doubled, frame, thresholds=THRESHOLDS)


def test_infer_kind() -> None:
    frame = make_frame(10, n=10)
    kinds = {name: infer_kind(frame[name]) for name in frame.columns}
    assert kinds == {
        "income": "numeric",
        "age": "numeric",
        "country": "categorical",
        "channel": "categorical",
        "segment": "categorical",
        "is_member": "categorical",
    }
    assert infer_kind(pd.Series([1, None], dtype="Int64")) == "numeric"
    assert infer_kind(pd.Series([True, None], dtype="boolean")) == "categorical"
    with pytest.raises(ValueError, match="datetime"):
        infer_kind(pd.Series(pd.date_range("2024-01-01", periods=3), name="when"))


def test_bool_and_category_dtypes_drift() -> None:
    reference, current = make_frame(10), make_frame(11)
    rng = np.random.default_rng(13)
    current["is_member"] = rng.random(N) < 0.55  # 30 % -> 55 % members, PSI ~ 0.26
    # The category dtype gains a category in production that the reference dtype never had.
    current["segment"] = pd.Categorical(rng.choice(["a", "b", "c", "z"], N, p=[0.3, 0.3, 0.2, 0.2]))
    report = feature_drift(reference, current, thresholds=THRESHOLDS)

    member = report.features["is_member"]
    assert member.kind == "categorical"
    assert [b.label for b in member.psi.bins] == ["False", "True"]
    assert member.chi2 is not None and member.chi2.dof == 1
    assert member.level == "breach"

    segment = report.features["segment"]
    assert segment.kind == "categorical"
    # The unused "unused" category has no rows on either side and is left out of the table.
    # Reference categories come first (most frequent first), production-only ones last.
    labels = [b.label for b in segment.psi.bins]
    assert sorted(labels[:3]) == ["a", "b", "c"] and labels[3] == "z"
    assert segment.psi.new_categories == ("z",)
    assert segment.chi2 is not None and segment.chi2.dof == 3
    assert segment.level == "breach"


def test_category_dtype_against_object_batch_is_clean() -> None:
    reference, current = make_frame(10), make_frame(11)
    current["segment"] = current["segment"].astype(str).astype(object)
    current["is_member"] = current["is_member"].astype("boolean")
    report = feature_drift(reference, current, thresholds=THRESHOLDS)
    assert report.features["segment"].level == "ok"
    assert report.features["is_member"].level == "ok"


def test_rising_missing_rate_is_drift_even_if_values_are_unchanged() -> None:
    reference, current = make_frame(10), make_frame(11)
    gone = np.random.default_rng(14).random(N) < 0.3
    current["income"] = current["income"].mask(gone)
    current["country"] = current["country"].mask(gone)
    report = feature_drift(reference, current, thresholds=THRESHOLDS)

    income = report.features["income"]
    assert income.ks is not None and income.ks.p_value > 0.01  # present values did not move
    assert income.missing_test is not None
    assert income.missing_share_current == pytest.approx(0.3, abs=0.01)
    assert income.psi.bins[-1].label == MISSING_LABEL
    assert income.level == "breach"

    country = report.features["country"]
    assert MISSING_LABEL in country.psi.new_categories
    assert country.level == "breach"


def test_threshold_shape_is_validated() -> None:
    frame = make_frame(10, n=100)
    with pytest.raises(ValueError, match="p_value"):
        feature_drift(frame, frame, thresholds={"psi": {"warn": 0.1, "breach": 0.25}})
    with pytest.raises(ValueError, match="psi.warn <= psi.breach"):
        feature_drift(
            frame,
            frame,
            thresholds={
                "psi": {"warn": 0.3, "breach": 0.2},
                "p_value": {"warn": 0.01, "breach": 0.001},
            },
        )


# --------------------------------------------------------------------------------------------
# Prediction drift
# --------------------------------------------------------------------------------------------


def test_prediction_drift_on_scores() -> None:
    rng = np.random.default_rng(40)
    reference = rng.beta(2, 5, 20_000)
    clean = prediction_drift(reference, rng.beta(2, 5, 20_000), THRESHOLDS)
    shifted = prediction_drift(reference, rng.beta(3, 4, 20_000), THRESHOLDS)
    assert (clean.kind, clean.test, clean.level) == ("numeric", "ks", "ok")
    assert (shifted.kind, shifted.level) == ("numeric", "breach")


def test_prediction_drift_on_class_labels() -> None:
    rng = np.random.default_rng(41)
    reference = rng.choice([0, 1, 2], 20_000, p=[0.6, 0.3, 0.1])
    clean = prediction_drift(
        reference, rng.choice([0, 1, 2], 20_000, p=[0.6, 0.3, 0.1]), THRESHOLDS
    )
    shifted = prediction_drift(
        reference, rng.choice([0, 1, 2], 20_000, p=[0.3, 0.3, 0.4]), THRESHOLDS
    )
    assert (clean.kind, clean.test, clean.level) == ("categorical", "chi2", "ok")
    assert shifted.level == "breach"
    assert [b.label for b in shifted.psi.bins] == ["0", "1", "2"]


# --------------------------------------------------------------------------------------------
# Performance decay
# --------------------------------------------------------------------------------------------

CRITERIA = [
    {"metric": "accuracy", "threshold": 0.8, "direction": "higher"},
    {"metric": "f1", "threshold": 0.75},
    {"metric": "roc_auc", "threshold": 0.8},
]


def _labelled_batch(seed: int, flip_rate: float, n: int = 20_000):
    rng = np.random.default_rng(seed)
    y_true = (rng.random(n) < 0.4).astype(int)
    flips = rng.random(n) < flip_rate
    y_pred = np.where(flips, 1 - y_true, y_true)
    # Scores that agree with the (possibly flipped) prediction, so AUC decays with accuracy.
    y_score = np.clip(y_pred * 0.6 + rng.normal(0.2, 0.15, n), 0.0, 1.0)
    return y_true, y_pred, y_score


def _validated() -> dict[str, float]:
    y_true, y_pred, y_score = _labelled_batch(50, flip_rate=0.05)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1": skm.f1_score(y_true, y_pred),
        "roc_auc": skm.roc_auc_score(y_true, y_score),
    }


def test_performance_clean_batch_is_ok() -> None:
    y_true, y_pred, y_score = _labelled_batch(51, flip_rate=0.05)
    report = performance_decay(
        _validated(), y_true, y_pred, criteria=CRITERIA, task="classification", y_score=y_score
    )
    assert [m.level for m in report.metrics] == ["ok", "ok", "ok"]
    assert report.level == "ok"
    accuracy = report.metrics[0]
    assert accuracy.value == skm.accuracy_score(y_true, y_pred)
    assert accuracy.drop is not None and abs(accuracy.drop) < 0.01


def test_label_flips_breach_the_acceptance_threshold() -> None:
    y_true, y_pred, y_score = _labelled_batch(52, flip_rate=0.25)
    report = performance_decay(
        _validated(), y_true, y_pred, criteria=CRITERIA, task="classification", y_score=y_score
    )
    accuracy = report.metrics[0]
    assert accuracy.value == pytest.approx(0.75, abs=0.01)
    assert accuracy.level == "breach"
    assert "acceptance threshold" in accuracy.reason
    assert report.metrics[1].value == pytest.approx(skm.f1_score(y_true, y_pred), rel=1e-12)
    assert report.level == "breach"
    json.dumps(report.to_dict(), allow_nan=False)


def test_drop_levels_apply_while_the_threshold_still_holds() -> None:
    validated = _validated()  # accuracy ~ 0.95
    criteria = [{"metric": "accuracy", "threshold": 0.8}]
    warn = performance_decay(
        validated, *_labelled_batch(53, 0.08)[:2], criteria=criteria, task="classification"
    )
    breach = performance_decay(
        validated, *_labelled_batch(54, 0.12)[:2], criteria=criteria, task="classification"
    )
    warn_drop, breach_drop = warn.metrics[0].drop, breach.metrics[0].drop
    assert warn_drop is not None and breach_drop is not None
    assert 0.02 <= warn_drop < 0.05 and warn.level == "warn"
    assert breach_drop >= 0.05 and (breach.metrics[0].value or 0) > 0.8
    assert breach.level == "breach"
    lenient = performance_decay(
        validated,
        *_labelled_batch(54, 0.12)[:2],
        criteria=[{"metric": "accuracy", "threshold": 0.8}],
        task="classification",
        thresholds={"drop": {"warn": 0.05, "breach": 0.2}},
    )
    assert lenient.level == "warn"


def test_regression_metrics_match_sklearn_and_lower_is_better() -> None:
    rng = np.random.default_rng(60)
    y_true = rng.normal(100.0, 20.0, 5_000)
    y_pred = y_true + rng.normal(0.0, 8.0, 5_000)
    criteria = [
        # Drop limits are in the metric's units, so an error metric carries its own.
        {"metric": "mae", "threshold": 7.0, "drop": {"warn": 2.0, "breach": 3.0}},
        {"metric": "rmse", "threshold": 10.0, "direction": "lower"},
        {"metric": "r2", "threshold": 0.8},
    ]
    validated = {"mae": 4.0, "rmse": 5.0, "r2": 0.85}
    report = performance_decay(validated, y_true, y_pred, criteria=criteria, task="regression")
    mae, rmse, r2 = report.metrics
    assert mae.value == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert rmse.value == pytest.approx(skm.root_mean_squared_error(y_true, y_pred), rel=1e-12)
    assert r2.value == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-12)
    # mae ~ 8 sqrt(2 / pi) = 6.38: under the 7.0 threshold, 2.38 worse than validated -> warn
    assert mae.value is not None and mae.drop == pytest.approx(mae.value - 4.0)
    assert mae.level == "warn"
    # rmse ~ 8: under the 10.0 threshold, but 3 worse than validated (default limit 0.05)
    assert rmse.level == "breach"
    # r2 ~ 1 - 8^2 / 20^2 = 0.84: above 0.8 and ~0.01 below validated -> ok
    assert r2.level == "ok"
    assert report.level == "breach"


def test_performance_configuration_errors() -> None:
    y = np.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match="y_score"):
        performance_decay({}, y, y, criteria=[{"metric": "roc_auc"}], task="classification")
    with pytest.raises(ValueError, match="regression"):
        performance_decay({}, y, y, criteria=[{"metric": "mae"}], task="classification")
    with pytest.raises(ValueError, match="better when higher"):
        performance_decay(
            {}, y, y, criteria=[{"metric": "accuracy", "direction": "lower"}], task="classification"
        )


def test_undefined_metric_on_a_batch_is_a_warn() -> None:
    y_true = np.ones(50, dtype=int)  # one class only: ROC AUC is undefined
    report = performance_decay(
        {"roc_auc": 0.9},
        y_true,
        y_true,
        criteria=[{"metric": "roc_auc", "threshold": 0.8}],
        task="classification",
        y_score=np.linspace(0, 1, 50),
    )
    assert report.metrics[0].value is None
    assert report.level == "warn"


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------


def test_overall_level_is_the_worst() -> None:
    assert overall_level([]) == "ok"
    assert overall_level(["ok", "warn", "ok"]) == "warn"
    assert overall_level(iter(["warn", "breach", "ok"])) == "breach"
    with pytest.raises(ValueError, match="unknown level"):
        overall_level(["ok", "red"])


def test_combine_levels_takes_the_weaker_signal() -> None:
    assert combine_levels("breach", "breach") == "breach"
    assert combine_levels("breach", "warn") == "warn"
    assert combine_levels("warn", "breach") == "warn"
    assert combine_levels("breach", "ok") == "ok"
    assert combine_levels("ok", "breach") == "ok"
