"""The archive actions' fields and schemas, and how bad input is answered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, cast

import voluptuous as vol
from homeassistant.const import MAJOR_VERSION
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import VolSchemaType

from .const import (
    MAX_URL_LIFETIME,
    MIN_URL_LIFETIME,
    TIMESTAMP_PRODUCER,
    TIMESTAMP_SERVER,
)
from .kvs import PlaybackMode
from .translated_errors import invalid

_LOGGER = logging.getLogger(__name__)

ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_DURATION: Final = "duration"
ATTR_TIMESTAMP_TYPE: Final = "timestamp_type"
ATTR_FILENAME: Final = "filename"
ATTR_FOLDER: Final = "folder"
ATTR_OVERWRITE: Final = "overwrite"
ATTR_LIMIT: Final = "limit"
ATTR_PROTOCOL: Final = "protocol"
ATTR_MODE: Final = "mode"
ATTR_EXPIRES: Final = "expires"
ATTR_FRAGMENTS: Final = "fragments"
ATTR_INTERVAL: Final = "interval"
ATTR_FORMAT: Final = "format"
ATTR_WIDTH: Final = "width"
ATTR_HEIGHT: Final = "height"

# ListFragments and GetClip accept ranges of up to 24 hours.
MAX_RANGE: Final = timedelta(hours=24)
DEFAULT_LIST_LIMIT: Final = 1000
# How much of the caller's input a message quotes: a 10 KB name is not echoed.
MAX_QUOTED: Final = 300

# The AWS spellings too, as automations may have them (any case).
TIMESTAMP_TYPES: Final = {
    "server": TIMESTAMP_SERVER,
    "producer": TIMESTAMP_PRODUCER,
    TIMESTAMP_SERVER.lower(): TIMESTAMP_SERVER,
    TIMESTAMP_PRODUCER.lower(): TIMESTAMP_PRODUCER,
}
MODES: Final[dict[str, PlaybackMode]] = {
    "live": "LIVE",
    "live_replay": "LIVE_REPLAY",
    "on_demand": "ON_DEMAND",
}


def shorten(text: str) -> str:
    """At most MAX_QUOTED characters of the caller's input in a message."""
    if len(text) <= MAX_QUOTED:
        return text
    return text[: MAX_QUOTED - 1] + "…"


def _lower(value: Any) -> str:
    """Select options in any case (``LIVE_REPLAY`` as in the AWS docs)."""
    return cv.string(value).lower()


class _DurationTooLong(vol.Invalid):
    """A duration longer than any action accepts (answered as range_too_long)."""


def _duration(value: Any) -> timedelta:
    """A positive duration of at most a day.

    Home Assistant's validator overflows on huge numbers (``1e20``,
    ``{"days": 1e10}``): that is bad input, not a failure.
    """
    try:
        duration: timedelta = cv.positive_time_period(value)
    except OverflowError as err:
        raise _DurationTooLong("the duration is longer than 24 hours") from err
    except (vol.Invalid, ValueError) as err:  # ValueError: NaN in a dictionary
        raise vol.Invalid(
            'expected a positive duration such as "00:02:00", 120 (seconds) '
            'or {"minutes": 2}'
        ) from err
    if duration > MAX_RANGE:
        raise _DurationTooLong("the duration is longer than 24 hours")
    return duration


_RANGE_FIELDS: Final = {
    vol.Optional(ATTR_START): cv.datetime,
    vol.Optional(ATTR_END): cv.datetime,
    vol.Optional(ATTR_DURATION): _duration,
    vol.Optional(ATTR_TIMESTAMP_TYPE): vol.All(_lower, vol.In(list(TIMESTAMP_TYPES))),
}

