"""Fairness drift: each subgroup's metric values on a production batch against the values of
the fairness audit the version was validated with.

A rule verdict only says whether a disparity crosses the policy's bound; drift is the change
in the values themselves. A label flip that turns one group's accuracy from 0.90 to 0.40 is a
breach even if no rule was written for accuracy, and it is reported for that group, with the
validated value, the batch value and their difference.

Pure Python over two audit results (the dicts `governance.fairness.rules.run_audit` returns),
so it runs anywhere the results are. Thresholds (`settings.monitoring.fairness` of the
policy) are absolute differences in the metric's units:

    {"difference": {"warn": 0.05, "breach": 0.10},  # for rates (accuracy, TPR, ...)
     "min_group_size": 100,                            # rows a group needs on both sides
     "metrics": {"mean_absolute_error": {"warn": 2.0, "breach": 5.0}}}  # per metric

Rates in [0, 1] use `difference`; a metric in the model's own units (e.g. a regression's mean
absolute error) is compared only when the policy gives it its own limits, since no default
can know its scale. Groups smaller than `min_group_size` on either side are listed as not
compared: a rate over a few dozen rows moves by more than the thresholds by chance alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governance.monitoring.drift import LEVELS, overall_level

DEFAULT_FAIRNESS_THRESHOLDS: dict[str, Any] = {
    "difference": {"warn": 0.05, "breach": 0.10},
    "min_group_size": 100,
    "metrics": {},
}
# Metrics bounded to [0, 1], for which the default `difference` limits mean something.
RATE_METRICS = (
    "accuracy",
    "selection_rate",
    "true_positive_rate",
    "recall",
    "false_negative_rate",
    "false_positive_rate",
    "true_negative_rate",
    "precision",
    "roc_auc",
    "mean_score",
)
NOT_COMPARED = ("count",)


def validate_thresholds(fairness: Any) -> None:
    """Raise ValueError naming the first problem in `settings.monitoring.fairness`."""
    if not isinstance(fairness, dict):
        raise ValueError("settings.monitoring.fairness must be an object")
    unknown = set(fairness) - set(DEFAULT_FAIRNESS_THRESHOLDS)
    if unknown:
        raise ValueError(
            f"unknown key(s) in settings.monitoring.fairness: {', '.join(sorted(unknown))}"
        )
    if "difference" in fairness:
        _limits(fairness["difference"], "settings.monitoring.fairness.difference")
    size = fairness.get("min_group_size", 1)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError("settings.monitoring.fairness.min_group_size must be a positive integer")
    metrics = fairness.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ValueError("settings.monitoring.fairness.metrics maps metric names to limits")
    for name, limits in metrics.items():
        _limits(limits, f"settings.monitoring.fairness.metrics.{name}")


def _limits(limits: Any, where: str) -> tuple[float, float]:
    if not isinstance(limits, dict) or set(limits) != {"warn", "breach"}:
        raise ValueError(f"{where} must be {{'warn': number, 'breach': number}}")
    warn, breach = limits["warn"], limits["breach"]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (warn, breach)):
        raise ValueError(f"{where}: warn and breach must be numbers")
    if not 0 <= warn <= breach:
        raise ValueError(f"{where}: need 0 <= warn <= breach, got {warn}, {breach}")
    return float(warn), float(breach)


def merged_thresholds(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The policy's fairness drift thresholds with the defaults for what it does not name."""
    given = dict(given or {})
    return {
        "difference": {**DEFAULT_FAIRNESS_THRESHOLDS["difference"], **given.get("difference", {})},
        "min_group_size": given.get(
            "min_group_size", DEFAULT_FAIRNESS_THRESHOLDS["min_group_size"]
        ),
        "metrics": dict(given.get("metrics", {})),
    }


