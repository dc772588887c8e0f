"""Audit reports: verdicts, sentences and edge cases on hand-made data, hand-computed numbers."""

import json

import numpy as np
import pandas as pd
import pytest

from governance.fairness.engine import compute_frame
from governance.fairness.rules import (
    MISSING,
    build_report,
    decisions_from_scores,
    metric_label,
    normalize_config,
    prepare_sensitive_features,
    run_audit,
)

FOUR_FIFTHS = {
    "metric": "selection_rate",
    "kind": "ratio",
    "against": "reference",
    "min": 0.8,
    "name": "four-fifths rule",
}
EQUAL_OPPORTUNITY = {
    "metric": "true_positive_rate",
    "kind": "difference",
    "against": "between_groups",
    "max": 0.1,
    "name": "equal opportunity rule",
}


def rows(group, n, selected, positives, true_positives, **extra):
    """``n`` rows of ``group``: ``selected`` predicted 1, ``positives`` actually 1, of which
    ``true_positives`` are among the selected."""
    y_pred = [1] * selected + [0] * (n - selected)
    y_true = [1] * true_positives + [0] * (selected - true_positives)
    y_true += [1] * (positives - true_positives)
    y_true += [0] * (n - len(y_true))
    return pd.DataFrame({"sex": group, "y_true": y_true, "y_pred": y_pred, **extra})


def hiring(female_selected=17, other=None):
    """male: 100 rows, 57 selected (0.57), 60 positives of which 57 selected (TPR 0.95);
    female: 50 rows, ``female_selected`` selected, 20 positives of which 17 selected (0.85)."""
    parts = [rows("male", 100, 57, 60, 57), rows("female", 50, female_selected, 20, 17)]
    if other is not None:
        parts.append(other)
    return pd.concat(parts, ignore_index=True)


def audit(data, rules, **config):
    config = {"sensitive_features": ["sex"], "rules": rules, "min_group_size": 10, **config}
    report = run_audit(data, data["y_true"].to_numpy(), data["y_pred"].to_numpy(), config)
    json.dumps(report, allow_nan=False)  # must be plain JSON: no NaN, no numpy types
    return report


def only_verdict(report):
    [feature_set] = report["feature_sets"]
    [verdict] = feature_set["verdicts"]
    return verdict


def test_four_fifths_rule_fails_with_hand_computed_numbers():
    verdict = only_verdict(audit(hiring(), [FOUR_FIFTHS]))
    assert verdict["verdict"] == "fail"
    assert verdict["value"] == pytest.approx(0.34 / 0.57, abs=1e-15)
    assert verdict["low"] == {"group": "female", "value": 0.34}
    assert verdict["high"] == {"group": "male (reference)", "value": 0.57}
    assert verdict["sentence"] == (
        "Selection rate for female is 0.34 against 0.57 for male (reference): ratio 0.60, "
        "below 0.80 — fails the four-fifths rule."
    )


def test_four_fifths_rule_passes_and_tolerates_float_noise_at_the_bound():
    verdict = only_verdict(audit(hiring(female_selected=23), [FOUR_FIFTHS]))
    assert verdict["verdict"] == "pass"
    assert verdict["sentence"].endswith(
        "ratio 0.81, at or above 0.80 — passes the four-fifths rule."
    )
    # 0.456 / 0.57 is 0.7999999999999999 in floating point: exactly four fifths, so it passes.
    data = pd.concat([rows("male", 1000, 570, 600, 570), rows("female", 1000, 456, 600, 456)])
    verdict = only_verdict(audit(data, [FOUR_FIFTHS]))
    assert verdict["value"] != 0.8
    assert verdict["verdict"] == "pass"


def test_failing_value_that_rounds_to_the_bound_is_printed_with_more_digits():
    data = pd.concat([rows("male", 1000, 570, 600, 570), rows("female", 1000, 455, 600, 455)])
    verdict = only_verdict(audit(data, [FOUR_FIFTHS]))
    assert verdict["verdict"] == "fail"
    assert "ratio 0.798, below 0.80" in verdict["sentence"]


def test_difference_rule_between_groups():
    verdict = only_verdict(audit(hiring(), [EQUAL_OPPORTUNITY]))
    # 0.95 - 0.85 is 0.09999999999999998: exactly the bound, so it passes.
    assert verdict["verdict"] == "pass"
    assert verdict["sentence"] == (
        "True positive rate for female is 0.85 against 0.95 for male: difference 0.10, "
        "at or below 0.10 — passes the equal opportunity rule."
    )


