"""The time range an action asks for: start, end and duration, checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from homeassistant.core import ServiceCall
from homeassistant.util import dt as dt_util

from .action_schemas import ATTR_DURATION, ATTR_END, ATTR_START, MAX_RANGE
from .event_wait import MAX_AHEAD
from .kvs import PlaybackMode
from .translated_errors import invalid

_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """Naive times are Home Assistant's local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(value)


def time_range(
    call: ServiceCall, *, default_end: datetime | None
) -> tuple[datetime, datetime]:
    """[start, end] from start/end/duration; end defaults to ``default_end``."""
    try:
        return _checked_range(call, default_end=default_end)
    except OverflowError as err:  # a range near year 1 or 9999
        raise invalid("range_too_long") from err


def _checked_range(
    call: ServiceCall, *, default_end: datetime | None
) -> tuple[datetime, datetime]:
    start = call.data.get(ATTR_START)
    end = call.data.get(ATTR_END)
    duration: timedelta | None = call.data.get(ATTR_DURATION)
    if start is not None and end is not None and duration is not None:
        raise invalid("range_overdetermined")
    if start is not None:
        start = as_utc(start)
    if end is not None:
        end = as_utc(end)
    if start is not None and duration is not None:
        end = start + duration
    if end is None:
        end = default_end
    if start is None and duration is not None and end is not None:
        start = end - duration
    if start is None or end is None:
        raise invalid("range_required")
    if end < start:
        raise invalid("end_before_start")
    if end == start:
        raise invalid("empty_range")
    if end - start > MAX_RANGE:
        raise invalid("range_too_long")
    # Later steps shift by up to a day (local time, image windows): a range
    # too close to the calendar's ends would overflow there.
    if start - _EARLIEST < MAX_RANGE or _LATEST - end < MAX_RANGE:
        raise invalid("range_too_long")
    return start, end


def start_only(value: datetime) -> datetime:
    """A start without an end, kept as far from the calendar's ends as a range."""
    try:
        start = as_utc(value)
    except OverflowError as err:  # year 1 or 9999 shifted out by its offset
        raise invalid("start_out_of_range") from err
    if start - _EARLIEST < MAX_RANGE or _LATEST - start < MAX_RANGE:
        raise invalid("start_out_of_range")
    return start


def playback_range(
    call: ServiceCall, mode: PlaybackMode
) -> tuple[datetime | None, datetime | None]:
    """The range of a playback session: none live, open-ended in live replay."""
    data = call.data
    if mode == "LIVE":
        if any(key in data for key in (ATTR_START, ATTR_END, ATTR_DURATION)):
            raise invalid("range_not_for_live")
        return None, None
    if mode != "LIVE_REPLAY":
        return time_range(call, default_end=dt_util.utcnow())
    if ATTR_START not in data and ATTR_DURATION not in data:
        raise invalid("start_required")
    # Replay runs on into live video unless an end is given.
    if ATTR_END in data or (ATTR_START in data and ATTR_DURATION in data):
        return time_range(call, default_end=None)
    if ATTR_START in data:
        return start_only(data[ATTR_START]), None
    return time_range(call, default_end=dt_util.utcnow())[0], None


def saved_range(call: ServiceCall) -> tuple[datetime, datetime]:
    """[start, end] of a save; the end may lie up to MAX_AHEAD in the future."""
    start, end = time_range(call, default_end=dt_util.utcnow())
    if end - dt_util.utcnow() > MAX_AHEAD:
        raise invalid(
            "end_too_far_ahead", minutes=str(MAX_AHEAD // timedelta(minutes=1))
        )
    return start, end
