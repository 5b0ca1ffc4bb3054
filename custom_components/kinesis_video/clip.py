"""Planning a clip: GetClip-sized parts of a fragment list, its gaps and summary.

Plain Python, no Home Assistant imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from . import timeline
from .kvs import Fragment, FragmentList, TimestampType

# GetClip returns at most the first 200 fragments or 100 MB of a range. Keep a
# margin under the byte limit for the MP4 header the service adds.
CLIP_MAX_FRAGMENTS: Final = 200
CLIP_MAX_BYTES: Final = 100 * 1000 * 1000 - 1024 * 1024
# A hole between two fragments longer than this counts as a gap (the timeline's).
GAP_TOLERANCE: Final = timeline.GAP_TOLERANCE


@dataclass(frozen=True, slots=True)
class Gap:
    """Time with no media between two fragments."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        """Length of the gap."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class ClipPart:
    """One GetClip call's worth of fragments, on fragment boundaries."""

    start: datetime
    end: datetime
    fragments: int
    size: int


@dataclass(frozen=True, slots=True)
class Summary:
    """What a list of fragments covers."""

    count: int
    recorded_seconds: float
    size: int
    start: datetime | None
    end: datetime | None
    gaps: list[Gap]


_ONE_MS: Final = timedelta(milliseconds=1)


# The timeline's, under the names the actions know.
fragment_time = timeline.fragment_start
fragment_end = timeline.fragment_end


def plan_clip_parts(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    max_fragments: int = CLIP_MAX_FRAGMENTS,
    max_bytes: int = CLIP_MAX_BYTES,
) -> list[ClipPart]:
    """Split time-ordered fragments into GetClip-sized runs.

    GetClip selects fragments by their start, end inclusive, and wants an end
    later than the start (a one-fragment part must not have start == end). So a
    part ends 1 ms before its last fragment's media ends, but always before the
    next part's first fragment starts: the parts neither overlap nor leave a
    fragment out. Reads the list's epoch-ms columns (a day is 43,200 items).
    """
    listed = timeline.as_fragment_list(fragments, timestamp_type)
    starts = listed.start_ms(timestamp_type)
    durations = listed.durations_ms
    parts: list[ClipPart] = []
    first = size = 0

    def close(stop: int) -> None:
        last = stop - 1
        end = starts[last] + durations[last] - 1
        if stop < len(starts):
            end = min(end, starts[stop] - 1)
        end = max(end, starts[last], starts[first] + 1)
        parts.append(
            ClipPart(
                start=timeline.from_ms(starts[first]),
                end=timeline.from_ms(end),
                fragments=stop - first,
                size=size,
            )
        )

    for index, fragment_size in enumerate(listed.sizes):
        if index > first and (
            index - first >= max_fragments or size + fragment_size > max_bytes
        ):
            close(index)
            first, size = index, 0
        size += fragment_size
    if starts:
        close(len(starts))
    return parts


def _gaps(
    starts: Sequence[int], ends: Sequence[int], tolerance: timedelta
) -> list[Gap]:
    return [
        Gap(timeline.from_ms(start), timeline.from_ms(end))
        for start, end in timeline.gaps(starts, ends, tolerance_ms=tolerance // _ONE_MS)
    ]


def find_gaps(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    tolerance: timedelta = GAP_TOLERANCE,
) -> list[Gap]:
    """Holes longer than tolerance between (time-ordered) fragments: the timeline's."""
    return _gaps(*timeline.fragment_times(fragments, timestamp_type), tolerance)


def summarize(fragments: Sequence[Fragment], timestamp_type: TimestampType) -> Summary:
    """Count, recorded time, bytes, first start, last end and gaps (from columns)."""
    listed = timeline.as_fragment_list(fragments, timestamp_type)
    return summary_of(listed, *timeline.fragment_times(listed, timestamp_type))


def summary_of(
    listed: FragmentList, starts: Sequence[int], ends: Sequence[int]
) -> Summary:
    """``summarize``, given the fragments' start and end times (epoch ms)."""
    return Summary(
        count=len(listed),
        recorded_seconds=sum(listed.durations_ms) / 1000,
        size=sum(listed.sizes),
        start=timeline.from_ms(starts[0]) if starts else None,
        end=timeline.from_ms(ends[-1]) if ends else None,
        gaps=_gaps(starts, ends, GAP_TOLERANCE),
    )