def test_ratio_to_overall_names_the_driving_group():
    rule = {**FOUR_FIFTHS, "against": "overall", "name": "overall parity"}
    verdict = only_verdict(audit(hiring(), [rule]))
    overall = (57 + 17) / 150
    assert verdict["value"] == pytest.approx(0.34 / overall, abs=1e-15)
    assert verdict["verdict"] == "fail"
    assert verdict["sentence"].startswith(
        "Selection rate for female is 0.34 against 0.49 overall: ratio 0.69, below 0.80"
    )
    assert verdict["sentence"].endswith("fails the rule 'overall parity'.")


def test_small_group_is_excluded_and_named():
    other = rows("other", 5, 1, 2, 1)
    report = audit(hiring(other=other), [FOUR_FIFTHS])
    verdict = only_verdict(report)
    assert verdict["verdict"] == "fail"
    assert verdict["excluded_groups"] == [{"group": "other", "count": 5}]
    assert verdict["sentence"].endswith("Excluded for fewer than 10 rows: other (n=5).")
    [feature_set] = report["feature_sets"]
    statuses = {g["group"]: g["status"] for g in feature_set["groups"]}
    assert statuses == {"female": "ok", "male": "ok", "other": "insufficient data"}


def test_insufficient_data_when_too_few_groups_are_large_enough():
    verdict = only_verdict(audit(hiring(), [FOUR_FIFTHS, EQUAL_OPPORTUNITY][:1], min_group_size=60))
    assert verdict["verdict"] == "insufficient data"
    assert verdict["value"] is None
    assert verdict["sentence"] == (
        "Selection rate cannot be compared: no other group has at least 60 rows — the "
        "four-fifths rule is not evaluated. Excluded for fewer than 60 rows: female (n=50)."
    )
    between = only_verdict(audit(hiring(), [EQUAL_OPPORTUNITY], min_group_size=60))
    assert between["verdict"] == "insufficient data"
    assert "only 1 group(s) have at least 60 rows" in between["reason"]


def test_small_reference_group_gives_insufficient_data():
    rule = {**FOUR_FIFTHS}
    report = audit(hiring(), [rule], reference_group="female", min_group_size=60)
    verdict = only_verdict(report)
    assert verdict["verdict"] == "insufficient data"
    assert "the reference group female has 50 rows" in verdict["sentence"]


def test_undefined_value_never_passes_or_fails():
    other = rows("other", 20, 3, 0, 0)  # no actual positives: TPR is 0/0
    report = audit(hiring(other=other), [EQUAL_OPPORTUNITY])
    verdict = only_verdict(report)
    assert verdict["verdict"] == "undefined"
    assert verdict["reason"] == "no positives in group"
    assert verdict["undefined_groups"] == [{"group": "other", "reason": "no positives in group"}]
    assert verdict["value"] is None
    assert verdict["sentence"] == (
        "True positive rate is undefined for other (no positives in group) — the equal "
        "opportunity rule is not evaluated."
    )
    [feature_set] = report["feature_sets"]
    cell = next(g for g in feature_set["groups"] if g["group"] == "other")["metrics"]
    assert cell["true_positive_rate"] == {
        "value": 0.0,
        "ci": None,
        "undefined": True,
        "undefined_reason": "no positives in group",
    }
    # Disparities skip the undefined group instead of treating its 0.0 as a real rate.
    between = feature_set["disparities"]["true_positive_rate"]["difference"]["between_groups"]
    assert between["undefined_groups"] == ["other"]
    assert between["groups_compared"] == ["female", "male"]
    assert between["value"] == pytest.approx(0.1, abs=1e-15)


def test_zero_rates_everywhere_make_a_ratio_undefined():
    data = pd.concat([rows("male", 20, 0, 5, 0), rows("female", 20, 0, 5, 0)])
    verdict = only_verdict(audit(data, [{**FOUR_FIFTHS, "against": "between_groups"}]))
    assert verdict["verdict"] == "undefined"
    assert "all compared values are 0" in verdict["reason"]


def test_missing_values_become_an_explicit_group():
    data = hiring()
    data.loc[[0, 1, 100], "sex"] = [np.nan, None, ""]
    data.loc[2, "sex"] = "   "
    report = audit(data, [FOUR_FIFTHS], min_group_size=1)
    [feature_set] = report["feature_sets"]
    counts = {g["group"]: g["count"] for g in feature_set["groups"]}
    assert counts == {"female": 49, "male": 97, MISSING: 4}


def test_prepare_sensitive_features_keeps_clean_columns_and_labels_numbers():
    df = pd.DataFrame({"band": [1.0, 2.0, np.nan], "sex": ["f", "m", "f"], "x": [1, 2, 3]})
    prepared = prepare_sensitive_features(df, ["band", "sex"])
    assert list(prepared.columns) == ["band", "sex"]
    assert prepared["band"].tolist() == ["1", "2", MISSING]
    assert prepared["sex"].tolist() == ["f", "m", "f"]
    with pytest.raises(ValueError, match="'nope' is not in the data"):
        prepare_sensitive_features(df, ["nope"])


