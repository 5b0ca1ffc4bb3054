"""What a stream recorded: hours listed concurrently, merged into spans, kept.

No Home Assistant imports: the media browser and ``scripts/bench_browse.py`` share
this code path. KVS returns ListFragments pages in no order, even across pages, so a
listing cannot be split by pages; it is split by time instead (one sub-range per
hour), and the hours are listed concurrently. The API layer paces every
ListFragments call to the service's 5 TPS per stream.

A past hour does not change: its spans (a few ints, not its fragments) go into an
``ArchiveStore`` that the media browser persists, so a day opened once opens again
without a call, across restarts. Hours still being recorded are kept briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from .kvs import Fragment, FragmentList, KinesisVideoClient, TimestampType
from .timeline import GAP_TOLERANCE, Span, fragment_times, merge, to_ms

__all__ = [
    "GAP_TOLERANCE",
    "ArchiveStore",
    "CachePolicy",
    "RecordingIndex",
    "Span",
    "merge_spans",
]

_LOGGER = logging.getLogger(__name__)

# ON_DEMAND HLS playlists hold at most this many fragments (and 24 h).
MAX_PLAYLIST_FRAGMENTS: Final = 5000
MAX_PLAYLIST_RANGE: Final = timedelta(hours=24)
# KVS refuses fragments longer than this: how far back one may reach into an hour.
MAX_FRAGMENT_DURATION: Final = timedelta(seconds=20)
# Hours listed at once per stream (each call is paced by the API layer anyway).
LIST_CONCURRENCY: Final = 5
CACHE_SECONDS: Final = 60.0
# Bounds of what the caches hold however much is browsed within CACHE_SECONDS:
# about a day of 2 s fragments on two streams, and a month of days on 30 streams.
CACHE_MAX_FRAGMENTS: Final = 100_000
CACHE_MAX_PROBES: Final = 1000
# What the persistent store keeps: hours and day probes of every stream, least
# recently used dropped first (an hour is a few spans: ~50 bytes of JSON).
STORE_MAX_ENTRIES: Final = 20_000
HOUR: Final = timedelta(hours=1)
# EndTimestamp is inclusive: a sub-range [a, b) is asked for as [a, b - 1 ms].
_ONE_MS: Final = timedelta(milliseconds=1)
# A cached listing: stream ARN, [start, end), timestamp type.
type _Key = tuple[str, datetime, datetime, str]
# An hour to list: [start, end) and whether it is final (past: kept for good).
type Hour = tuple[datetime, datetime, bool]
type RunInExecutor = Callable[..., Awaitable[Any]]


def merge_spans(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    tolerance: timedelta = GAP_TOLERANCE,
    max_fragments: int = MAX_PLAYLIST_FRAGMENTS,
    max_range: timedelta = MAX_PLAYLIST_RANGE,
) -> list[Span]:
    """Spans of time-ordered fragments, cut where one ON_DEMAND playlist ends."""
    starts, ends = fragment_times(fragments, timestamp_type)
    return merge(
        starts,
        ends,
        tolerance_ms=tolerance // _ONE_MS,
        max_fragments=max_fragments,
        max_range_ms=max_range // _ONE_MS,
    )


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


def _store_key(arn: str, start: datetime, end: datetime, timestamp_type: str) -> str:
    return f"{arn} {timestamp_type} {to_ms(start)} {to_ms(end)}"


class ArchiveStore:
    """Listings that no longer change: spans of past hours, probes of past days.

    Bounded, least recently used first out. ``dump``/``load`` give and take
    plain JSON data; ``on_change`` is called when there is something to save.
    """

    def __init__(
        self,
        *,
        max_entries: int = STORE_MAX_ENTRIES,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Start empty."""
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._max = max_entries
        self.on_change = on_change

    def __len__(self) -> int:
        """How many listings are kept."""
        return len(self._entries)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def get(self, key: str) -> Any:
        """A kept value (now the most recently used), or None."""
        if (value := self._entries.get(key)) is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        """Keep ``value``; the least recently used go beyond the bound."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        self._changed()

    def spans(self, key: str) -> list[Span] | None:
        """Kept spans of an hour, or None if it was never listed."""
        if (value := self.get(key)) is None or not isinstance(value, list):
            return None
        return [Span(int(s), int(e), int(n)) for s, e, n in value]

    def put_spans(self, key: str, spans: Sequence[Span]) -> None:
        """Keep an hour's spans."""
        self.put(key, [[s.start_ms, s.end_ms, s.fragments] for s in spans])

    def dump(self) -> dict[str, Any]:
        """JSON data, oldest use first."""
        return {"entries": [[key, value] for key, value in self._entries.items()]}

    def load(self, data: dict[str, Any] | None) -> None:
        """Take what ``dump`` gave (a corrupt item is skipped, not fatal)."""
        for item in (data or {}).get("entries", []):
            with contextlib.suppress(TypeError, ValueError):
                key, value = item
                if isinstance(key, str) and isinstance(value, bool | list):
                    self._entries[key] = value
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """How long and how much a ``RecordingIndex`` keeps of what is still changing.

    ``clock`` (monotonic seconds) dates the entries.
    """

    seconds: float = CACHE_SECONDS
    max_fragments: int = CACHE_MAX_FRAGMENTS
    max_probes: int = CACHE_MAX_PROBES
    clock: Callable[[], float] = time.monotonic


