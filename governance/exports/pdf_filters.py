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


# Audit events are set as preformatted monospace text, wrapped here, in blocks of many events:
# WeasyPrint's cost grows with the number of boxes it lays out and draws, and a box per event
# (let alone a table row with cells, or an inline <b> header) costs several times the text
# itself (see bench/bench_pdf.py). Each event starts with its #sequence at the left edge, its
# values before and after on the next line; only continuation lines are indented. Only &, <
# and > are escaped: the JSON's many quotes as entities slow the HTML parser down.
EVENT_COLUMNS = 144  # 6 pt DejaVu Sans Mono across A4 between 12 mm margins
EVENTS_PER_BLOCK = 50


def _text(value: str) -> str:
    return mark_safe(  # noqa: S308 - the characters that make markup are escaped
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _wrapped(text: str, indent: str = "    ") -> str:
    if len(text) <= EVENT_COLUMNS and text.isprintable():
        return text.rstrip()  # what textwrap makes of one short line, thousands of times faster
    lines = textwrap.wrap(
        text,
        EVENT_COLUMNS,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )
    return "\n".join(lines or [""])


def event_text(event: dict) -> str:
    """One audit event as plain text: #sequence, UTC time, actor, action, object (reason) on
    the first line(s), then the values before and after, on one line when they fit."""
    reason = f"  ({event['reason']})" if event.get("reason") else ""
    header = _wrapped(
        f"#{event['sequence']}  {utc(event['occurred_at'])}  {event['actor']}  "
        f"{event['action']}  {event['object_type']} #{event['object_id']}{reason}"
    )
    parts = [f"{name}: {as_json(event[name])}" for name in ("before", "after") if event.get(name)]
    if not parts:
        return header
    joined = "   ".join(parts)
    if len(joined) <= EVENT_COLUMNS:
        return f"{header}\n{joined}"
    return "\n".join([header, *(_wrapped(part, indent=" " * 7) for part in parts)])


@register.filter
def event_blocks(events: list[dict]) -> list[str]:
    """The events as escaped blocks of preformatted text, `EVENTS_PER_BLOCK` events each."""
    texts = [event_text(event) for event in events]
    return [
        _text("\n".join(texts[start : start + EVENTS_PER_BLOCK]))
        for start in range(0, len(texts), EVENTS_PER_BLOCK)
    ]
