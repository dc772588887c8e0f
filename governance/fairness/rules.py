"""Turn engine results plus an audit configuration into a JSON-serialisable fairness report.

Conventions, chosen so that every number in a report reads the same way:

* A ratio is always the smaller value over the larger (at most 1), as Fairlearn's ``ratio()``
  expresses it, so a four-fifths rule is ``{"kind": "ratio", "min": 0.8}`` whichever group is
  favoured. A difference is always absolute.
* Groups with fewer than ``min_group_size`` rows (and empty intersections) are left out of
  disparities and verdicts, and every verdict names them: a rate over five people is noise.
* A value the engine flags as undefined (a true positive rate in a group without positives is
  reported as 0.0 by sklearn/Fairlearn) is never compared: a rule touching one is "undefined",
  never "pass" or "fail". Disparities skip such groups and list them.
* With every group eligible and defined, the between-groups and to-overall disparities equal
  Fairlearn's ``difference()``/``ratio()``; intervals are bootstrap quantiles of the same
  statistic, skipping replicates where it cannot be computed.

Configuration keys (``normalize_config`` fills defaults): ``sensitive_features`` (column names,
or lists of names for intersections), ``metrics``, ``reference_group`` ("largest", a group label,
or a mapping from feature-set key to either), ``min_group_size``, ``rules`` (dicts with
``metric``, ``kind``, ``against`` in reference/overall/between_groups, ``min``, ``max``,
``name``), ``n_boot``, ``ci_quantiles``, ``seed``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from governance.fairness.engine import FrameResult, Task, compute_frame

MISSING = "missing"
PASS, FAIL, INSUFFICIENT, UNDEFINED = "pass", "fail", "insufficient data", "undefined"
KINDS = ("ratio", "difference")
AGAINST = ("reference", "overall", "between_groups")
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_CI_QUANTILES = (0.025, 0.975)
BOUND_TOLERANCE = 1e-9


def prepare_sensitive_features(
    df: pd.DataFrame, columns: Sequence[str], max_categories: int = 50
) -> pd.DataFrame:
    """Return the sensitive columns with missing values made an explicit "missing" group.

    Rows without a recorded attribute are people too: dropping them (or letting NaN reach the
    engine) would hide exactly the group an audit is most likely to miss. A column with more
    than ``max_categories`` values is refused because per-group rates over hundreds of tiny
    groups are noise; bin it first (e.g. ages into bands).
    """
    prepared = {}
    for column in columns:
        if column not in df.columns:
            raise ValueError(f"Sensitive feature column {column!r} is not in the data")
        values = _with_missing_category(df[column])
        distinct = values.nunique(dropna=False)
        if distinct > max_categories:
            raise ValueError(
                f"Sensitive feature {column!r} has {distinct} distinct values, more than "
                f"max_categories={max_categories}; group it into fewer categories first"
            )
        prepared[column] = values
    return pd.DataFrame(prepared, index=df.index)


def _with_missing_category(values: pd.Series) -> pd.Series:
    # Look for blank strings among the distinct values, not row by row: a million rows of a
    # sensitive feature have a handful of distinct values.
    distinct = pd.unique(values.dropna())
    blanks = [v for v in distinct if isinstance(v, str) and not v.strip()]
    missing = values.isna().to_numpy()
    if blanks:
        missing = missing | values.isin(blanks).to_numpy()
    if not missing.any():
        return values
    # Mixing "missing" into numbers would make the column unsortable, so every label becomes text.
    codes, uniques = pd.factorize(values)
    names = np.array([_label(v) for v in uniques] + [MISSING], dtype=object)
    labels = names[np.where(missing, len(uniques), codes)]
    return pd.Series(labels, index=values.index, name=values.name, dtype=object)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def decisions_from_scores(y_score: Any, threshold: float) -> np.ndarray:
    """Turn model scores into 0/1 decisions (score >= threshold), the input binary audits need.

    The threshold is the one the model is deployed with: fairness of decisions depends on it,
    so it must be recorded with the audit rather than assumed to be 0.5.
    """
    if not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ValueError("threshold must be a finite number")
    scores = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        raise ValueError("y_score contains NaN or infinite values")
    return (scores >= threshold).astype(np.int64)


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an audit configuration and fill defaults, so reports record what was applied."""
    sets = feature_sets(config.get("sensitive_features"))
    rules = [_normalize_rule(rule) for rule in config.get("rules", [])]
    metrics = list(config.get("metrics") or [])
    metrics += [rule["metric"] for rule in rules if rule["metric"] not in metrics]
    if not metrics:
        raise ValueError("Configure at least one metric")
    min_size = config.get("min_group_size", DEFAULT_MIN_GROUP_SIZE)
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError("min_group_size must be a non-negative integer")
    n_boot = config.get("n_boot")
    quantiles = config.get("ci_quantiles") or list(DEFAULT_CI_QUANTILES)
    return {
        "sensitive_features": [list(s) for s in sets],
        "metrics": metrics,
        "reference_group": config.get("reference_group", "largest"),
        "min_group_size": min_size,
        "rules": rules,
        "n_boot": n_boot,
        "ci_quantiles": None if n_boot is None else [float(q) for q in quantiles],
        "seed": config.get("seed"),
    }