SAVE_CLIP_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_FILENAME): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
    }
)
LIST_FRAGMENTS_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_LIMIT, default=DEFAULT_LIST_LIMIT): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=100_000)
        ),
    }
)
GET_PLAYBACK_URL_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_PROTOCOL, default="hls"): vol.All(
            _lower, vol.In(["hls", "dash"])
        ),
        vol.Optional(ATTR_MODE, default="live"): vol.All(_lower, vol.In(list(MODES))),
        vol.Optional(ATTR_EXPIRES): vol.All(
            vol.Coerce(int), vol.Range(min=MIN_URL_LIFETIME, max=MAX_URL_LIFETIME)
        ),
    }
)


def _fragments_or_range(data: dict[str, Any]) -> dict[str, Any]:
    """save_fragments takes fragment numbers or a time range: one of the two."""
    has_range = any(key in data for key in (ATTR_START, ATTR_END, ATTR_DURATION))
    if (ATTR_FRAGMENTS in data) == has_range:
        raise vol.Invalid(
            "give either fragment numbers or a time range (start, end, duration)"
            + (", not both" if has_range else ""),
            path=[ATTR_FRAGMENTS],
        )
    return data


SAVE_FRAGMENTS_SCHEMA: Final = vol.All(
    cv.make_entity_service_schema(
        {
            **_RANGE_FIELDS,
            vol.Optional(ATTR_FRAGMENTS): vol.All(
                cv.ensure_list,
                vol.Length(min=1),
                # A full match: "$" would let a trailing line break through.
                [
                    vol.All(
                        cv.string,
                        vol.Match(
                            r"\A\d{1,128}\Z",
                            msg="a fragment number is 1 to 128 digits, as "
                            "list_fragments answers it",
                        ),
                    )
                ],
            ),
            vol.Optional(ATTR_FILENAME): cv.string,
            vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
        }
    ),
    _fragments_or_range,
)
SAVE_IMAGES_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_INTERVAL, default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.2, max=20)
        ),
        vol.Optional(ATTR_FORMAT, default="jpeg"): vol.All(
            _lower, vol.In(["jpeg", "png"])
        ),
        vol.Optional(ATTR_WIDTH): vol.All(vol.Coerce(int), vol.Range(min=1, max=3840)),
        vol.Optional(ATTR_HEIGHT): vol.All(vol.Coerce(int), vol.Range(min=1, max=2160)),
        vol.Optional(ATTR_FOLDER): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
    }
)


def _field(path: list[Any]) -> str:
    """``fragments[0]`` for the path ``["fragments", 0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text or "data"


# Home Assistant's REST API answers a schema error with a bare 400, and since
# 2026 a ServiceValidationError with a 400 and its message (before: a 500).
REST_ANSWERS_VALIDATION_ERRORS: Final = MAJOR_VERSION >= 2026


def guarded(schema: Callable[[Any], Any]) -> VolSchemaType:
    """``schema``, its errors raised as ServiceValidationError where that helps.

    Where the REST API answers one with its message (see above), the caller
    learns what to change; the frontend and automations show either kind.
    """

    def validate(data: Any) -> Any:
        try:
            return schema(data)
        except vol.Invalid as err:
            errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
            if any(isinstance(error, _DurationTooLong) for error in errors):
                # As a range of more than 24 hours is answered.
                raise invalid("range_too_long") from err
            if not REST_ANSWERS_VALIDATION_ERRORS:
                raise
            text = "; ".join(f"{_field(list(e.path))}: {e.msg}" for e in errors)
            raise invalid("invalid_input", error=shorten(text)) from err
        except (TypeError, ValueError, OverflowError) as err:
            # A validator of Home Assistant's that did not expect the type
            # (entity_id: 5 fails with TypeError): still the caller's input.
            _LOGGER.debug("Unreadable action data: %r", err)
            message = "a value of the wrong type or size"
            if not REST_ANSWERS_VALIDATION_ERRORS:
                raise vol.Invalid(message) from err
            raise invalid("invalid_input", error=message) from err

    # voluptuous's Schema is probatio's at run time (Home Assistant >= 2026.x).
    return cast("VolSchemaType", vol.Schema(validate))
