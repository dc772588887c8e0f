"""Fairness results as tables and bar charts, read generically from an audit's result JSON.

The fairness audit's result shape belongs to the fairness work; a report shows whatever
`result["groups"]` and `result["rules"]` hold, as a list of rows or a mapping of rows.
"""

import re
from xml.sax.saxutils import escape

from django.utils.safestring import mark_safe

from governance.exports import fonts

BAR_H, BAR_GAP, LABEL_W, CHART_W = 10, 3, 150, 300
# The font-family attribute of an SVG element's start tag (text content never holds a "<").
_SVG_FONT = re.compile(r"(<[a-z]+\b[^<>]*?)font-family=(?:'[^']*'|\"[^\"]*\")")
# SVG text is costly to lay out (about 10 ms per label): two charts, values in the table.
MAX_CHARTS = 2


def tabulate(value) -> dict | None:
    """{"columns": [...], "rows": [[...]]} for a list or mapping of rows, or of values."""
    if value in (None, {}, []):
        return None
    if isinstance(value, dict):
        if all(isinstance(v, dict) for v in value.values()):
            columns = ["group", *_keys(value.values())]
            rows = [[name, *[row.get(c) for c in columns[1:]]] for name, row in value.items()]
            return {"columns": columns, "rows": rows}
        return {"columns": ["name", "value"], "rows": [[k, v] for k, v in value.items()]}
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            columns = _keys(value)
            return {"columns": columns, "rows": [[row.get(c) for c in columns] for row in value]}
        return {"columns": ["value"], "rows": [[v] for v in value]}
    return {"columns": ["value"], "rows": [[value]]}


def _keys(rows) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bar_chart(table: dict, column: str) -> str:
    """Horizontal bars of one numeric column, one bar per group (escaped SVG)."""
    index = table["columns"].index(column)
    rows = [(str(row[0]), row[index]) for row in table["rows"] if _is_number(row[index])]
    top = max((abs(v) for _, v in rows), default=0) or 1
    height = len(rows) * (BAR_H + BAR_GAP) + 16
    width = LABEL_W + CHART_W + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Stagegate Sans">',
        f'<text x="0" y="9" font-size="8" font-weight="bold">{escape(column)} '
        f"(longest bar: {top:.4g})</text>",
    ]
    for i, (name, value) in enumerate(rows):
        y = 14 + i * (BAR_H + BAR_GAP)
        bar = CHART_W * abs(value) / top
        parts.append(
            f'<text x="0" y="{y + 8}" font-size="7">{escape(name[:32])}</text>'
            f'<rect x="{LABEL_W}" y="{y}" width="{bar:.1f}" height="{BAR_H}" fill="#60a5fa"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def pdf_svg(svg: str) -> str:
    """A fairness chart set in the document's own font. The charts name browser fonts for the
    web pages; in a PDF those would be whatever fontconfig finds on the machine (two more
    fonts to embed, and a document that depends on the machine)."""
    return _SVG_FONT.sub(rf"\1font-family='{fonts.FAMILY}'", svg)


def feature_set_view(feature_set: dict, metrics: list[str]) -> dict:
    """One feature set of a fairness report: its per-group table, verdicts and a chart."""
    from governance.fairness.charts import selection_rate_chart

    shown = [m for m in metrics if m != "count"]
    rows = []
    for group in feature_set.get("groups", []):
        if group.get("status") == "empty":
            continue
        cells = [group["metrics"].get(m, {}) for m in shown]
        rows.append(
            [
                group["group"],
                group["count"],
                group["status"],
                *["undefined" if c.get("undefined") else c.get("value") for c in cells],
            ]
        )
    chart = ""
    if "selection_rate" in shown:
        chart = mark_safe(pdf_svg(selection_rate_chart(feature_set)))  # noqa: S308 - escaped
    return {
        "key": feature_set.get("key", ""),
        "groups": {"columns": ["group", "count", "status", *shown], "rows": rows},
        "verdicts": [
            {"verdict": v.get("verdict"), "sentence": v.get("sentence", "")}
            for v in feature_set.get("verdicts", [])
        ],
        "chart": chart,
    }


def audit_view(audit: dict) -> dict:
    """An audit record with its tables and charts, ready for a template. A report made by
    governance.fairness (with feature sets) is shown set by set; anything else generically."""
    result = audit.get("result") or {}
    if "feature_sets" in result:
        metrics = list((result.get("config") or {}).get("metrics", []))
        return {
            **audit,
            "feature_sets": [feature_set_view(fs, metrics) for fs in result["feature_sets"]],
            "summary": tabulate(result.get("summary")),
            "groups": None,
            "rules": None,
            "charts": [],
        }
    groups = tabulate(result.get("groups"))
    charts = []
    if groups:
        numeric = [
            c
            for i, c in enumerate(groups["columns"])
            if i > 0 and any(_is_number(row[i]) for row in groups["rows"])
        ][:MAX_CHARTS]
        charts = [mark_safe(bar_chart(groups, c)) for c in numeric]  # noqa: S308 - escaped
    other = {k: v for k, v in result.items() if k not in ("groups", "rules")}
    return {
        **audit,
        "groups": groups,
        "rules": tabulate(result.get("rules")),
        "summary": tabulate(other) if other else None,
        "charts": charts,
    }
