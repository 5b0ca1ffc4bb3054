"""The rest-json wire format of Kinesis Video (botocore's service models).

Every call is a SigV4-signed POST of a JSON body to a lower-camel path;
timestamps travel as epoch seconds (floats). Errors carry
``x-amzn-ErrorType: <Code>:<doc url>`` and a JSON ``message``/``Message``.
"""

from __future__ import annotations

import base64
import json
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from .errors import InvalidArgumentError
from .models import Image, StreamInfo

# Operation -> request path (botocore's requestUri), control plane and archived media.
PATHS: Final = {
    operation: "/" + operation[0].lower() + operation[1:]
    for operation in (
        "ListStreams",
        "DescribeStream",
        "GetDataEndpoint",
        "GetHLSStreamingSessionURL",
        "GetDASHStreamingSessionURL",
        "ListFragments",
        "GetImages",
        "GetClip",
        "GetMediaForFragmentList",
    )
}
ERROR_TYPE_HEADER: Final = "x-amzn-ErrorType"
ERROR_BODY_MAX: Final = 64 * 1024  # bytes of an error answer read at most


def dumps(params: Mapping[str, Any]) -> bytes:
    """A request body."""
    return json.dumps(params, separators=(",", ":")).encode()


def epoch_seconds(value: datetime) -> float:
    """A request timestamp (aware datetimes only)."""
    if value.tzinfo is None:
        raise InvalidArgumentError("Timestamps must be timezone-aware.")
    return value.timestamp()


def check_range(name: str, value: int, low: int, high: int) -> int:
    """A number within the model's bounds, or InvalidArgumentError before any call."""
    if not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be between {low} and {high}.")
    return value


def answer_time(value: Any) -> datetime:
    """A response timestamp: epoch seconds (KVS's JSON) or ISO 8601, in UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    raise ValueError("Not a timestamp")


def _epoch_ms(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 1000)
    return round(answer_time(value).timestamp() * 1000)


def error_of(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(AWS error code, message) of an error answer, as botocore reads them."""
    code = headers.get(ERROR_TYPE_HEADER, "").split(":", 1)[0]
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if not code:
        raw = data.get("__type") or data.get("code") or data.get("Code") or ""
        code = str(raw).rsplit("#", 1)[-1]
    message = data.get("message") or data.get("Message") or ""
    return code, str(message)


def loads_object(body: bytes) -> dict[str, Any]:
    """A JSON object answer; ValueError if it is none."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("Not a JSON object")
    return data


# -- answers --------------------------------------------------------------------


def stream_info(info: Mapping[str, Any]) -> StreamInfo:
    """A StreamInfo of DescribeStream / ListStreams."""
    created = info.get("CreationTime")
    return StreamInfo(
        name=info["StreamName"],
        arn=info["StreamARN"],
        status=info["Status"],
        media_type=info.get("MediaType"),
        retention_hours=info.get("DataRetentionInHours", 0),
        created=None if created is None else answer_time(created),
        device_name=info.get("DeviceName"),
        version=info.get("Version"),
    )


def images(raw: list[Mapping[str, Any]]) -> list[Image]:
    """GetImages results, base64 decoded, oldest first (executor: up to MBs)."""
    result = [
        Image(
            timestamp=answer_time(item["TimeStamp"]),
            content=base64.b64decode(item["ImageContent"])
            if "ImageContent" in item
            else None,
            error=item.get("Error"),
        )
        for item in raw
    ]
    return sorted(result, key=lambda image: image.timestamp)


@dataclass(slots=True)
class FragmentPage:
    """One ListFragments page as columns, and its NextToken."""

    numbers: list[str]
    producer_ms: array[int]
    server_ms: array[int]
    duration_ms: array[int]
    size: array[int]
    next_token: str | None


_FRAGMENTS: Final = re.compile(rb'"Fragments"\s*:\s*\[')
_JSON_NUMBER: Final = rb"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*[,}]"
_NUMBER_FIELD: Final = re.compile(rb'"FragmentNumber"\s*:\s*"(\d+)"\s*[,}]')
_NUMERIC_FIELDS: Final = tuple(
    re.compile(b'"' + name + b'"' + _JSON_NUMBER)
    for name in (
        b"ProducerTimestamp",
        b"ServerTimestamp",
        b"FragmentLengthInMilliseconds",
        b"FragmentSizeInBytes",
    )
)


def fragment_page(body: bytes) -> FragmentPage:
    """Parse a ListFragments page with a handful of objects, whatever its size.

    ``json.loads`` would build a dict per fragment (1000 a page), which is what
    drives the garbage collector when a day is listed. The fragments array is
    scanned instead, one field at a time (each ``findall`` is one list of
    bytes); the rest of the page is small and goes through ``json.loads``. An
    answer the scan cannot vouch for (a field missing, another layout) is parsed
    the plain way. ValueError if it is not a ListFragments answer.
    """
    if (match := _FRAGMENTS.search(body)) is not None:
        end = body.find(b"]", match.end())
        if end != -1:
            try:
                page = _scanned_page(body, match.end(), end)
            except ValueError:
                page = None
            if page is not None:
                return page
    return _decoded_page(loads_object(body))


def _scanned_page(body: bytes, start: int, end: int) -> FragmentPage | None:
    """The fast path; None if the array's fields do not line up."""
    outer = loads_object(body[:start] + body[end:])
    if outer.get("Fragments") != []:
        return None
    section = body[start:end]
    count = section.count(b"{")
    numbers = _NUMBER_FIELD.findall(section)
    columns = [pattern.findall(section) for pattern in _NUMERIC_FIELDS]
    if section.count(b"}") != count or any(
        len(values) != count for values in (numbers, *columns)
    ):
        return None
    producer, server, duration, size = columns
    return FragmentPage(
        numbers=b"\0".join(numbers).decode("ascii").split("\0") if count else [],
        producer_ms=array("q", [round(float(value) * 1000) for value in producer]),
        server_ms=array("q", [round(float(value) * 1000) for value in server]),
        duration_ms=array("q", [int(value) for value in duration]),
        size=array("q", [int(value) for value in size]),
        next_token=_token(outer),
    )


def _decoded_page(data: Mapping[str, Any]) -> FragmentPage:
    """The plain path: a decoded page, optional fields defaulting to 0."""
    page = FragmentPage([], array("q"), array("q"), array("q"), array("q"), None)
    items = data.get("Fragments") or []
    if not isinstance(items, list):
        raise ValueError("Fragments is not a list")
    for item in items:
        page.numbers.append(str(item["FragmentNumber"]))
        page.producer_ms.append(_epoch_ms(item["ProducerTimestamp"]))
        page.server_ms.append(_epoch_ms(item["ServerTimestamp"]))
        page.duration_ms.append(int(item.get("FragmentLengthInMilliseconds", 0)))
        page.size.append(int(item.get("FragmentSizeInBytes", 0)))
    page.next_token = _token(data)
    return page


def _token(data: Mapping[str, Any]) -> str | None:
    token = data.get("NextToken")
    return str(token) if token else None