def feature_sets(sensitive_features: Any) -> list[tuple[str, ...]]:
    """Feature sets to audit: "sex" audits sex alone, ["sex", "age_band"] their intersection."""
    if not sensitive_features or isinstance(sensitive_features, str):
        raise ValueError("sensitive_features must be a non-empty list")
    sets = []
    for entry in sensitive_features:
        names = (entry,) if isinstance(entry, str) else tuple(entry)
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"Invalid sensitive feature entry: {entry!r}")
        sets.append(names)
    return sets


def feature_set_key(features: Sequence[str]) -> str:
    """Stable name of a feature set, used as report key and in reference_group mappings."""
    return " & ".join(features)


def _normalize_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    if "metric" not in rule:
        raise ValueError(f"Rule without a metric: {rule!r}")
    kind = rule.get("kind", "ratio")
    against = rule.get("against", "between_groups")
    if kind not in KINDS:
        raise ValueError(f"Rule kind must be one of {KINDS}, not {kind!r}")
    if against not in AGAINST:
        raise ValueError(f"Rule 'against' must be one of {AGAINST}, not {against!r}")
    low, high = rule.get("min"), rule.get("max")
    if low is None and high is None:
        raise ValueError(f"Rule {rule!r} needs a min or a max bound")
    name = rule.get("name") or f"{rule['metric']} {kind} to {against.replace('_', ' ')} rule"
    return {
        "name": name,
        "metric": rule["metric"],
        "kind": kind,
        "against": against,
        "min": low,
        "max": high,
    }


def metric_label(metric: str) -> str:
    """Human wording of a metric column, e.g. "true_positive_rate[class=2]" -> "True positive
    rate (class 2)", for sentences read by reviewers rather than engineers."""
    base, _, rest = metric.partition("[class=")
    text = base.replace("_", " ").strip()
    text = text[:1].upper() + text[1:]
    return f"{text} (class {rest.rstrip(']')})" if rest else text


def group_label(key: Any) -> str:
    """Display label of a by_group index entry; intersections join their values with ", "."""
    if isinstance(key, tuple):
        return ", ".join(_label(v) for v in key)
    return _label(key)


def _number(value: Any) -> float | None:
    """JSON-safe float: NaN/inf become None because JSON has no NaN."""
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float, avoid: float | None = None) -> str:
    """Two decimals, or as many more as it takes not to print a failing 0.7996 as "0.80"."""
    for digits in range(2, 11):
        text = f"{value:.{digits}f}"
        if avoid is None or text != f"{avoid:.{digits}f}":
            return text
    return repr(value)


def _fmt_bound(bound: float) -> str:
    return f"{bound:.2f}" if round(bound, 2) == bound else f"{bound:g}"


@dataclass
class _Context:
    """Per-feature-set facts every section of the report needs."""

    frame: FrameResult
    labels: list[str]
    counts: np.ndarray
    size_ok: np.ndarray
    reference: int | None
    min_group_size: int


def _choose_reference(
    labels: list[str], counts: np.ndarray, configured: Any, key: str
) -> tuple[int | None, dict[str, Any]]:
    if isinstance(configured, Mapping):
        configured = configured.get(key, "largest")
    if configured not in (None, "largest"):
        is_sequence = isinstance(configured, list | tuple)
        wanted = group_label(tuple(configured)) if is_sequence else str(configured)
        if wanted in labels:
            return labels.index(wanted), {"group": wanted, "chosen_by": "configured", "note": None}
        note = f"configured reference group {wanted!r} is not in {key}; using the largest group"
    else:
        note = None
    if counts.max() == 0:
        return None, {"group": None, "chosen_by": "largest", "note": note}
    largest = int(np.argmax(counts))
    return largest, {"group": labels[largest], "chosen_by": "largest", "note": note}