def _default_run(func: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


class RecordingIndex:
    """Lists recordings of one account's streams, concurrently, cached.

    The short-lived caches are kept in insertion order, oldest first: expired
    entries are dropped from the front at every look-up, and the oldest ones
    make room when a cache is full. Final (past) hours and days go to the
    ``ArchiveStore`` instead, for good.
    """

    def __init__(
        self,
        client: KinesisVideoClient,
        *,
        store: ArchiveStore | None = None,
        run_in_executor: RunInExecutor = _default_run,
        concurrency: int = LIST_CONCURRENCY,
        cache: CachePolicy | None = None,
    ) -> None:
        """Use ``client`` for the listings."""
        self.client = client
        self.store = store if store is not None else ArchiveStore()
        self._run = run_in_executor
        self._concurrency = concurrency
        cache = cache or CachePolicy()
        self._cache_seconds = cache.seconds
        self._max_fragments = cache.max_fragments
        self._max_probes = cache.max_probes
        self._clock = cache.clock
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._fragments: dict[_Key, tuple[float, FragmentList]] = {}
        self._probes: dict[_Key, tuple[float, bool]] = {}
        self._spans: dict[_Key, tuple[float, list[Span]]] = {}
        self._cached = 0  # fragments held by self._fragments
        # Listings under way, shared by whoever asks for the same hour.
        self._inflight: dict[_Key, asyncio.Task[list[Span]]] = {}
        # Listings left to go on after a day answered wait for one of these
        # gates (one slot fewer than the listings at once), so an hour the user
        # opens is listed at once instead of behind them.
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._queued: set[_Key] = set()  # background listings not started yet
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def cached_fragments(self) -> int:
        """How many listed fragments the short-lived cache holds."""
        return self._cached

    def close(self) -> None:
        """Stop the listings still under way (the account is unloaded)."""
        self._cancel(set(self._inflight.values()))
        for task in self._background:
            task.cancel()

    def _keep_task[T](self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """Hold a background task until it is done (its error is only logged)."""
        self._background.add(task)

        def done(finished: asyncio.Task[T]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and (err := finished.exception()):
                _LOGGER.debug("Background listing failed: %s", err)

        task.add_done_callback(done)
        return task

    def _cancel(self, tasks: set[asyncio.Task[list[Span]]]) -> None:
        """Cancel listings; later callers start afresh instead of sharing them."""
        for key, task in list(self._inflight.items()):
            if task in tasks:
                del self._inflight[key]
                task.cancel()

    def _semaphore(self, arn: str) -> asyncio.Semaphore:
        if (semaphore := self._semaphores.get(arn)) is None:
            semaphore = asyncio.Semaphore(self._concurrency)
            self._semaphores[arn] = semaphore
        return semaphore

    def _gate(self, arn: str) -> asyncio.Semaphore:
        if (gate := self._gates.get(arn)) is None:
            gate = asyncio.Semaphore(max(1, self._concurrency - 1))
            self._gates[arn] = gate
        return gate

    def _fresh(self, stamp: float) -> bool:
        return self._clock() - stamp < self._cache_seconds

    def _prune(self) -> None:
        """Drop expired entries (the oldest come first)."""
        while self._fragments:
            key = next(iter(self._fragments))
            if self._fresh(self._fragments[key][0]):
                break
            self._cached -= len(self._fragments.pop(key)[1])
        for cache in (self._probes, self._spans):
            while cache:
                key = next(iter(cache))
                if self._fresh(cache[key][0]):
                    break
                del cache[key]

    def _keep_fragments(self, key: _Key, found: FragmentList) -> None:
        if (old := self._fragments.pop(key, None)) is not None:
            self._cached -= len(old[1])
        self._fragments[key] = (self._clock(), found)
        self._cached += len(found)
        while self._cached > self._max_fragments and len(self._fragments) > 1:
            self._cached -= len(self._fragments.pop(next(iter(self._fragments)))[1])

    def _keep[V](self, cache: dict[_Key, tuple[float, V]], key: _Key, value: V) -> None:
        cache.pop(key, None)
        cache[key] = (self._clock(), value)
        while len(cache) > self._max_probes:
            del cache[next(iter(cache))]

    async def _list(
        self, arn: str, start: datetime, end: datetime, timestamp_type: TimestampType
    ) -> FragmentList:
        async with self._semaphore(arn):
            found, _ = await self.client.list_fragments(
                arn, start, end - _ONE_MS, timestamp_type=timestamp_type
            )
        return found

    async def fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
    ) -> FragmentList:
        """Fragments starting in [start, end), oldest first, cached briefly."""
        key = (arn, start, end, timestamp_type)
        self._prune()
        if (cached := self._fragments.get(key)) is not None:
            return cached[1]
        found = await self._list(arn, start, end, timestamp_type)
        self._prune()
        self._keep_fragments(key, found)
        return found

    def known_spans(
        self, arn: str, start: datetime, end: datetime, timestamp_type: TimestampType
    ) -> list[Span] | None:
        """Spans of [start, end) if listed already (no call), else None."""
        key = (arn, start, end, timestamp_type)
        if (kept := self.store.spans(_store_key(*key))) is not None:
            return kept
        self._prune()
        if (cached := self._spans.get(key)) is not None:
            return cached[1]
        return None

    async def spans(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
        *,
        final: bool = False,
    ) -> list[Span]:
        """Spans of the fragments starting in [start, end) (an hour at most).

        ``final``: the range will not change any more, keep its spans for good.
        Two callers asking at once share one listing.
        """
        if (known := self.known_spans(arn, start, end, timestamp_type)) is not None:
            return known
        # A caller that goes away leaves the listing to the others (and the cache).
        return await asyncio.shield(
            self._listing((arn, start, end, timestamp_type), final=final)
        )

    def _listing(
        self, key: _Key, *, final: bool, background: bool = False
    ) -> asyncio.Task[list[Span]]:
        """The listing of ``key`` under way, started if there is none.

        A caller that is waiting (not ``background``) overtakes a background
        listing that has not started yet; that one then takes this answer.
        """
        task = self._inflight.get(key)
        if task is not None and (background or key not in self._queued):
            return task
        self._queued.discard(key)
        if background:
            task = asyncio.ensure_future(self._list_later(key, final=final))
            self._queued.add(key)
        else:
            task = asyncio.ensure_future(self._list_spans(key, final=final))
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._done(key, done))
        return task

    async def _list_later(self, key: _Key, *, final: bool) -> list[Span]:
        """A background listing: in turn, unless an open of the hour overtook it."""
        async with self._gate(key[0]):
            if (known := self.known_spans(*key)) is not None:  # type: ignore[arg-type]
                return known
            other = self._inflight.get(key)
            if other is None or other is asyncio.current_task():
                self._queued.discard(key)
                return await self._list_spans(key, final=final)
        return await asyncio.shield(other)

    def _done(self, key: _Key, task: asyncio.Task[list[Span]]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.debug("Listing %s failed: %s", key[1:3], err)

    async def _list_spans(self, key: _Key, *, final: bool) -> list[Span]:
        arn, start, end, timestamp_type = key
        found = await self._list(arn, start, end, timestamp_type)  # type: ignore[arg-type]
        # An hour holds up to thousands of fragments: merged off the loop.
        spans: list[Span] = await self._run(merge_spans, found, timestamp_type)
        if final:
            self.store.put_spans(_store_key(*key), spans)
        else:
            self._prune()
            self._keep(self._spans, key, spans)
        return spans

    def _mark_empty(
        self, arn: str, hours: Sequence[Hour], timestamp_type: TimestampType
    ) -> None:
        """Keep hours a probe found empty as listed, with no spans."""
        for a, b, final in hours:
            key = (arn, a, b, timestamp_type)
            if final:
                self.store.put_spans(_store_key(*key), [])
            elif self.known_spans(*key) is None:
                self._prune()
                self._keep(self._spans, key, [])

    async def hours(
        self,
        arn: str,
        hours: Sequence[Hour],
        timestamp_type: TimestampType,
        *,
        budget: float | None = None,
    ) -> list[list[Span] | None]:
        """Spans of each (start, end, final) hour, listed concurrently, newest first.

        The newest hours not known yet are listed at once; the older ones are
        first probed together (one call), so a stream that began recording
        late in the day costs one call for its empty hours, not one each. With a
        ``budget`` (seconds), answer then: hours not listed by then are None,
        and their listings go on, into the caches, for the next look.
        """
        results: list[list[Span] | None] = [
            self.known_spans(arn, a, b, timestamp_type) for a, b, _ in hours
        ]
        unknown = [i for i in reversed(range(len(hours))) if results[i] is None]
        if not unknown:
            return results
        # One slot for the probe, the others for the newest hours.
        head, tail = unknown[: self._concurrency - 1], unknown[self._concurrency - 1 :]
        if len(tail) < 2:
            head, tail = unknown, []
        tasks: list[asyncio.Future[Any]] = []
        if tail:  # started first: the semaphore lets it go first
            tasks.append(
                self._keep_task(
                    asyncio.ensure_future(
                        self._probe_then_list(
                            arn, [hours[i] for i in tail], timestamp_type
                        )
                    )
                )
            )
        todo = {
            index: self._listing(
                (arn, hours[index][0], hours[index][1], timestamp_type),
                final=hours[index][2],
            )
            for index in head
        }
        tasks.extend(todo.values())
        done, pending = await asyncio.wait(
            tasks, timeout=budget, return_when=asyncio.FIRST_EXCEPTION
        )
        for task in done:
            if not task.cancelled() and (err := task.exception()) is not None:
                self._cancel(cast("set[asyncio.Task[list[Span]]]", pending))
                for other in pending:
                    other.cancel()
                raise err
        for index, task in todo.items():
            if task in done:
                results[index] = task.result()
        for index in tail:  # the probe or their listings may have told already
            a, b, _ = hours[index]
            results[index] = self.known_spans(arn, a, b, timestamp_type)
        return results

    async def _probe_then_list(
        self, arn: str, hours: Sequence[Hour], timestamp_type: TimestampType
    ) -> None:
        """List ``hours`` (newest first) unless one probe finds none in them all."""
        start = min(a for a, _, _ in hours)
        end = max(b for _, b, _ in hours)
        final = all(f for _, _, f in hours)
        if not await self.has_recordings(arn, start, end, timestamp_type, final=final):
            self._mark_empty(arn, hours, timestamp_type)
            return
        await asyncio.gather(
            *(
                self._listing((arn, a, b, timestamp_type), final=f, background=True)
                for a, b, f in hours
            )
        )

    async def first_spans(
        self, arn: str, hours: Sequence[Hour], timestamp_type: TimestampType
    ) -> list[Span] | None:
        """Spans of the first of consecutive ``hours`` that holds any, or None.

        Kept hours tell without a call; then the first unknown hour is probed
        alone (a stream recording all day answers there), then the rest by
        halving: whether anything starts between the first unknown hour and
        hour k only grows with k, so a few probes find the first recorded hour
        of a day, and every range found empty is kept as such.
        """
        rest = list(hours)
        while rest:
            a, b, _ = rest[0]
            if (known := self.known_spans(arn, a, b, timestamp_type)) is None:
                break
            if known:
                return known
            rest.pop(0)
        if not rest:
            return None

        async def any_until(k: int) -> bool:
            found = await self.has_recordings(
                arn,
                rest[0][0],
                rest[k][1],
                timestamp_type,
                final=all(f for _, _, f in rest[: k + 1]),
            )
            if not found:
                self._mark_empty(arn, rest[: k + 1], timestamp_type)
            return found

        low = high = 0
        if not await any_until(0):
            high = len(rest) - 1
            if high == 0 or not await any_until(high):
                return None
            low = 1
        while low < high:  # any_until(high) is true, any_until(low - 1) false
            middle = (low + high) // 2
            if await any_until(middle):
                high = middle
            else:
                low = middle + 1
        a, b, final = rest[low]
        return await self.spans(arn, a, b, timestamp_type, final=final)

    async def has_recordings(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
        *,
        final: bool = False,
    ) -> bool:
        """Whether any fragment starts in [start, end): one small call, cached."""
        key = (arn, start, end, timestamp_type)
        stored = _store_key(*key) + " any"
        if final and isinstance(kept := self.store.get(stored), bool):
            return kept
        self._prune()
        if (cached := self._probes.get(key)) is not None:
            return cached[1]
        async with self._semaphore(arn):
            found = await self.client.has_fragments(
                arn, start, end - _ONE_MS, timestamp_type=timestamp_type
            )
        if final:
            self.store.put(stored, found)
        else:
            self._prune()
            self._keep(self._probes, key, found)
        return found

    async def ended_before(
        self,
        arn: str,
        previous: datetime,
        start: datetime,
        timestamp_type: TimestampType,
    ) -> int | None:
        """Where the media of fragments that began in [previous, start) ends (ms).

        A fragment of the previous hour may run on into this one. Known from the
        previous hour's spans if it was listed, else from a short listing of its
        last seconds (no fragment is longer).
        """
        previous_spans = self.known_spans(arn, previous, start, timestamp_type)
        if previous_spans is not None:
            return max((s.end_ms for s in previous_spans), default=None)
        earlier = await self.fragments(
            arn, start - MAX_FRAGMENT_DURATION, start, timestamp_type
        )
        _, ends = fragment_times(earlier, timestamp_type)
        return max(ends, default=None)
