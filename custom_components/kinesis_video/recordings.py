"""What a stream recorded: fragments merged into spans, listed fast and cached.

No Home Assistant imports: the media browser and ``scripts/bench_browse.py`` share
this code path. KVS returns ListFragments pages in no order, even across pages, so a
listing cannot be split by pages; it is split by time instead (one sub-range per
hour), and the sub-ranges are listed concurrently, a few at a time per stream. The
API layer paces every ListFragments call to the service's 5 TPS per stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from .api import Fragment, KinesisVideoClient, TimestampType
from .clip import fragment_time

# ON_DEMAND HLS playlists hold at most this many fragments (and 24 h).
MAX_PLAYLIST_FRAGMENTS: Final = 5000
MAX_PLAYLIST_RANGE: Final = timedelta(hours=24)
# A pause this short between fragments is no gap.
GAP_TOLERANCE: Final = timedelta(seconds=1)
# KVS refuses fragments longer than this: how far back one may reach into an hour.
MAX_FRAGMENT_DURATION: Final = timedelta(seconds=20)
# Sub-ranges listed at once per stream (each is paced by the API layer anyway).
LIST_CONCURRENCY: Final = 3
CACHE_SECONDS: Final = 60.0
# Bounds of what the caches hold however much is browsed within CACHE_SECONDS:
# about a day of 2 s fragments on two streams, and a month of days on 30 streams.
CACHE_MAX_FRAGMENTS: Final = 100_000
CACHE_MAX_PROBES: Final = 1000
HOUR: Final = timedelta(hours=1)
# EndTimestamp is inclusive: a sub-range [a, b) is asked for as [a, b - 1 ms].
_ONE_MS: Final = timedelta(milliseconds=1)
# A cached listing: stream ARN, [start, end), timestamp type.
type _Key = tuple[str, datetime, datetime, str]


@dataclass(frozen=True, slots=True)
class Span:
    """Continuous video from ``start`` to ``end`` made of ``fragments`` fragments."""

    start: datetime
    end: datetime
    fragments: int


def merge_spans(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    tolerance: timedelta = GAP_TOLERANCE,
    max_fragments: int = MAX_PLAYLIST_FRAGMENTS,
    max_range: timedelta = MAX_PLAYLIST_RANGE,
) -> list[Span]:
    """Merge fragments (oldest first) into continuous spans.

    A span ends where the next fragment starts more than ``tolerance`` after the
    previous one ended, and is cut where one ON_DEMAND playlist could not hold it.
    """
    spans: list[Span] = []
    start: datetime | None = None
    end = count = None
    for fragment in fragments:
        begin = fragment_time(fragment, timestamp_type)
        finish = begin + timedelta(milliseconds=fragment.duration_ms)
        if (
            start is None
            or end is None
            or count is None
            or begin - end > tolerance
            or count >= max_fragments
            or finish - start > max_range
        ):
            if start is not None and end is not None and count is not None:
                spans.append(Span(start, end, count))
            start, end, count = begin, finish, 1
            continue
        end, count = max(end, finish), count + 1
    if start is not None and end is not None and count is not None:
        spans.append(Span(start, end, count))
    return spans


def merge_hours(
    hours: Sequence[tuple[datetime, datetime, Sequence[Fragment]]],
    timestamp_type: TimestampType,
) -> list[tuple[datetime, datetime, list[Span]]]:
    """``merge_spans`` of each hour, in one go (CPU-bound: run it in an executor)."""
    return [
        (start, end, merge_spans(fragments, timestamp_type))
        for start, end, fragments in hours
    ]


async def gather_or_cancel[T](*coros: Coroutine[Any, Any, T]) -> list[T]:
    """Run concurrently; on the first error cancel the others before raising."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        return await asyncio.gather(*tasks)
    except Exception:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def split_hours(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive sub-ranges of at most an hour."""
    ranges: list[tuple[datetime, datetime]] = []
    while start < end:
        ranges.append((start, min(start + HOUR, end)))
        start += HOUR
    return ranges


class RecordingIndex:
    """Lists recordings of streams, concurrently per sub-range, cached briefly.

    The caches are kept in insertion order, oldest first: expired entries are
    dropped from the front at every look-up, and the oldest ones make room when
    a cache is full.
    """

    def __init__(
        self,
        client: KinesisVideoClient,
        *,
        concurrency: int = LIST_CONCURRENCY,
        cache_seconds: float = CACHE_SECONDS,
        max_fragments: int = CACHE_MAX_FRAGMENTS,
        max_probes: int = CACHE_MAX_PROBES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Use ``client`` for the listings."""
        self.client = client
        self._concurrency = concurrency
        self._cache_seconds = cache_seconds
        self._max_fragments = max_fragments
        self._max_probes = max_probes
        self._clock = clock
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._fragments: dict[_Key, tuple[float, list[Fragment]]] = {}
        self._probes: dict[_Key, tuple[float, bool]] = {}
        self._cached = 0  # fragments held by self._fragments

    @property
    def cached_fragments(self) -> int:
        """How many listed fragments the cache holds."""
        return self._cached

    def _semaphore(self, arn: str) -> asyncio.Semaphore:
        if (semaphore := self._semaphores.get(arn)) is None:
            semaphore = asyncio.Semaphore(self._concurrency)
            self._semaphores[arn] = semaphore
        return semaphore

    def _fresh(self, stamp: float) -> bool:
        return self._clock() - stamp < self._cache_seconds

    def _prune(self) -> None:
        """Drop expired entries (the oldest come first)."""
        while self._fragments:
            key = next(iter(self._fragments))
            if self._fresh(self._fragments[key][0]):
                break
            self._cached -= len(self._fragments.pop(key)[1])
        while self._probes:
            key = next(iter(self._probes))
            if self._fresh(self._probes[key][0]):
                break
            del self._probes[key]

    def _keep_fragments(self, key: _Key, found: list[Fragment]) -> None:
        if (old := self._fragments.pop(key, None)) is not None:
            self._cached -= len(old[1])
        self._fragments[key] = (self._clock(), found)
        self._cached += len(found)
        while self._cached > self._max_fragments and len(self._fragments) > 1:
            self._cached -= len(self._fragments.pop(next(iter(self._fragments)))[1])

    def _keep_probe(self, key: _Key, found: bool) -> None:
        self._probes.pop(key, None)
        self._probes[key] = (self._clock(), found)
        while len(self._probes) > self._max_probes:
            del self._probes[next(iter(self._probes))]

    async def fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
    ) -> list[Fragment]:
        """Fragments starting in [start, end), oldest first (one sub-range)."""
        key = (arn, start, end, timestamp_type)
        self._prune()
        if (cached := self._fragments.get(key)) is not None:
            return cached[1]
        async with self._semaphore(arn):
            found, _ = await self.client.list_fragments(
                arn, start, end - _ONE_MS, timestamp_type=timestamp_type
            )
        self._prune()
        self._keep_fragments(key, found)
        return found

    async def fragments_by_hour(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
    ) -> list[tuple[datetime, datetime, list[Fragment]]]:
        """[start, end) listed hour by hour, concurrently: (from, to, fragments)."""
        ranges = split_hours(start, end)
        results = await gather_or_cancel(
            *(self.fragments(arn, a, b, timestamp_type) for a, b in ranges)
        )
        return [(a, b, found) for (a, b), found in zip(ranges, results, strict=True)]

    async def has_recordings(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
    ) -> bool:
        """Whether any fragment starts in [start, end): one small call, cached."""
        key = (arn, start, end, timestamp_type)
        self._prune()
        if (cached := self._probes.get(key)) is not None:
            return cached[1]
        async with self._semaphore(arn):
            found = await self.client.has_fragments(
                arn, start, end - _ONE_MS, timestamp_type=timestamp_type
            )
        self._prune()
        self._keep_probe(key, found)
        return found