def build_report(
    frame: FrameResult, config: Mapping[str, Any], *, key: str | None = None
) -> dict[str, Any]:
    """Report for one feature set: overall and per-group values, disparities, rule verdicts."""
    defaults = {"sensitive_features": [frame.sensitive_feature_names], "metrics": frame.metrics}
    config = normalize_config({**defaults, **config})
    key = key or feature_set_key(frame.sensitive_feature_names)
    labels = [group_label(k) for k in frame.index]
    counts = frame.group_counts
    min_size = config["min_group_size"]
    reference, note = _choose_reference(labels, counts, config["reference_group"], key)
    size_ok = (counts >= min_size) & (counts > 0)
    ctx = _Context(frame, labels, counts, size_ok, reference, min_size)
    for rule in config["rules"]:
        if rule["metric"] not in frame.metrics:
            raise ValueError(f"Rule {rule['name']!r} uses {rule['metric']!r}, not in the frame")
    return {
        "key": key,
        "features": list(frame.sensitive_feature_names),
        "n_rows": int(counts.sum()),
        "min_group_size": min_size,
        "reference_group": note,
        "bootstrap": _bootstrap_section(frame),
        "overall": _overall_section(frame),
        "groups": _groups_section(ctx),
        "excluded_groups": _excluded(ctx),
        "disparities": {m: _disparity_section(ctx, m) for m in frame.metrics},
        "verdicts": [_evaluate_rule(ctx, rule) for rule in config["rules"]],
    }


def _bootstrap_section(frame: FrameResult) -> dict[str, Any] | None:
    if frame.n_boot is None:
        return None
    return {"n_boot": frame.n_boot, "ci_quantiles": frame.ci_quantiles, "seed": frame.random_state}


def _overall_section(frame: FrameResult) -> dict[str, Any]:
    intervals = frame.overall_ci if frame.n_boot is not None else None
    section = {}
    for j, metric in enumerate(frame.metrics):
        undefined = bool(frame.overall_undefined_values[j])
        reason = frame.undefined_reason(metric).replace("in group", "in the data")
        section[metric] = {
            "value": _number(frame.overall_values[j]),
            "ci": None if intervals is None else [_number(q.iloc[j]) for q in intervals],
            "undefined": undefined,
            "undefined_reason": reason if undefined else None,
        }
    return section


def _group_intervals(frame: FrameResult) -> np.ndarray | None:
    """Quantiles per (quantile, group, metric) on the full group axis, NaN where absent."""
    if frame.n_boot is None:
        return None
    full = np.full((len(frame.ci_levels()), len(frame.index), len(frame.metrics)), np.nan)
    full[:, frame.ci_rows, :] = np.stack([q.to_numpy() for q in frame.by_group_ci])
    return full


def _cell_reason(ctx: _Context, group: int, metric: str) -> str:
    return "no rows in group" if ctx.counts[group] == 0 else ctx.frame.undefined_reason(metric)


def _status(ctx: _Context, group: int) -> str:
    if ctx.counts[group] == 0:
        return "empty"
    return "ok" if ctx.size_ok[group] else INSUFFICIENT


def _groups_section(ctx: _Context) -> list[dict[str, Any]]:
    frame = ctx.frame
    intervals = _group_intervals(frame)
    names = frame.sensitive_feature_names
    groups = []
    for g, key in enumerate(frame.index):
        values = key if isinstance(key, tuple) else (key,)
        metrics = {}
        for j, metric in enumerate(frame.metrics):
            undefined = bool(frame.undefined_values[g, j])
            metrics[metric] = {
                "value": _number(frame.values[g, j]),
                "ci": None if intervals is None else [_number(v) for v in intervals[:, g, j]],
                "undefined": undefined,
                "undefined_reason": _cell_reason(ctx, g, metric) if undefined else None,
            }
        groups.append(
            {
                "group": ctx.labels[g],
                "levels": {n: _label(v) for n, v in zip(names, values, strict=True)},
                "count": int(ctx.counts[g]),
                "status": _status(ctx, g),
                "is_reference": g == ctx.reference,
                "metrics": metrics,
            }
        )
    return groups


def _excluded(ctx: _Context) -> list[dict[str, Any]]:
    return [
        {"group": ctx.labels[g], "count": int(ctx.counts[g])} for g in np.flatnonzero(~ctx.size_ok)
    ]


