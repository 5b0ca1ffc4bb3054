"""One timeline for the archive: fragments as epoch-ms runs, spans and gaps.

The actions (a clip's summary and gaps) and the media browser (spans of an hour)
use this one algorithm with this one tolerance, so the same recordings show the
same gaps everywhere. It works on epoch milliseconds (plain ints: cheap to hold
and compare for a day of fragments), with a thin adapter from Fragment sequences.
No Home Assistant imports.
"""

from __future__ import annotations

import itertools
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from .kvs import Fragment, FragmentList, TimestampType

# A pause this short between fragments is no gap. SERVER timestamps are
# ingestion times: network jitter moves them by a few hundred ms, which is
# not a hole a user should be told about (or see as a gap in the browser).
GAP_TOLERANCE_MS: Final = 1000
GAP_TOLERANCE: Final = timedelta(milliseconds=GAP_TOLERANCE_MS)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Span:
    """Continuous video [start_ms, end_ms) made of ``fragments`` fragments."""

    start_ms: int
    end_ms: int
    fragments: int

    @property
    def start(self) -> datetime:
        """Where the span begins."""
        return from_ms(self.start_ms)

    @property
    def end(self) -> datetime:
        """Where its media ends."""
        return from_ms(self.end_ms)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (rounded, not truncated)."""
    return round(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=value)


def fragment_start(fragment: Fragment, timestamp_type: TimestampType) -> datetime:
    """The fragment's start by the chosen clock."""
    if timestamp_type == "PRODUCER_TIMESTAMP":
        return fragment.producer_timestamp
    return fragment.server_timestamp


def fragment_end(fragment: Fragment, timestamp_type: TimestampType) -> datetime:
    """Where the fragment's media ends by the chosen clock."""
    return fragment_start(fragment, timestamp_type) + timedelta(
        milliseconds=fragment.duration_ms
    )


def as_fragment_list(
    fragments: Sequence[Fragment], timestamp_type: TimestampType
) -> FragmentList:
    """``fragments`` as epoch-ms columns: the client's list as is, else copied."""
    if isinstance(fragments, FragmentList):
        return fragments
    return FragmentList.of(fragments, timestamp_type=timestamp_type)


def fragment_times(
    fragments: Sequence[Fragment], timestamp_type: TimestampType
) -> tuple[Sequence[int], Sequence[int]]:
    """(starts, ends) in epoch ms of time-ordered fragments.

    Read from the list's columns: no Fragment object per item.
    """
    listed = as_fragment_list(fragments, timestamp_type)
    starts = listed.start_ms(timestamp_type)
    return starts, array("q", map(operator.add, starts, listed.durations_ms))


def merge(
    starts: Sequence[int],
    ends: Sequence[int],
    *,
    tolerance_ms: int = GAP_TOLERANCE_MS,
    max_fragments: int | None = None,
    max_range_ms: int | None = None,
) -> list[Span]:
    """Merge time-ordered fragments (epoch ms) into continuous spans.

    A span ends where the next fragment starts more than ``tolerance_ms`` after
    the media so far ended (the latest end, not the previous fragment's: a long
    fragment covers short ones within it), and is cut where ``max_fragments``
    or ``max_range_ms`` (what one playlist holds) would be exceeded.
    """
    spans: list[Span] = []
    if not starts:
        return spans
    first, last, count = starts[0], ends[0], 1
    for begin, finish in zip(starts[1:], ends[1:], strict=True):
        if (
            begin - last > tolerance_ms
            or (max_fragments is not None and count >= max_fragments)
            or (max_range_ms is not None and finish - first > max_range_ms)
        ):
            spans.append(Span(first, last, count))
            first, last, count = begin, finish, 1
            continue
        last = max(last, finish)
        count += 1
    spans.append(Span(first, last, count))
    return spans


def gaps(
    starts: Sequence[int],
    ends: Sequence[int],
    *,
    tolerance_ms: int = GAP_TOLERANCE_MS,
) -> list[tuple[int, int]]:
    """Holes longer than ``tolerance_ms`` between time-ordered fragments."""
    spans = merge(starts, ends, tolerance_ms=tolerance_ms)
    return [(a.end_ms, b.start_ms) for a, b in itertools.pairwise(spans)]


def holes(
    spans: Sequence[Span],
    start_ms: int,
    end_ms: int | None,
    *,
    tolerance_ms: int = GAP_TOLERANCE_MS,
) -> list[tuple[int, int]]:
    """Where ``spans`` leave [start_ms, end_ms) without video, longer than tolerance.

    ``end_ms`` None: the range is still being recorded, its end is no hole yet.
    """
    found: list[tuple[int, int]] = []
    cursor = start_ms
    for span in spans:
        if span.start_ms - cursor > tolerance_ms:
            found.append((cursor, span.start_ms))
        cursor = max(cursor, span.end_ms)
    if end_ms is not None and spans and end_ms - cursor > tolerance_ms:
        found.append((cursor, end_ms))
    return found
