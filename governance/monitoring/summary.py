"""Production batches given as summary statistics instead of rows.

A client that cannot (or may not) send its rows sends, per feature, counts: numeric features as
counts on bin edges, categorical ones as category -> count, the model's outputs the same way,
and optionally labelled performance as a confusion matrix or metric values. The check then
compares them with the reference data binned on the *same* edges:

* PSI and the chi-square test of homogeneity are exact from counts. On the reference's own
  edges (`GET /api/v1/monitoring/references/{id}/bins/`, the quantile edges the row path
  uses) the PSI equals the one the rows would give.
* The two-sample KS statistic is not: only the CDFs at the edges are known, so the report
  carries the largest CDF gap over the edges, labelled as a lower bound computed from bins
  (drift.BinnedKS), and the level of a numeric feature comes from PSI and the chi-square on
  its bins instead.
* Fairness drift needs per-subgroup labels and predictions; it is not computed from a summary.

The body (JSON):

    {"model_version": 12,
     "row_count": 5000,
     "features": {
        "age":    {"edges": [25, 40, 60], "counts": [800, 1900, 1700, 500], "missing": 100},
        "income": {"counts": [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]},
        "region": {"counts": {"north": 3000, "south": 2000}}},
     "prediction": {"column": "y_score", "counts": [...]},
     "performance": {"confusion": {"tp": 410, "fp": 40, "fn": 50, "tn": 500}}}
     # or "performance": {"metrics": {"accuracy": 0.91, "roc_auc": 0.95}, "n": 1000}

Numeric bins are right-closed with open ends: edges e1 < ... < ek give k + 1 counts for
(-inf, e1], (e1, e2], ..., (ek, inf). Without `edges`, the counts are on the reference's own
edges. Every feature of the reference must be given, and each feature's counts plus its
missing values must add up to `row_count`.

Everything here is pure Python/pandas; `validate` raises SummaryError (a ValueError) naming
the field, before anything is stored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from governance.monitoring import drift

FORMAT = "stagegate.summary-statistics.v1"
BINS = 10  # the row path's default number of quantile bins
MAX_BINS = 1000
MAX_COUNT = 10**15
PREDICTION_COLUMNS = ("y_score", "y_pred")
CONFUSION_CELLS = ("tp", "fp", "fn", "tn")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")


class SummaryError(ValueError):
    """A summary that cannot be checked; `field` says where (the API's 400 names it)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# --- The reference's bins ---------------------------------------------------------------------


def _column_profile(series: pd.Series, kind: str) -> dict[str, Any]:
    if kind == "numeric":
        edges = drift.reference_edges(series, BINS)
        return {"kind": "numeric", "edges": [float(e) for e in edges]}
    labels = drift.category_counts(series).index
    return {
        "kind": "categorical",
        "categories": sorted(str(c) for c in labels if c != drift.MISSING_LABEL),
    }


def reference_profile(reference: pd.DataFrame, output_columns: tuple[str, ...]) -> dict:
    """Each column's kind and bins as the row path sees it: quantile edges of numeric features,
    the categories of categorical ones; the model's outputs by prediction drift's rule (float
    outputs are numeric, class labels categorical)."""
    features, outputs = {}, {}
    for column in reference.columns:
        name = str(column)
        series = reference[column]
        if name in PREDICTION_COLUMNS:
            is_float = pd.api.types.is_float_dtype(series.dtype) and not isinstance(
                series.dtype, pd.CategoricalDtype
            )
            outputs[name] = _column_profile(series, "numeric" if is_float else "categorical")
        elif name not in output_columns:
            features[name] = _column_profile(series, drift.infer_kind(series))
    return {"bins": BINS, "features": features, "outputs": outputs}


# --- Validation -------------------------------------------------------------------------------


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SummaryError(where, f"counts must be whole numbers, got {value!r}")
    if value < 0:
        raise SummaryError(where, f"counts cannot be negative, got {value}")
    if value > MAX_COUNT:
        raise SummaryError(where, f"a count above {MAX_COUNT} is not believable: {value}")
    return value


def _edges(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise SummaryError(where, "edges must be a non-empty list of numbers")
    if len(value) >= MAX_BINS:
        raise SummaryError(where, f"at most {MAX_BINS - 1} edges")
    if any(isinstance(e, bool) or not isinstance(e, int | float) for e in value):
        raise SummaryError(where, "edges must be numbers")
    edges = [float(e) for e in value]
    if not all(math.isfinite(e) for e in edges):
        raise SummaryError(where, "edges must be finite (the first and last bins are open)")
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise SummaryError(where, "edges must be strictly increasing")
    return edges


def _distribution(spec: Any, profile: dict, where: str, row_count: int, keys=()) -> dict:
    """One feature's (or the prediction's) counts, checked and normalised."""
    if not isinstance(spec, dict):
        raise SummaryError(where, "give an object with counts (and edges for numeric bins)")
    unknown = set(spec) - {"edges", "counts", "missing", *keys}
    if unknown:
        raise SummaryError(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    if "counts" not in spec:
        raise SummaryError(where, "counts are missing")
    missing = _count(spec.get("missing", 0), f"{where}.missing")
    counts = spec["counts"]
    if profile["kind"] == "numeric":
        if not isinstance(counts, list):
            raise SummaryError(
                f"{where}.counts", "a numeric feature's counts are a list, one per bin"
            )
        if "edges" in spec:
            edges = _edges(spec["edges"], f"{where}.edges")
            origin = f"{len(edges)} edges"
        else:
            edges = list(profile["edges"])
            origin = f"the reference's {len(edges)} edges (GET .../references/{{id}}/bins/)"
        if len(counts) != len(edges) + 1:
            raise SummaryError(
                f"{where}.counts",
                f"{len(counts)} counts for {origin}: bins (-inf, e1], ..., (ek, inf) need "
                f"{len(edges) + 1}",
            )
        bin_counts = [_count(c, f"{where}.counts") for c in counts]
        total = sum(bin_counts)
        normalised: dict[str, Any] = {"kind": "numeric", "edges": edges, "counts": bin_counts}
    else:
        if "edges" in spec:
            raise SummaryError(f"{where}.edges", "a categorical feature has no edges")
        if not isinstance(counts, dict):
            raise SummaryError(
                f"{where}.counts", "a categorical feature's counts map each category to its count"
            )
        if len(counts) > MAX_BINS:
            raise SummaryError(f"{where}.counts", f"at most {MAX_BINS} categories")
        if drift.MISSING_LABEL in counts:
            raise SummaryError(f"{where}.counts", "give missing values as 'missing'")
        category_counts = {str(k): _count(v, f"{where}.counts.{k}") for k, v in counts.items()}
        total = sum(category_counts.values())
        normalised = {"kind": "categorical", "counts": category_counts}
    if total + missing != row_count:
        raise SummaryError(
            where,
            f"counts add up to {total} and {missing} missing, but row_count is {row_count}",
        )
    normalised["missing"] = missing
    return normalised


def _performance(spec: Any, task: str) -> dict:
    where = "performance"
    if not isinstance(spec, dict) or len(set(spec) & {"confusion", "metrics"}) != 1:
        raise SummaryError(where, "give either a confusion matrix or metric values with n")
    if "confusion" in spec:
        if task != "binary":
            raise SummaryError(
                where, f"a confusion matrix is for binary classifiers, not {task} models"
            )
        if set(spec) != {"confusion"}:
            raise SummaryError(where, "a confusion matrix needs nothing beside it")
        cells = spec["confusion"]
        if not isinstance(cells, dict) or set(cells) != set(CONFUSION_CELLS):
            raise SummaryError(f"{where}.confusion", "give exactly tp, fp, fn and tn")
        confusion = {k: _count(cells[k], f"{where}.confusion.{k}") for k in CONFUSION_CELLS}
        if not sum(confusion.values()):
            raise SummaryError(f"{where}.confusion", "the confusion matrix is empty")
        return {"confusion": confusion, "n": sum(confusion.values())}
    if set(spec) != {"metrics", "n"}:
        raise SummaryError(where, "metric values need n, the number of labelled rows")
    n = _count(spec["n"], f"{where}.n")
    if n == 0:
        raise SummaryError(f"{where}.n", "n must be at least 1")
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    metrics = spec["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise SummaryError(f"{where}.metrics", "give at least one metric value")
    unknown = sorted(set(metrics) - set(allowed))
    if unknown:
        raise SummaryError(
            f"{where}.metrics",
            f"unknown metric(s) {', '.join(unknown)} for a {task} model; "
            f"supported: {', '.join(allowed)}",
        )
    for name, value in metrics.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise SummaryError(f"{where}.metrics.{name}", "must be a finite number")
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "n": n}


def validate(body: Any, profile: dict, *, task: str) -> dict:
    """The summary, checked against the reference's profile and normalised for storage (edges
    resolved, so a re-check never depends on anything but the stored summary)."""
    if not isinstance(body, dict) or not body:
        raise SummaryError("features", "the summary is empty")
    unknown = set(body) - {"row_count", "features", "prediction", "performance"}
    if unknown:
        raise SummaryError("non_field_errors", f"unknown key(s) {', '.join(sorted(unknown))}")
    row_count = body.get("row_count")
    if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 1:
        raise SummaryError("row_count", "row_count must be a positive whole number")
    _count(row_count, "row_count")  # and believable
    features = body.get("features")
    if not isinstance(features, dict) or not features:
        raise SummaryError("features", "give the counts of every feature of the reference")
    known = profile["features"]
    strangers = sorted(set(features) - set(known))
    if strangers:
        raise SummaryError(
            "features",
            f"unknown feature(s) {', '.join(strangers)}; the reference has {', '.join(known)}",
        )
    absent = [name for name in known if name not in features]
    if absent:
        raise SummaryError("features", f"missing feature(s) of the reference: {', '.join(absent)}")
    summary = {
        "format": FORMAT,
        "row_count": row_count,
        "features": {
            name: _distribution(features[name], known[name], f"features.{name}", row_count)
            for name in known
        },
    }
    if body.get("prediction") is not None:
        spec = body["prediction"]
        column = spec.get("column") if isinstance(spec, dict) else None
        if column not in profile["outputs"]:
            present = ", ".join(profile["outputs"]) or "none"
            raise SummaryError(
                "prediction.column",
                f"name the output column the counts are of; the reference has: {present}",
            )
        summary["prediction"] = {
            "column": column,
            **_distribution(
                spec, profile["outputs"][column], "prediction", row_count, keys=("column",)
            ),
        }
    if body.get("performance") is not None:
        summary["performance"] = _performance(body["performance"], task)
    return summary


# --- The check --------------------------------------------------------------------------------


def _drift(name: str, reference: pd.Series, spec: dict, thresholds) -> drift.FeatureDrift:
    if spec["kind"] == "numeric":
        return drift.numeric_drift_from_counts(
            name, reference, spec["edges"], spec["counts"], spec["missing"], thresholds
        )
    return drift.categorical_drift_from_counts(
        name, reference, spec["counts"], spec["missing"], thresholds
    )


def data_drift(reference: pd.DataFrame, summary: dict, thresholds) -> drift.DataDriftReport:
    """Per-feature drift of a summary against the reference rows binned the same way."""
    results = {
        name: _drift(name, reference[name], spec, thresholds)
        for name, spec in summary["features"].items()
    }
    return drift.DataDriftReport(
        level=drift.overall_level(r.level for r in results.values()),
        features=results,
        n_reference=len(reference),
        n_current=summary["row_count"],
    )


def prediction_drift(reference: pd.DataFrame, summary: dict, thresholds):
    spec = summary.get("prediction")
    if spec is None or spec["column"] not in reference.columns:
        return None
    return _drift("prediction", reference[spec["column"]], spec, thresholds)


def performance_values(summary: dict) -> tuple[dict[str, float], int] | None:
    """The labelled performance of a summary as metric values and their n."""
    spec = summary.get("performance")
    if spec is None:
        return None
    if "confusion" in spec:
        cells = spec["confusion"]
        return drift.metrics_from_confusion(*(cells[k] for k in CONFUSION_CELLS)), spec["n"]
    return dict(spec["metrics"]), spec["n"]


def counts_on(values: Any, edges: list[float]) -> list[int]:
    """Counts of non-missing numeric values on `edges`, binned as the row path bins them
    (a helper for clients and tests)."""
    arr = np.sort(np.asarray(values, dtype=np.float64))
    arr = arr[~np.isnan(arr)]
    below = np.searchsorted(arr, np.asarray(edges, dtype=np.float64), side="right")
    return [int(c) for c in np.diff(np.concatenate(([0], below, [arr.size])))]