def _statistic(
    values: np.ndarray,
    overall: np.ndarray,
    compared: np.ndarray,
    ref: int | None,
    kind: str,
    against: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A disparity over the compared groups of ``values`` (shape ``(..., G)``).

    Shared by the point value and the bootstrap replicates so both use one definition. Returns
    the statistic and, except for between_groups, each group's contribution (its difference or
    ratio to the anchor), whose max (difference) or min (ratio) is the statistic.
    """
    masked = np.where(compared, values, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if against == "between_groups":
            low, high = np.nanmin(masked, axis=-1), np.nanmax(masked, axis=-1)
            return (high - low if kind == "difference" else low / high), None
        anchor = overall if against == "overall" else values[..., ref]
        anchor = np.asarray(anchor, dtype=np.float64)[..., None]
        if kind == "difference":
            contributions = np.abs(masked - anchor)
            return np.nanmax(contributions, axis=-1), contributions
        ratios = masked / anchor
        # Smaller over larger, as Fairlearn's ratio(method="to_overall") does.
        contributions = np.where(ratios > 1, 1 / ratios, ratios)
        return np.nanmin(contributions, axis=-1), contributions


@dataclass
class _Disparity:
    """One disparity statistic over the compared groups, with the pair that drives it."""

    value: float
    ci: list[float | None] | None
    low: tuple[str, float] | None
    high: tuple[str, float] | None
    compared: list[int]


class _Inputs(NamedTuple):
    """What one disparity compares: eligible groups, anchor, point values and replicates."""

    compared: np.ndarray
    ref: int | None
    values: np.ndarray
    overall: np.ndarray
    reps: np.ndarray | None
    reps_overall: np.ndarray | None


def _inputs(ctx: _Context, j: int, against: str) -> _Inputs:
    """Gather metric ``j``'s values; an unusable anchor (too small or undefined) becomes NaN so
    that every comparison against it is NaN rather than a comparison with a 0.0 stand-in."""
    frame = ctx.frame
    compared = ctx.size_ok & ~frame.undefined_values[:, j]
    ref = ctx.reference if against == "reference" else None
    values = frame.values[:, j].copy()
    overall = np.asarray(frame.overall_values[j], dtype=np.float64)
    reps = None if frame.by_group_replicates is None else frame.by_group_replicates[:, :, j].copy()
    reps_overall = (
        None if frame.overall_replicates is None else frame.overall_replicates[:, j].copy()
    )
    if ref is not None:
        usable = compared[ref]
        compared = compared.copy()
        compared[ref] = False
        if not usable:
            values[ref] = np.nan
            if reps is not None:
                reps[:, ref] = np.nan
    if against == "overall" and frame.overall_undefined_values[j]:
        overall = np.asarray(np.nan)
        reps_overall = None if reps_overall is None else np.full_like(reps_overall, np.nan)
    return _Inputs(compared, ref, values, overall, reps, reps_overall)


def _compute_disparity(ctx: _Context, metric: str, kind: str, against: str) -> _Disparity:
    j = ctx.frame.metrics.index(metric)
    data = _inputs(ctx, j, against)
    value, contributions = _statistic(
        data.values, data.overall, data.compared, data.ref, kind, against
    )
    ci = None
    if data.reps is not None and data.reps_overall is not None:
        samples, _ = _statistic(
            data.reps, data.reps_overall, data.compared, data.ref, kind, against
        )
        with warnings.catch_warnings():
            # Replicates lacking a compared group or the reference give NaN and are skipped.
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = [_number(q) for q in np.nanquantile(samples, ctx.frame.ci_levels())]
    masked = np.where(data.compared, data.values, np.nan)
    overall = float(data.overall)
    low, high = _driving_pair(ctx, masked, contributions, overall, against, kind, data.values)
    compared = [int(g) for g in np.flatnonzero(data.compared)]
    return _Disparity(float(value), ci, low, high, compared)


def _driving_pair(
    ctx: _Context,
    masked: np.ndarray,
    contributions: np.ndarray | None,
    overall: float,
    against: str,
    kind: str,
    values: np.ndarray,
) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """The two values a disparity compares, lower first, named for the sentence."""
    if np.isnan(masked).all() or (contributions is not None and np.isnan(contributions).all()):
        return None, None
    if contributions is None:
        low, high = int(np.nanargmin(masked)), int(np.nanargmax(masked))
        return (ctx.labels[low], float(masked[low])), (ctx.labels[high], float(masked[high]))
    pick = np.nanargmax if kind == "difference" else np.nanargmin
    driver = int(pick(contributions))
    first = (ctx.labels[driver], float(masked[driver]))
    if against == "overall":
        second = ("overall", overall)
    else:
        reference = ctx.reference
        assert reference is not None  # _insufficient_reason refuses the rule without one
        second = (f"{ctx.labels[reference]} (reference)", float(values[reference]))
    return (first, second) if first[1] <= second[1] else (second, first)


def _disparity_section(ctx: _Context, metric: str) -> dict[str, Any]:
    section: dict[str, Any] = {}
    j = ctx.frame.metrics.index(metric)
    undefined = ctx.size_ok & ctx.frame.undefined_values[:, j]
    for kind in KINDS:
        section[kind] = {}
        for against in AGAINST:
            if against == "reference" and ctx.reference is None:
                section[kind][against] = None
                continue
            result = _compute_disparity(ctx, metric, kind, against)
            section[kind][against] = {
                "value": _number(result.value),
                "ci": result.ci,
                "low": _pair_json(result.low),
                "high": _pair_json(result.high),
                "groups_compared": [ctx.labels[g] for g in result.compared],
                "undefined_groups": [ctx.labels[g] for g in np.flatnonzero(undefined)],
            }
    return section


def _pair_json(pair: tuple[str, float] | None) -> dict[str, Any] | None:
    return None if pair is None else {"group": pair[0], "value": _number(pair[1])}


def _rule_phrase(name: str) -> str:
    return f"the {name}" if name.lower().endswith("rule") else f"the rule {name!r}"


def _excluded_text(ctx: _Context) -> str:
    excluded = _excluded(ctx)
    if not excluded:
        return ""
    listed = ", ".join(f"{e['group']} (n={e['count']})" for e in excluded)
    return f" Excluded for fewer than {ctx.min_group_size} rows: {listed}."


def _evaluate_rule(ctx: _Context, rule: Mapping[str, Any]) -> dict[str, Any]:
    """Verdict of one rule on one feature set: pass, fail, insufficient data or undefined."""
    verdict: dict[str, Any] = {
        **{k: rule[k] for k in ("name", "metric", "kind", "against", "min", "max")},
        "verdict": None,
        "value": None,
        "ci": None,
        "low": None,
        "high": None,
        "excluded_groups": _excluded(ctx),
        "undefined_groups": [],
        "reason": None,
        "sentence": "",
    }
    shortfall = _insufficient_reason(ctx, rule)
    if shortfall:
        return _finish(verdict, ctx, INSUFFICIENT, shortfall, rule)
    undefined = _undefined_cells(ctx, rule)
    if undefined:
        verdict["undefined_groups"] = [{"group": g, "reason": r} for g, r in undefined]
        reasons = sorted({r for _, r in undefined})
        verdict["reason"] = "; ".join(reasons)
        listed = ", ".join(f"{g} ({r})" for g, r in undefined)
        text = f"{metric_label(rule['metric'])} is undefined for {listed}"
        return _finish(verdict, ctx, UNDEFINED, text, rule)
    result = _compute_disparity(ctx, rule["metric"], rule["kind"], rule["against"])
    if math.isnan(result.value):
        verdict["reason"] = f"the {rule['kind']} cannot be computed (all compared values are 0)"
        return _finish(verdict, ctx, UNDEFINED, verdict["reason"].capitalize(), rule)
    verdict.update(value=result.value, ci=result.ci)
    verdict.update(low=_pair_json(result.low), high=_pair_json(result.high))
    passed, bound_text = _check_bounds(result.value, rule["min"], rule["max"])
    if result.low is None or result.high is None:  # only a NaN value has no driving pair
        raise ValueError(f"No driving pair for {rule['name']}")
    comparison = _comparison_text(rule, result.value, result.low, result.high, passed)
    return _finish(verdict, ctx, PASS if passed else FAIL, f"{comparison}, {bound_text}", rule)


def _finish(
    verdict: dict[str, Any], ctx: _Context, outcome: str, text: str, rule: Mapping[str, Any]
) -> dict[str, Any]:
    endings = {
        PASS: f"passes {_rule_phrase(rule['name'])}",
        FAIL: f"fails {_rule_phrase(rule['name'])}",
        INSUFFICIENT: f"{_rule_phrase(rule['name'])} is not evaluated",
        UNDEFINED: f"{_rule_phrase(rule['name'])} is not evaluated",
    }
    verdict["verdict"] = outcome
    if outcome == INSUFFICIENT:
        verdict["reason"] = text
    verdict["sentence"] = f"{text} — {endings[outcome]}.{_excluded_text(ctx)}"
    return verdict


def _insufficient_reason(ctx: _Context, rule: Mapping[str, Any]) -> str | None:
    eligible = int(ctx.size_ok.sum())
    label = metric_label(rule["metric"])
    need = f"at least {ctx.min_group_size} rows"
    if rule["against"] == "reference":
        if ctx.reference is None or not ctx.size_ok[ctx.reference]:
            group = "none" if ctx.reference is None else ctx.labels[ctx.reference]
            count = 0 if ctx.reference is None else int(ctx.counts[ctx.reference])
            return f"{label} cannot be compared: the reference group {group} has {count} rows"
        if eligible < 2:
            return f"{label} cannot be compared: no other group has {need}"
    needed = 2 if rule["against"] == "between_groups" else 1
    if eligible < needed:
        return f"{label} cannot be compared: only {eligible} group(s) have {need}"
    return None


def _undefined_cells(ctx: _Context, rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    frame = ctx.frame
    j = frame.metrics.index(rule["metric"])
    cells = [
        (ctx.labels[g], frame.undefined_reason(rule["metric"]))
        for g in np.flatnonzero(ctx.size_ok & frame.undefined_values[:, j])
    ]
    if rule["against"] == "overall" and frame.overall_undefined_values[j]:
        reason = frame.undefined_reason(rule["metric"]).replace("in group", "in the data")
        cells.append(("overall", reason))
    return cells


def _check_bounds(value: float, low: float | None, high: float | None) -> tuple[bool, str]:
    # 28/35 is 0.7999999999999999 in floating point; it must not fail a 0.8 bound.
    if low is not None and value < low - BOUND_TOLERANCE:
        return False, f"below {_fmt_bound(low)}"
    if high is not None and value > high + BOUND_TOLERANCE:
        return False, f"above {_fmt_bound(high)}"
    if low is not None and high is not None:
        return True, f"within [{_fmt_bound(low)}, {_fmt_bound(high)}]"
    if low is not None:
        return True, f"at or above {_fmt_bound(low)}"
    if high is None:  # normalize_rule refuses a rule with neither bound
        raise ValueError("A rule needs a min or a max bound")
    return True, f"at or below {_fmt_bound(high)}"


def _comparison_text(
    rule: Mapping[str, Any],
    disparity: float,
    low: tuple[str, float],
    high: tuple[str, float],
    passed: bool,
) -> str:
    label = metric_label(rule["metric"])
    (low_name, low_value), (high_name, high_value) = low, high
    low_text = "overall" if low_name == "overall" else f"for {low_name}"
    high_text = "overall" if high_name == "overall" else f"for {high_name}"
    bounds = [b for b in (rule["min"], rule["max"]) if b is not None]
    nearest = min(bounds, key=lambda b: abs(b - disparity))
    value = _fmt(disparity) if passed else _fmt(disparity, avoid=nearest)
    return (
        f"{label} {low_text} is {_fmt(low_value)} against {_fmt(high_value)} {high_text}: "
        f"{rule['kind']} {value}"
    )


def run_audit(
    data: pd.DataFrame,
    y_true: Any,
    y_pred: Any,
    config: Mapping[str, Any],
    *,
    task: Task = "binary",
    y_score: Any = None,
    max_categories: int = 50,
) -> dict[str, Any]:
    """Audit every configured feature set of ``data`` and summarise the verdicts.

    All feature sets share one seed, so each is resampled with the same bootstrap rows.
    """
    config = normalize_config(config)
    columns = sorted({c for s in config["sensitive_features"] for c in s})
    sensitive = prepare_sensitive_features(data, columns, max_categories=max_categories)
    reports = []
    seed = config["seed"]
    for features in config["sensitive_features"]:
        frame = compute_frame(
            y_true,
            y_pred,
            sensitive[features],
            config["metrics"],
            n_boot=config["n_boot"],
            ci_quantiles=config["ci_quantiles"],
            random_state=seed,
            task=task,
            y_score=y_score,
        )
        seed = frame.random_state if seed is None else seed
        reports.append(build_report(frame, config))
    config = {**config, "seed": seed}
    verdicts = [v["verdict"] for r in reports for v in r["verdicts"]]
    summary = {o: verdicts.count(o) for o in (PASS, FAIL, INSUFFICIENT, UNDEFINED)}
    return {"config": config, "summary": summary, "feature_sets": reports}
