"""Dependency-free SVG charts for fairness reports.

Why SVG strings: the chart must render identically in the web UI, in exported PDF reports
(WeasyPrint) and in archived HTML, without a plotting library or a browser on the server.
Every piece of user-controlled text (group labels, titles) is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard
from xml.sax.saxutils import escape, quoteattr

BAR_COLOUR = "#4c78a8"
THRESHOLD_COLOUR = "#d62728"
TEXT_COLOUR = "#222222"
FONT = "font-family='Helvetica, Arial, sans-serif' font-size='12'"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _domain(numbers: list[float]) -> tuple[float, float]:
    """Axis range: always includes 0 (bars start there) and spans [0, 1] for rates."""
    low, high = min([0.0, *numbers]), max([0.0, *numbers])
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    if high == low:
        return low, low + 1.0
    return low, high


def _text_width(strings: Sequence[str]) -> int:
    """Rough pixel width of the longest string at 12px (no font metrics without a renderer)."""
    return 16 + math.ceil(6.5 * max([len(text) for text in strings] + [4]))


def _text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' fill='{TEXT_COLOUR}' {FONT}"
        f"{extra}>{escape(content)}</text>"
    )


@dataclass(frozen=True)
class _Scale:
    """Maps metric values to x pixels inside the plotting band."""

    low: float
    high: float
    left: float
    right: float

    def x(self, value: float) -> float:
        return self.left + (value - self.low) / (self.high - self.low) * (self.right - self.left)


def render_metric_bars(
    groups: Sequence[str],
    values: Sequence[float | None],
    *,
    lower: Sequence[float | None] | None = None,
    upper: Sequence[float | None] | None = None,
    threshold: float | None = None,
    title: str = "",
    muted: Sequence[bool] | None = None,
    notes: Sequence[str | None] | None = None,
    width: int = 640,
    row_height: int = 26,
) -> str:
    """Horizontal bars of one metric per group, with interval whiskers and a threshold line.

    ``lower``/``upper`` are the bootstrap interval ends; ``muted`` greys out groups that are
    not judged (too few rows); ``notes`` replaces the printed value, e.g. "undefined", for
    groups without one. Returns a standalone ``<svg>`` document string.
    """
    count = len(groups)
    lower = list(lower) if lower is not None else [None] * count
    upper = list(upper) if upper is not None else [None] * count
    muted = list(muted) if muted is not None else [False] * count
    notes = list(notes) if notes is not None else [None] * count
    if not all(len(seq) == count for seq in (values, lower, upper, muted, notes)):
        raise ValueError("groups, values and the optional sequences must have equal lengths")
    numbers = [v for v in [*values, *lower, *upper, threshold] if _finite(v)]
    shown = [n or (f"{v:.2f}" if _finite(v) else "n/a") for n, v in zip(notes, values, strict=True)]
    label_width = _text_width(groups)
    value_width = _text_width(shown)
    # Widen rather than clip: long labels must stay readable in an exported report.
    width = max(width, label_width + value_width + 200)
    scale = _Scale(*_domain(numbers), left=label_width, right=width - value_width)
    top = 44 if title else 28
    bottom = top + row_height * count
    height = bottom + 28
    label = quoteattr(title or "bar chart")
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label={label}>",
        f"<title>{escape(title or 'bar chart')}</title>",
    ]
    if title:
        parts.append(_text(8, 18, title, extra=" font-weight='bold'"))
    zero = scale.x(0.0)
    parts.append(f"<line x1='{zero:.1f}' y1='{top}' x2='{zero:.1f}' y2='{bottom}' stroke='#888'/>")
    for i, group in enumerate(groups):
        y = top + i * row_height
        parts.extend(_row(scale, y, row_height, group, values[i], lower[i], upper[i]))
        parts.append(_text(scale.right + 8, y + row_height / 2 + 4, shown[i]))
        if muted[i]:
            parts.append(
                f"<rect x='0' y='{y}' width='{width}' height='{row_height}' "
                "fill='#ffffff' fill-opacity='0.55'/>"
            )
    parts.append(_text(scale.left, bottom + 18, f"{scale.low:g}", anchor="middle"))
    parts.append(_text(scale.right, bottom + 18, f"{scale.high:g}", anchor="middle"))
    if _finite(threshold):
        parts.extend(_threshold(scale, threshold, top, bottom))
    parts.append("</svg>")
    return "\n".join(parts)


def _row(
    scale: _Scale,
    y: float,
    row_height: int,
    group: str,
    value: float | None,
    low: float | None,
    high: float | None,
) -> list[str]:
    middle = y + row_height / 2
    parts = [_text(8, middle + 4, group)]
    if _finite(value):
        start, end = sorted((scale.x(0.0), scale.x(value)))
        parts.append(
            f"<rect x='{start:.1f}' y='{y + 5:.1f}' width='{end - start:.1f}' "
            f"height='{row_height - 10}' fill='{BAR_COLOUR}'/>"
        )
    if _finite(low) and _finite(high):
        stroke = f"stroke='{TEXT_COLOUR}' stroke-width='1'"
        x1, x2 = scale.x(low), scale.x(high)
        parts.append(f"<line x1='{x1:.1f}' y1='{middle}' x2='{x2:.1f}' y2='{middle}' {stroke}/>")
        for x in (x1, x2):
            parts.append(
                f"<line x1='{x:.1f}' y1='{middle - 5}' x2='{x:.1f}' y2='{middle + 5}' {stroke}/>"
            )
    return parts


def _threshold(scale: _Scale, threshold: float, top: float, bottom: float) -> list[str]:
    x = scale.x(threshold)
    return [
        f"<line x1='{x:.1f}' y1='{top - 6}' x2='{x:.1f}' y2='{bottom + 4}' "
        f"stroke='{THRESHOLD_COLOUR}' stroke-width='1.5' stroke-dasharray='4 3'/>",
        _text(x, top - 10, f"threshold {threshold:g}", anchor="middle"),
    ]


def chart_from_report(
    feature_set: Mapping[str, Any], metric: str, *, threshold: float | None = None
) -> str:
    """Bar chart of ``metric`` for one feature set of a ``rules`` report (values, intervals,
    groups below the minimum size greyed, undefined values labelled instead of drawn)."""
    rows = [g for g in feature_set["groups"] if g["status"] != "empty"]
    cells = [g["metrics"][metric] for g in rows]
    intervals = [c["ci"] or [None, None] for c in cells]
    return render_metric_bars(
        [g["group"] for g in rows],
        [None if c["undefined"] else c["value"] for c in cells],
        lower=[ci[0] for ci in intervals],
        upper=[ci[-1] for ci in intervals],
        threshold=threshold,
        title=f"{metric} by {feature_set['key']}",
        muted=[g["status"] != "ok" for g in rows],
        notes=[f"undefined: {c['undefined_reason']}" if c["undefined"] else None for c in cells],
    )


def selection_rate_chart(feature_set: Mapping[str, Any]) -> str:
    """The selection-rate chart of a feature set, with the four-fifths line drawn where a
    ratio rule against the reference group puts it (reference rate × the rule's minimum)."""
    threshold = None
    reference = next((g for g in feature_set["groups"] if g.get("is_reference")), None)
    for verdict in feature_set.get("verdicts", []):
        if (
            verdict.get("metric") == "selection_rate"
            and verdict.get("kind") == "ratio"
            and verdict.get("against") == "reference"
            and verdict.get("min") is not None
            and reference is not None
        ):
            value = reference["metrics"]["selection_rate"]["value"]
            if value is not None:
                threshold = value * verdict["min"]
            break
    return chart_from_report(feature_set, "selection_rate", threshold=threshold)
