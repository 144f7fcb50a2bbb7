"""A report's window: its ends in UTC, to the microsecond, as a call gives them or by
default the last 24 hours; and how the answers spell a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.errors import InvalidInput

DEFAULT_WINDOW = timedelta(hours=24)
Window = tuple[datetime, datetime]


def window(since: datetime | None, until: datetime | None) -> Window:
    """The window a call means (naive times are UTC); 422 for an empty one."""
    try:
        end = _utc(until if until is not None else datetime.now(UTC))
        start = _utc(since) if since is not None else end - DEFAULT_WINDOW
    except OverflowError:  # before the year 1 or after 9999, once in UTC
        raise InvalidInput("the window's times must be between the years 1 and 9999") from None
    if start >= end:
        raise InvalidInput(f"the window is empty: since {start.isoformat()} is not before until")
    return start, end


def _utc(moment: datetime) -> datetime:
    """In UTC, to the microsecond as given (server.monitoring.rows compares)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