def _metric_limits(metric: str, thresholds: Mapping[str, Any]) -> tuple[float, float] | None:
    base = metric.split("[", 1)[0]  # "true_positive_rate[class=2]" -> "true_positive_rate"
    per_metric = thresholds["metrics"]
    for name in (metric, base):
        if name in per_metric:
            return _limits(per_metric[name], f"metrics.{name}")
    if base in RATE_METRICS:
        return _limits(thresholds["difference"], "difference")
    return None


def _level(difference: float, warn: float, breach: float) -> str:
    size = abs(difference)
    if size >= breach:
        return "breach"
    return "warn" if size >= warn else "ok"


def _groups(feature_set: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["group"]: g for g in feature_set.get("groups", [])}


def compare(
    validated: Mapping[str, Any],
    batch: Mapping[str, Any],
    thresholds: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Per feature set, subgroup and metric: the validated value, the batch value, the
    difference (batch minus validated) and its level; plus what could not be compared, why.

    `validated` and `batch` are audit results (`run_audit`), computed with the same
    configuration. The level is the worst subgroup level, "ok" when nothing was comparable.
    """
    thresholds = merged_thresholds(thresholds)
    min_size = thresholds["min_group_size"]
    validated_sets = {fs["key"]: fs for fs in validated.get("feature_sets", [])}
    subgroups: list[dict[str, Any]] = []
    not_compared: list[dict[str, Any]] = []
    skipped_metrics: set[str] = set()
    for feature_set in batch.get("feature_sets", []):
        key = feature_set["key"]
        before_set = validated_sets.get(key)
        if before_set is None:
            not_compared.append(
                {"feature_set": key, "group": None, "reason": "not in the validated audit"}
            )
            continue
        before_groups = _groups(before_set)
        for label, group in _groups(feature_set).items():
            before = before_groups.get(label)
            reason = None
            if before is None:
                reason = "group not present in the validated audit"
            elif group["count"] < min_size or before["count"] < min_size:
                reason = (
                    f"{group['count']} rows in the batch and {before['count']} in the validated "
                    f"audit; at least {min_size} on both sides are needed"
                )
            if reason or before is None:
                not_compared.append(
                    {"feature_set": key, "group": label, "count": group["count"], "reason": reason}
                )
                continue
            for metric, cell in group["metrics"].items():
                if metric in NOT_COMPARED or metric not in before["metrics"]:
                    continue
                limits = _metric_limits(metric, thresholds)
                if limits is None:
                    skipped_metrics.add(metric)
                    continue
                old, new = before["metrics"][metric], cell
                if old["undefined"] or new["undefined"] or None in (old["value"], new["value"]):
                    not_compared.append(
                        {
                            "feature_set": key,
                            "group": label,
                            "metric": metric,
                            "count": group["count"],
                            "reason": new["undefined_reason"]
                            or old["undefined_reason"]
                            or "undefined",
                        }
                    )
                    continue
                difference = new["value"] - old["value"]
                subgroups.append(
                    {
                        "feature_set": key,
                        "group": label,
                        "metric": metric,
                        "validated": old["value"],
                        "batch": new["value"],
                        "difference": difference,
                        "count_validated": before["count"],
                        "count_batch": group["count"],
                        "level": _level(difference, *limits),
                        "limits": {"warn": limits[0], "breach": limits[1]},
                    }
                )
    subgroups.sort(key=lambda s: (-LEVELS.index(s["level"]), -abs(s["difference"])))
    return {
        "level": overall_level(s["level"] for s in subgroups),
        "thresholds": thresholds,
        "subgroups": subgroups,
        "not_compared": not_compared,
        "metrics_without_limits": sorted(skipped_metrics),
    }


def describe(entry: Mapping[str, Any]) -> str:
    """One line for a notification: "accuracy for sex=f: 0.412 against 0.904 validated"."""
    return (
        f"{entry['metric']} for {entry['feature_set']}={entry['group']}: {entry['batch']:.3f} "
        f"against {entry['validated']:.3f} validated ({entry['difference']:+.3f})"
    )
