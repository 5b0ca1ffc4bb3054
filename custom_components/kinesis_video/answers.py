"""What the archive actions answer: plain JSON of fragments, gaps and saves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from homeassistant.util import dt as dt_util

from . import timeline
from .clip import Gap, find_gaps, fragment_end, fragment_time, summary_of
from .export import ClipExport, FragmentsExport, ImagesExport
from .kvs import FragmentList, Image, SessionUrl, TimestampType
from .timeline import from_ms


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


def fragment_rows(fragments: FragmentList) -> list[dict[str, Any]]:
    """Fragments as list_fragments answers them.

    Read from the list's columns: one dict per row and nothing else that the
    garbage collector tracks.
    """
    return [
        {
            "number": number,
            "producer_timestamp": producer,
            "server_timestamp": server,
            "duration_ms": duration,
            "size": size,
        }
        for number, producer, server, duration, size in zip(
            fragments.numbers,
            iso_ms_column(fragments.producer_ms),
            iso_ms_column(fragments.server_ms),
            fragments.durations_ms,
            fragments.sizes,
            strict=True,
        )
    ]


async def fragment_list(
    fragments: FragmentList, timestamp_type: TimestampType, limit: int
) -> dict[str, Any]:
    """The first ``limit`` fragments and the summary of all, as the action answers.

    Made on the event loop in steps of a few ms (a day is 43,200 rows, its
    summary about 12 ms): an executor job would take as long and hold the GIL
    against the loop throughout, the more so with several streams at once.
    """
    rows: list[dict[str, Any]] = []
    shown = min(limit, len(fragments))
    for first in range(0, shown, ROWS_PER_SLICE):
        if first:
            await asyncio.sleep(0)
        rows += fragment_rows(fragments[first : min(first + ROWS_PER_SLICE, shown)])
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
