"""Validators for structured fields, raising errors a user can act on."""

import re

from django.core.exceptions import ValidationError

from registry.choices import ALL_METRICS, Direction, Split

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COLUMN_TYPES = ("integer", "float", "string", "boolean", "datetime", "category")


def validate_sha256(value: str) -> None:
    if not SHA256_RE.match(value or ""):
        raise ValidationError("must be a SHA-256 digest: 64 lowercase hexadecimal characters")


def _require_keys(item, keys, where):
    if not isinstance(item, dict):
        raise ValidationError(f"{where} must be an object")
    missing = [key for key in keys if key not in item]
    if missing:
        raise ValidationError(f"{where} is missing {', '.join(missing)}")


def validate_acceptance_criteria(value) -> None:
    """A list of {metric, threshold, direction, split} the model must meet before release.

    Every criterion gates the release (governance/gates.py), which is judged on a test-split
    dataset version only: a criterion naming another split could never be met as written.
    """
    if not isinstance(value, list):
        raise ValidationError("acceptance criteria must be a list")
    for index, item in enumerate(value):
        where = f"criterion {index + 1}"
        _require_keys(item, ("metric", "threshold", "direction", "split"), where)
        if item["metric"] not in ALL_METRICS:
            raise ValidationError(
                f"{where}: unknown metric {item['metric']!r}; use one of {', '.join(ALL_METRICS)}"
            )
        threshold = item["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValidationError(f"{where}: threshold must be a number")
        if item["direction"] not in Direction.values:
            raise ValidationError(f"{where}: direction must be 'higher' or 'lower'")
        if item["split"] not in Split.values:
            raise ValidationError(f"{where}: split must be one of {', '.join(Split.values)}")
        if item["split"] != Split.TEST:
            raise ValidationError(
                f"{where}: split must be 'test', not {item['split']!r}: acceptance criteria "
                "decide the release, which needs an evaluation on a test-split dataset version"
            )


def validate_schema(value) -> None:
    """A dataset schema: a list of {name, type} with unique column names."""
    if not isinstance(value, list):
        raise ValidationError("schema must be a list of {name, type} columns")
    seen = set()
    for index, column in enumerate(value):
        where = f"column {index + 1}"
        _require_keys(column, ("name", "type"), where)
        name = column["name"]
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where}: name must be a non-empty string")
        if name in seen:
            raise ValidationError(f"{where}: duplicate column name {name!r}")
        seen.add(name)
        if column["type"] not in COLUMN_TYPES:
            raise ValidationError(f"{where}: type must be one of {', '.join(COLUMN_TYPES)}")


def validate_string_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError("must be a list of non-empty strings")


def validate_json_object(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("must be a JSON object")


def validate_metrics(value) -> None:
    """A flat {name: number} mapping."""
    validate_json_object(value)
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValidationError(f"metric {name!r} must be a number")
