"""What the Kinesis Video client returns: streams, sessions, images, fragments."""

from __future__ import annotations

import asyncio
import itertools
import operator
import re
from array import array
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, overload

PlaybackMode = Literal["LIVE", "LIVE_REPLAY", "ON_DEMAND"]
TimestampType = Literal["SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"]
ContainerFormat = Literal["FRAGMENTED_MP4", "MPEG_TS"]
DiscontinuityMode = Literal["ALWAYS", "NEVER", "ON_DISCONTINUITY"]
DisplayTimestamp = Literal["ALWAYS", "NEVER"]
ImageFormat = Literal["JPEG", "PNG"]

# The botocore model's ResourceARN pattern, anchored, with the parts captured.
_STREAM_ARN: Final = re.compile(
    r"arn:(?P<partition>[a-z\d-]+):kinesisvideo:(?P<region>[a-z0-9-]+)"
    r":(?P<account_id>[0-9]+):stream/(?P<name>[a-zA-Z0-9_.-]+)/(?P<created>[0-9]+)"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# A FragmentList's columns: producer start ms, server start ms, duration ms, size.
type Columns = tuple[array[int], array[int], array[int], array[int]]


def _empty_columns() -> Columns:
    return (array("q"), array("q"), array("q"), array("q"))


def from_epoch_ms(value: int) -> datetime:
    """An aware UTC datetime from epoch milliseconds (exact, no float rounding)."""
    return _EPOCH + timedelta(milliseconds=value)


def to_epoch_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (microseconds dropped)."""
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key pair and region; ``endpoint_url`` overrides AWS's endpoint.

    ``session_token`` is for temporary credentials (STS); it is sent, never shown.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    endpoint_url: str | None = None
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds a request may take to connect, and between two reads of its answer.

    There is no total: a download of a long clip may take minutes, as long as
    its bytes keep coming.
    """

    connect: float = 10
    read: float = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackRequest:
    """What an HLS or DASH session is asked for.

    ``start``/``end`` bound LIVE_REPLAY and ON_DEMAND sessions; ``max_results``
    caps the fragments of a playlist (manifest). ``container`` and
    ``discontinuity`` are HLS's own: a DASH session refuses MPEG-TS or a
    discontinuity mode.
    """

    mode: PlaybackMode = "LIVE"
    expires: int = 300
    timestamp_type: TimestampType = "SERVER_TIMESTAMP"
    start: datetime | None = None
    end: datetime | None = None
    max_results: int | None = None
    display_timestamp: DisplayTimestamp | None = None
    container: ContainerFormat = "FRAGMENTED_MP4"
    discontinuity: DiscontinuityMode | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StillsRequest:
    """What GetImages is asked for besides the range: one still every ``sampling_ms``.

    ``width``/``height`` scale the stills (one of them alone keeps the aspect
    ratio); neither: the stream's own size.
    """

    sampling_ms: int = 1000
    image_format: ImageFormat = "JPEG"
    width: int | None = None
    height: int | None = None
    timestamp_type: TimestampType = "SERVER_TIMESTAMP"


@dataclass(frozen=True, slots=True)
class StreamArn:
    """The parts of a stream ARN."""

    partition: str
    region: str
    account_id: str
    name: str


def parse_stream_arn(arn: str) -> StreamArn:
    """Split a stream ARN; ValueError if it is not one."""
    if (match := _STREAM_ARN.fullmatch(arn.strip())) is None:
        raise ValueError("Not a Kinesis video stream ARN")
    return StreamArn(
        match["partition"], match["region"], match["account_id"], match["name"]
    )


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream as DescribeStream/ListStreams describe it."""

    name: str
    arn: str
    status: str
    media_type: str | None
    retention_hours: int
    created: datetime | None
    device_name: str | None
    version: str | None

    @property
    def region(self) -> str:
        """Region, from the ARN."""
        return parse_stream_arn(self.arn).region

    @property
    def account_id(self) -> str:
        """AWS account id, from the ARN."""
        return parse_stream_arn(self.arn).account_id


@dataclass(frozen=True, slots=True)
class SessionUrl:
    """An HLS/DASH session URL (a bearer token: kept out of repr and logs)."""

    url: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Fragment:
    """One archived fragment; ``number`` is a decimal string beyond int64."""

    number: str
    producer_timestamp: datetime
    server_timestamp: datetime
    duration_ms: int
    size: int


@dataclass(frozen=True, slots=True)
class Image:
    """One GetImages result: content, or an error such as NO_MEDIA."""

    timestamp: datetime
    content: bytes | None
    error: str | None


class FragmentList(Sequence[Fragment]):
    """Fragments, oldest first, held as flat columns.

    A day of a stream is 43,200 fragments: as objects they would be ~43k more
    for the garbage collector to walk. Here the numbers are a list of str and
    the times and sizes are ``array('q')`` columns (neither is tracked by the
    collector); a ``Fragment`` is built only when an item is read. Hot paths
    read the columns (``numbers``, ``start_ms()``, ``durations_ms``...).
    """

    __slots__ = (
        "_duration_ms",
        "_numbers",
        "_producer_ms",
        "_server_ms",
        "_size",
        "timestamp_type",
        "truncated",
    )

    def __init__(
        self,
        numbers: list[str] | None = None,
        columns: Columns | None = None,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
        truncated: bool = False,
    ) -> None:
        """Numbers and their columns (producer ms, server ms, duration ms, size).

        Of equal length, already in order (see FragmentListBuilder).
        """
        self._numbers = numbers if numbers is not None else []
        producer, server, duration, size = columns or _empty_columns()
        self._producer_ms = producer
        self._server_ms = server
        self._duration_ms = duration
        self._size = size
        self.timestamp_type: TimestampType = timestamp_type
        self.truncated = truncated

    @classmethod
    def of(
        cls,
        fragments: Iterable[Fragment],
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
    ) -> FragmentList:
        """A list of the given fragments, in their order (tests, callers' slices)."""
        result = cls(timestamp_type=timestamp_type)
        for fragment in fragments:
            result._numbers.append(fragment.number)
            result._producer_ms.append(to_epoch_ms(fragment.producer_timestamp))
            result._server_ms.append(to_epoch_ms(fragment.server_timestamp))
            result._duration_ms.append(fragment.duration_ms)
            result._size.append(fragment.size)
        return result

    # -- columns -------------------------------------------------------------

    @property
    def numbers(self) -> list[str]:
        """Fragment numbers (do not modify)."""
        return self._numbers

    @property
    def producer_ms(self) -> array[int]:
        """Producer start times, epoch ms (do not modify)."""
        return self._producer_ms

    @property
    def server_ms(self) -> array[int]:
        """Server start times, epoch ms (do not modify)."""
        return self._server_ms

    @property
    def durations_ms(self) -> array[int]:
        """Durations in ms (do not modify)."""
        return self._duration_ms

    @property
    def sizes(self) -> array[int]:
        """Sizes in bytes (do not modify)."""
        return self._size

    def start_ms(self, timestamp_type: TimestampType | None = None) -> array[int]:
        """Start times (epoch ms) by ``timestamp_type`` (default: the list's)."""
        kind = timestamp_type or self.timestamp_type
        return self._producer_ms if kind == "PRODUCER_TIMESTAMP" else self._server_ms

    # -- Sequence[Fragment] --------------------------------------------------

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> Fragment: ...

    @overload
    def __getitem__(self, index: slice) -> FragmentList: ...

    def __getitem__(self, index: int | slice) -> Fragment | FragmentList:
        if isinstance(index, slice):
            return FragmentList(
                self._numbers[index],
                (
                    self._producer_ms[index],
                    self._server_ms[index],
                    self._duration_ms[index],
                    self._size[index],
                ),
                timestamp_type=self.timestamp_type,
            )
        return Fragment(
            self._numbers[index],
            from_epoch_ms(self._producer_ms[index]),
            from_epoch_ms(self._server_ms[index]),
            self._duration_ms[index],
            self._size[index],
        )

    def __iter__(self) -> Iterator[Fragment]:
        for index in range(len(self._numbers)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        """Equal to another list of the same fragments (any Sequence of them)."""
        if isinstance(other, FragmentList):
            return (
                self._numbers == other._numbers
                and self._producer_ms == other._producer_ms
                and self._server_ms == other._server_ms
                and self._duration_ms == other._duration_ms
                and self._size == other._size
            )
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns

    def __repr__(self) -> str:
        return (
            f"FragmentList({len(self)} fragments, {self.timestamp_type},"
            f" truncated={self.truncated})"
        )


# Fragments gathered into the sorted columns between two yields to the loop
# (about 2 ms of CPU).
GATHER_SLICE: Final = 5000


class FragmentListBuilder:
    """Collects ListFragments pages into columns, then sorts and cuts once.

    KVS returns fragments in no order, even across pages, and an eventually
    consistent listing may repeat one: ``build`` keeps each number once, sorts
    by the chosen start time (ties by fragment number) and keeps the earliest
    ``limit``. Nothing here is tracked by the garbage collector per fragment.
    ``build_async`` does the same on the event loop, in steps of a few ms.
    """

    __slots__ = ("_columns", "_numbers", "_order", "_seen", "_sort_by")

    def __init__(self, sort_by: TimestampType = "SERVER_TIMESTAMP") -> None:
        """Empty columns; each page is put in ``sort_by`` order as it comes."""
        self._numbers: list[str] = []
        self._seen: set[str] = set()  # to know at once whether any was repeated
        self._columns = _empty_columns()
        self._sort_by = sort_by
        # Indexes, each page's run in order: a sort by the same clock at the end
        # merges the runs, in half the time of a sort from scratch.
        self._order: list[int] = []

    def __len__(self) -> int:
        return len(self._numbers)

    def add(
        self,
        numbers: Iterable[str],
        producer_ms: Iterable[int],
        server_ms: Iterable[int],
        duration_ms: Iterable[int],
        size: Iterable[int],
    ) -> None:
        """Append one page's columns (equal lengths)."""
        before = len(self._numbers)
        self._numbers.extend(numbers)
        for column, values in zip(
            self._columns, (producer_ms, server_ms, duration_ms, size), strict=True
        ):
            column.extend(values)
            if len(column) != len(self._numbers):
                del self._numbers[before:]
                for other in self._columns:
                    del other[before:]
                raise ValueError("Columns of a page differ in length")
        self._seen.update(self._numbers[before:])
        starts = self._starts(self._sort_by)
        self._order += sorted(range(before, len(starts)), key=starts.__getitem__)

    def build(
        self, timestamp_type: TimestampType, limit: int | None = None
    ) -> FragmentList:
        """The fragments once each, oldest first, cut to ``limit`` (flagged)."""
        steps = self._steps(timestamp_type, limit)
        while (built := _step(steps)) is None:
            pass
        return built

    async def build_async(
        self, timestamp_type: TimestampType, limit: int | None = None
    ) -> FragmentList:
        """``build``, with the loop let run between its steps.

        For a day (43,200 fragments) the longest step is the sort, about 5 ms:
        an executor job would take as long, and hold the GIL against the loop
        the whole time, the more so when several streams are listed at once.
        """
        steps = self._steps(timestamp_type, limit)
        built = _step(steps)
        while built is None:
            await asyncio.sleep(0)  # a turn of the loop between two steps
            built = _step(steps)
        return built

    def _starts(self, timestamp_type: TimestampType) -> array[int]:
        producer, server, _, _ = self._columns
        return producer if timestamp_type == "PRODUCER_TIMESTAMP" else server

    def _steps(
        self, timestamp_type: TimestampType, limit: int | None
    ) -> Generator[None, None, FragmentList]:
        """``build`` in steps: it yields where the loop may run."""
        numbers = self._numbers
        starts = self._starts(timestamp_type)
        if len(self._seen) == len(numbers):
            unique = self._order
        else:
            unique = _first_of_each(numbers)
            yield
        order = sorted(unique, key=starts.__getitem__)
        yield
        kept = len(order) if limit is None else min(limit, len(order))
        cut = kept < len(order)
        # A tie across the cut decides which fragment is kept: see to it first.
        if not (cut and kept and starts[order[kept - 1]] == starts[order[kept]]):
            del order[kept:]
            built, tied = yield from self._gathered(order, starts, timestamp_type, cut)
            if not tied:
                return built
        # Rare: equal start times, so order those by fragment number. One int
        # key per fragment: start * 10**width + number (exact).
        scale = 10 ** max(len(number) for number in numbers)
        order = sorted(
            unique, key=lambda index: starts[index] * scale + int(numbers[index])
        )
        del order[kept:]
        yield
        built, _ = yield from self._gathered(order, starts, timestamp_type, cut)
        return built

    def _gathered(
        self,
        order: list[int],
        starts: array[int],
        timestamp_type: TimestampType,
        truncated: bool,
    ) -> Generator[None, None, tuple[FragmentList, bool]]:
        """The columns in ``order``, in slices; and whether two starts are equal."""
        numbers = self._numbers
        sorted_numbers: list[str] = []
        sorted_columns = _empty_columns()
        sorted_starts = sorted_columns[0 if starts is self._columns[0] else 1]
        tied = False
        for first in range(0, len(order), GATHER_SLICE):
            part = order[first : first + GATHER_SLICE]
            sorted_numbers += map(numbers.__getitem__, part)
            for target, column in zip(sorted_columns, self._columns, strict=True):
                target.extend(map(column.__getitem__, part))
            # This slice's starts, with the last of the slice before.
            run = sorted_starts[max(first - 1, 0) :]
            tied = tied or any(map(operator.eq, run, itertools.islice(run, 1, None)))
            yield
        listed = FragmentList(
            sorted_numbers,
            sorted_columns,
            timestamp_type=timestamp_type,
            truncated=truncated,
        )
        return listed, tied


def _step(steps: Generator[None, None, FragmentList]) -> FragmentList | None:
    """Run the build's next step: the list once it is made, else None."""
    try:
        next(steps)
    except StopIteration as done:
        built: FragmentList = done.value
        return built
    return None


def _first_of_each(numbers: list[str]) -> list[int]:
    """Indexes of the first occurrence of every number, in list order.

    (One dict of str -> int: a single object for the garbage collector, and
    no Python loop per fragment.)
    """
    count = len(numbers)
    # Read backwards, so that the index kept for a number is its first.
    first = dict(zip(reversed(numbers), range(count - 1, -1, -1), strict=True))
    return sorted(first.values())
