"""Template filters of the PDF templates (loaded as builtins of the PDF template engine)."""

import json
import textwrap
from datetime import UTC, datetime

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def utc(value) -> str:
    """An ISO timestamp (or datetime) as "YYYY-MM-DD HH:MM:SS UTC"; blank stays blank."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def as_json(value) -> str:
    """A compact, key-sorted JSON rendering of before/after values and parameters."""
    if value in (None, {}, []):
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def number(value) -> str:
    """Numbers to four decimals, everything else as given."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


@register.filter
def label(value) -> str:
    """snake_case keys as words ("selection_rate" → "selection rate")."""
    return str(value).replace("_", " ")


@register.filter(is_safe=True)
def css_string(value) -> str:
    """Text as the inside of a CSS string in a <style> element (for running headers)."""
    out = []
    for char in str(value):
        if char.isalnum() or char in " .,:/-_()#·—":
            out.append(char)
        else:
            out.append(f"\\{ord(char):06x}")
    return mark_safe("".join(out))  # noqa: S308 - every other character is hex-escaped


@register.filter
def get_item(mapping, key):
    """mapping[key] in a template (None when absent)."""
    return (mapping or {}).get(key)


# Audit events are set as preformatted monospace text, wrapped here: a table of thousands of
# rows costs WeasyPrint about four times as much layout work (see bench/bench_pdf.py). Only
# &, < and > are escaped: the JSON's many quotes as entities slow the HTML parser down.
EVENT_COLUMNS = 144  # 6 pt DejaVu Sans Mono across A4 between 12 mm margins


def _text(value: str) -> str:
    return mark_safe(  # noqa: S308 - the characters that make markup are escaped
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _wrapped(text: str, indent: str = "    ") -> str:
    lines = textwrap.wrap(
        text,
        EVENT_COLUMNS,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )
    return "\n".join(lines or [""])


@register.filter(is_safe=True)
def event_header(event: dict) -> str:
    """#sequence, UTC time, actor, action and object of an audit event, wrapped."""
    reason = f"  ({event['reason']})" if event.get("reason") else ""
    return _text(
        _wrapped(
            f"#{event['sequence']}  {utc(event['occurred_at'])}  {event['actor']}  "
            f"{event['action']}  {event['object_type']} #{event['object_id']}{reason}"
        )
    )


@register.filter(is_safe=True)
def event_changes(event: dict) -> str:
    """The before and after values of an audit event, wrapped; on one line when they fit."""
    parts = [f"{name}: {as_json(event[name])}" for name in ("before", "after") if event.get(name)]
    joined = "   ".join(parts)
    if len(joined) <= EVENT_COLUMNS:
        return _text(joined)
    return _text("\n".join(_wrapped(part, indent="       ") for part in parts))
