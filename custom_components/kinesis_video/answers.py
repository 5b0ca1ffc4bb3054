"""What the archive actions answer: plain JSON of fragments, gaps and saves."""

from __future__ import annotations

import asyncio
import operator
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, overload

from homeassistant.helpers.json import json_bytes, json_fragment
from homeassistant.util import dt as dt_util

from . import timeline
from .clip import Gap, find_gaps, fragment_end, fragment_time, summary_of
from .export import ClipExport, FragmentsExport, ImagesExport
from .kvs import FragmentList, Image, SessionUrl, TimestampType
from .timeline import from_ms

if TYPE_CHECKING:
    import orjson


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601, or None."""
    return None if value is None else dt_util.as_utc(value).isoformat()


def gaps_json(gaps: list[Gap]) -> list[dict[str, Any]]:
    """The gaps of a range."""
    return [
        {"start": iso(gap.start), "end": iso(gap.end), "seconds": gap.seconds}
        for gap in gaps
    ]


def iso_ms(value: int) -> str:
    """UTC ISO 8601 of epoch milliseconds."""
    return from_ms(value).isoformat()


# The end of iso_ms's text for each second of a minute and millisecond of a
# second: whole seconds have no fraction, others are shown in microseconds.
_SECONDS: Final = tuple(f"{second:02d}" for second in range(60))
_MILLIS: Final = ("+00:00", *(f".{ms:03d}000+00:00" for ms in range(1, 1000)))


def iso_ms_column(values: Iterable[int]) -> list[str]:
    """``iso_ms`` of each value, six times as fast on a column in time order.

    A day's answer formats 86,400 timestamps. A row's minute is nearly always
    the previous row's, so its "YYYY-MM-DDTHH:MM:" is formatted once, and the
    rest is read from tables.
    """
    texts: list[str] = []
    last_minute: int | None = None
    prefix = ""
    for value in values:
        minute, rest = divmod(value, 60_000)
        if minute != last_minute:
            last_minute = minute
            prefix = iso_ms(minute * 60_000)[:17]
        texts.append(prefix + _SECONDS[rest // 1000] + _MILLIS[rest % 1000])
    return texts


# Rows made between two yields to the event loop: under 1 ms of CPU. A request
# (a browser's) needs several turns of the loop, and in each turn every stream
# being answered makes a slice: four of 2000 rows held each request ~100 ms.
ROWS_PER_SLICE: Final = 500

# A row as Home Assistant's encoder (orjson) writes the dict fragment_rows makes.
_ROW_JSON: Final = (
    '{"number":"%s","producer_timestamp":"%s","server_timestamp":"%s",'
    '"duration_ms":%d,"size":%d}'
)
# What a JSON string must escape. KVS's fragment numbers are digits.
_NEEDS_ESCAPE: Final = re.compile(r'["\\\x00-\x1f]')


def _row_values(
    fragments: FragmentList, numbers: list[str]
) -> Iterator[tuple[str, str, str, int, int]]:
    """Each row's values in answer order, read from the list's columns."""
    return zip(
        numbers,
        iso_ms_column(fragments.producer_ms),
        iso_ms_column(fragments.server_ms),
        fragments.durations_ms,
        fragments.sizes,
        strict=True,
    )


def fragment_rows(fragments: FragmentList) -> list[dict[str, Any]]:
    """Fragments as list_fragments answers them, as dicts."""
    return [
        {
            "number": number,
            "producer_timestamp": producer,
            "server_timestamp": server,
            "duration_ms": duration,
            "size": size,
        }
        for number, producer, server, duration, size in _row_values(
            fragments, fragments.numbers
        )
    ]


def rows_json(fragments: FragmentList) -> bytes:
    """The JSON of ``fragment_rows`` without its brackets, written as text.

    Text is nothing the garbage collector tracks, where a dict per row is.
    """
    numbers = fragments.numbers
    if _NEEDS_ESCAPE.search("".join(numbers)):
        numbers = [json_bytes(number).decode()[1:-1] for number in numbers]
    rows = _row_values(fragments, numbers)
    return ",".join(map(_ROW_JSON.__mod__, rows)).encode()


async def _slices(fragments: FragmentList) -> AsyncIterator[FragmentList]:
    """The fragments ROWS_PER_SLICE at a time, with a loop turn between two."""
    for first in range(0, len(fragments), ROWS_PER_SLICE):
        if first:
            await asyncio.sleep(0)
        yield fragments[first : first + ROWS_PER_SLICE]


# Answers up to this many rows hold a plain list of dicts, as any answer did: the
# default limit's, whose cost is small. Longer ones hold FragmentRows.
PLAIN_ROWS_UP_TO: Final = 1000


class FragmentRows(Sequence[dict[str, Any]]):
    """The rows of a long answer: read as dicts, sent as JSON made beforehand.

    A day is 43,200 rows a stream. As dicts, the answer was 43,200 objects
    more for the garbage collector, kept in the automation's trace, and Home
    Assistant serialised them in one step of its loop (10-27 ms an answer).
    Here the JSON is written in slices while the answer is made, and Home
    Assistant's encoder copies it as it is (``json_fragment``, as for its
    states). A row is made as a dict when read: indexing, slices, iteration,
    ``+`` and ``==`` work as on a list (see the README for what does not).
    """

    __slots__ = ("_fragments", "_json_parts")

    def __init__(self, fragments: FragmentList, json_parts: list[bytes]) -> None:
        """The fragments and their rows' JSON, in parts without brackets."""
        self._fragments = fragments
        self._json_parts = json_parts

    @classmethod
    async def of(cls, fragments: FragmentList) -> FragmentRows:
        """The rows of the fragments, their JSON written a slice per loop turn."""
        return cls(fragments, [rows_json(part) async for part in _slices(fragments)])

    @property
    def json_fragment(self) -> list[orjson.Fragment]:
        """The rows' JSON for Home Assistant's encoder (orjson).

        A list of raw parts, which orjson writes between brackets and commas:
        the rows' array without joining 8.8 MB in one step of the loop.
        """
        return [json_fragment(part) for part in self._json_parts]

    def as_dict(self) -> list[dict[str, Any]]:
        """The rows as dicts, for the standard library's encoder (traces use it)."""
        return list(self)

    def __len__(self) -> int:
        return len(self._fragments)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return fragment_rows(self._fragments[index])
        at = operator.index(index)
        return fragment_rows(self._fragments[at : at + 1 or None])[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # A slice of dicts at a time: a day's rows read one by one would
        # format their times one by one, several times slower.
        for first in range(0, len(self), ROWS_PER_SLICE):
            yield from self[first : first + ROWS_PER_SLICE]

    def __reversed__(self) -> Iterator[dict[str, Any]]:
        for end in range(len(self), 0, -ROWS_PER_SLICE):
            yield from reversed(self[max(0, end - ROWS_PER_SLICE) : end])

    def __eq__(self, other: object) -> bool:
        """Equal to the same rows, as FragmentRows or as a list."""
        if isinstance(other, FragmentRows):
            return self._fragments == other._fragments
        if isinstance(other, list):
            return len(other) == len(self) and list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    # As on a list, and giving one: a template joins several cameras' rows.
    def __add__(self, other: object) -> list[dict[str, Any]]:
        if not isinstance(other, list | FragmentRows):
            return NotImplemented
        return [*self, *other]

    def __radd__(self, other: object) -> list[dict[str, Any]]:
        if not isinstance(other, list):
            return NotImplemented
        return [*other, *self]

    def __mul__(self, times: int) -> list[dict[str, Any]]:
        return list(self) * times

    __rmul__ = __mul__

    def __repr__(self) -> str:
        # A template that renders the rows ({{ answer.fragments }}) reads
        # this back as a list of dicts.
        return repr(list(self))


async def _plain_rows(fragments: FragmentList) -> list[dict[str, Any]]:
    """The rows as dicts, a slice per loop turn."""
    return [row async for part in _slices(fragments) for row in fragment_rows(part)]


async def fragment_list(
    fragments: FragmentList, timestamp_type: TimestampType, limit: int
) -> dict[str, Any]:
    """The first ``limit`` fragments and the summary of all, as the action answers.

    Made on the event loop in steps of a few ms (a day is 43,200 rows, its
    summary about 12 ms): an executor job would take as long and hold the GIL
    against the loop throughout, the more so with several streams at once.
    """
    shown = fragments[:limit]
    rows: list[dict[str, Any]] | FragmentRows = (
        await _plain_rows(shown)
        if len(shown) <= PLAIN_ROWS_UP_TO
        else await FragmentRows.of(shown)
    )
    await asyncio.sleep(0)
    times = timeline.fragment_times(fragments, timestamp_type)
    await asyncio.sleep(0)
    summary = summary_of(fragments, *times)
    return {
        "fragments": rows,
        "truncated": len(fragments) > limit,
        "summary": {
            "count": summary.count,
            "recorded_seconds": summary.recorded_seconds,
            "bytes": summary.size,
            "first": iso(summary.start),
            "last_end": iso(summary.end),
            "gaps": gaps_json(summary.gaps),
        },
    }


def saved_clip(
    path: Path, clip: ClipExport, timestamp_type: TimestampType
) -> dict[str, Any]:
    """A saved clip: where, how big, what it covers and where it has holes."""
    fragments = clip.fragments
    return {
        "path": str(path),
        "size": clip.size,
        "start": iso(fragment_time(fragments[0], timestamp_type)),
        "end": iso(fragment_end(fragments[-1], timestamp_type)),
        "fragments": len(fragments),
        "clip_calls": clip.parts,
        "gaps": gaps_json(find_gaps(fragments, timestamp_type)),
    }


def saved_fragments(
    path: Path, saved: FragmentsExport, timestamp_type: TimestampType
) -> dict[str, Any]:
    """Saved fragments; of a range also what they cover and where it has holes."""
    answer: dict[str, Any] = {
        "path": str(path),
        "size": saved.size,
        "fragments": saved.count,
    }
    if (fragments := saved.fragments) is not None:
        answer |= {
            "start": iso(fragment_time(fragments[0], timestamp_type)),
            "end": iso(fragment_end(fragments[-1], timestamp_type)),
            "gaps": gaps_json(find_gaps(fragments, timestamp_type)),
        }
    return answer


def saved_images(folder: Path, images: ImagesExport) -> dict[str, Any]:
    """Saved stills, and the sampled times without one."""
    return {
        "folder": str(folder),
        "files": images.files,
        "no_media": [iso(moment) for moment in images.no_media],
        "errors": [
            {"timestamp": iso(moment), "error": error}
            for moment, error in images.errors
        ],
    }


def playback_url(session: SessionUrl, protocol: str, mode: str) -> dict[str, Any]:
    """A session URL, when it expires, and what it plays."""
    return {
        "url": session.url,
        "expires_at": iso(session.expires_at),
        "protocol": protocol,
        "mode": mode,
    }


def image_name(stream: str, image: Image, extension: str) -> str:
    """A still's file name: the stream and the local time to the millisecond."""
    moment = dt_util.as_local(image.timestamp)
    milliseconds = moment.microsecond // 1000
    # With the UTC offset: a range may hold the hour that repeats in autumn.
    return f"{stream}_{moment:%Y%m%d_%H%M%S}_{milliseconds:03d}{moment:%z}.{extension}"
