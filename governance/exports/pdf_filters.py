"""Template filters of the PDF templates (loaded as builtins of the PDF template engine)."""

import json
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
