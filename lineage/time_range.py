"""The date-times lineage input may name (an event's `eventTime`, a query's `asOf`): those
both databases store and Python reads back, in any time zone.

Python's datetime holds the years 1 to 9999. SQLite stores a date-time as UTC text, and
PostgreSQL hands it back in UTC: a time whose UTC form falls outside those years cannot be
stored on SQLite (OverflowError) nor read back from PostgreSQL. A day's margin at each end
keeps every accepted time inside them in whatever time zone it is later shown in.
"""

from datetime import UTC, datetime

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
RANGE = "between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59Z"


def storable(value: datetime) -> bool:
    """Whether an aware date-time lies between EARLIEST and LATEST."""
    return EARLIEST <= value <= LATEST