def test_too_many_categories_names_the_column():
    df = pd.DataFrame({"zip": [f"{i:05d}" for i in range(60)], "sex": ["f", "m"] * 30})
    with pytest.raises(
        ValueError, match="'zip' has 60 distinct values, more than max_categories=50"
    ):
        prepare_sensitive_features(df, ["sex", "zip"])
    assert prepare_sensitive_features(df, ["zip"], max_categories=60).shape == (60, 1)


def test_decisions_from_scores():
    decisions = decisions_from_scores([0.1, 0.5, 0.49, 0.9], 0.5)
    assert decisions.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="NaN"):
        decisions_from_scores([0.1, np.nan], 0.5)
    with pytest.raises(ValueError, match="threshold"):
        decisions_from_scores([0.1], float("nan"))


def test_disparities_equal_fairlearn_semantics_and_intervals():
    data = hiring(other=rows("other", 30, 9, 10, 6))
    sf = data[["sex"]]
    frame = compute_frame(
        data["y_true"],
        data["y_pred"],
        sf,
        ["selection_rate", "true_positive_rate"],
        n_boot=30,
        ci_quantiles=[0.05, 0.95],
        random_state=1,
    )
    report = build_report(frame, {"min_group_size": 1})
    for metric in frame.metrics:
        for kind in ("difference", "ratio"):
            for against, method in (
                ("between_groups", "between_groups"),
                ("overall", "to_overall"),
            ):
                entry = report["disparities"][metric][kind][against]
                expected = getattr(frame, kind)(method)[metric]
                assert entry["value"] == expected
                intervals = getattr(frame, f"{kind}_ci")(method)
                assert entry["ci"] == [q[metric] for q in intervals]
    group = next(g for g in report["groups"] if g["group"] == "female")
    ci = group["metrics"]["selection_rate"]["ci"]
    assert ci == [q.loc["female", "selection_rate"] for q in frame.by_group_ci]
    assert report["bootstrap"] == {"n_boot": 30, "ci_quantiles": [0.05, 0.95], "seed": 1}
    reference = report["disparities"]["selection_rate"]["ratio"]["reference"]
    assert reference["value"] == pytest.approx(0.3 / 0.57, abs=1e-15)
    assert reference["low"]["group"] == "other"
    lo, hi = reference["ci"]
    assert lo < reference["value"] < hi


def test_intersections_and_reference_group_choices():
    data = hiring()
    data["age"] = np.where(np.arange(len(data)) % 3 == 0, "old", "young")
    config = {
        "sensitive_features": ["sex", ["sex", "age"]],
        "rules": [FOUR_FIFTHS],
        "min_group_size": 5,
        "reference_group": {"sex": "female", "sex & age": ["male", "old"]},
    }
    report = run_audit(data, data["y_true"], data["y_pred"], config)
    by_key = {fs["key"]: fs for fs in report["feature_sets"]}
    assert set(by_key) == {"sex", "sex & age"}
    assert by_key["sex"]["reference_group"]["group"] == "female"
    assert by_key["sex & age"]["reference_group"] == {
        "group": "male, old",
        "chosen_by": "configured",
        "note": None,
    }
    levels = [g["levels"] for g in by_key["sex & age"]["groups"]]
    assert {"sex": "female", "age": "old"} in levels
    fallback = run_audit(data, data["y_true"], data["y_pred"], {**config, "reference_group": "x"})
    note = fallback["feature_sets"][0]["reference_group"]
    assert note["group"] == "male"
    assert "'x' is not in sex" in note["note"]
    assert report["summary"] == {"pass": 0, "fail": 2, "insufficient data": 0, "undefined": 0}


def test_config_validation_and_defaults():
    config = normalize_config({"sensitive_features": ["sex"], "rules": [FOUR_FIFTHS], "n_boot": 10})
    assert config["metrics"] == ["selection_rate"]
    assert config["ci_quantiles"] == [0.025, 0.975]
    assert config["min_group_size"] == 30
    with pytest.raises(ValueError, match="min or a max"):
        normalize_config({"sensitive_features": ["sex"], "rules": [{"metric": "accuracy"}]})
    with pytest.raises(ValueError, match="kind must be"):
        normalize_config({"sensitive_features": ["sex"], "rules": [{**FOUR_FIFTHS, "kind": "x"}]})
    with pytest.raises(ValueError, match="non-empty list"):
        normalize_config({"sensitive_features": "sex", "metrics": ["accuracy"]})


def test_metric_labels():
    assert metric_label("selection_rate") == "Selection rate"
    assert metric_label("true_positive_rate[class=2]") == "True positive rate (class 2)"
