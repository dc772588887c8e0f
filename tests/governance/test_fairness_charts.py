"""SVG bar charts must be well-formed XML with every group label, escaped."""

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from governance.fairness.charts import chart_from_report, render_metric_bars
from governance.fairness.rules import run_audit

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg):
    return ET.fromstring(svg)  # noqa: S314 - parses our own renderer's output, not untrusted input


def texts(root):
    return [element.text for element in root.iter(f"{SVG}text")]


def test_bars_whiskers_threshold_and_escaped_labels():
    groups = ["female", "male", "<script>&\"'", "non-binary"]
    svg = render_metric_bars(
        groups,
        [0.34, 0.57, None, 0.5],
        lower=[0.3, 0.5, None, 0.2],
        upper=[0.4, 0.64, None, 0.8],
        threshold=0.8,
        title="Selection rate & <friends>",
        notes=[None, None, "undefined", None],
        muted=[False, False, False, True],
    )
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    labels = texts(root)
    for group in groups:
        assert group in labels
    assert "Selection rate & <friends>" in labels
    assert "<script>" not in svg
    assert {"0.34", "0.57", "undefined", "0.50", "threshold 0.8"} <= set(labels)
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == "#4c78a8"]
    assert len(rects) == 3  # no bar for the undefined value
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1


def test_negative_values_and_wide_range_scale():
    svg = render_metric_bars(["a", "b"], [-2.0, 3.5], threshold=1.0)
    root = parse(svg)
    assert {"-2", "3.5"} <= set(texts(root))
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert all(w >= 0 for w in widths)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal lengths"):
        render_metric_bars(["a", "b"], [0.1])


def test_chart_from_report_contains_each_group():
    data = pd.DataFrame(
        {
            "sex": ["f"] * 40 + ["m"] * 40 + ["x & y"] * 3,
            "y_true": ([0, 1] * 20) * 2 + [0, 0, 0],
            "y_pred": [1] * 10 + [0] * 30 + [1] * 30 + [0] * 10 + [1, 0, 0],
        }
    )
    config = {
        "sensitive_features": ["sex"],
        "metrics": ["selection_rate", "true_positive_rate"],
        "min_group_size": 10,
        "n_boot": 10,
        "seed": 0,
    }
    report = run_audit(data, data["y_true"], data["y_pred"], config)
    [feature_set] = report["feature_sets"]
    root = parse(chart_from_report(feature_set, "true_positive_rate", threshold=0.8))
    labels = texts(root)
    for group in ["f", "m", "x & y"]:
        assert group in labels
    assert "undefined: no positives in group" in labels


def test_selection_rate_chart_draws_the_four_fifths_line_from_the_reference_group():
    from governance.fairness.charts import selection_rate_chart

    def group(name, rate, reference=False):
        return {
            "group": name,
            "count": 50,
            "status": "ok",
            "is_reference": reference,
            "metrics": {
                "selection_rate": {
                    "value": rate,
                    "ci": None,
                    "undefined": False,
                    "undefined_reason": None,
                }
            },
        }

    feature_set = {
        "key": "sex",
        "groups": [group("f", 0.3), group("m", 0.5, reference=True)],
        "verdicts": [
            {"metric": "selection_rate", "kind": "ratio", "against": "reference", "min": 0.8}
        ],
    }
    with_line = selection_rate_chart(feature_set)
    feature_set["verdicts"] = []
    without_line = selection_rate_chart(feature_set)
    assert with_line != without_line
    assert "0.4" in with_line  # 0.5 × 0.8
