"""timeline.py on its own: one span/gap algorithm, one tolerance, for everyone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from custom_components.kinesis_video import clip, recordings, timeline
from custom_components.kinesis_video.kvs import Fragment
from custom_components.kinesis_video.kvs.models import FragmentList

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _fragments(offsets_ms: list[int], ms: int = 2000) -> list[Fragment]:
    return [
        Fragment(
            number=str(10**30 + i),
            producer_timestamp=T0 + timedelta(milliseconds=o + 250),
            server_timestamp=T0 + timedelta(milliseconds=o),
            duration_ms=ms,
            size=10,
        )
        for i, o in enumerate(offsets_ms)
    ]


def test_one_tolerance_for_actions_and_browser() -> None:
    """A 700 ms pause is no gap, in the actions and in the browser alike.

    It used to be a gap for the actions (500 ms) and none for the browser (1 s).
    """
    fragments = _fragments([0, 2000, 4700, 6700, 10_000])
    assert clip.GAP_TOLERANCE == recordings.GAP_TOLERANCE == timeline.GAP_TOLERANCE
    gaps = clip.find_gaps(fragments, "SERVER_TIMESTAMP")
    spans = recordings.merge_spans(fragments, "SERVER_TIMESTAMP")
    assert [(g.start, g.end) for g in gaps] == [
        (T0 + timedelta(milliseconds=8700), T0 + timedelta(milliseconds=10_000))
    ]
    assert [(s.start_ms, s.end_ms, s.fragments) for s in spans] == [
        (timeline.to_ms(T0), timeline.to_ms(T0) + 8700, 4),
        (timeline.to_ms(T0) + 10_000, timeline.to_ms(T0) + 12_000, 1),
    ]
    # The gaps between spans are the actions' gaps.
    assert [(a.end, b.start) for a, b in itertools.pairwise(spans)] == [
        (g.start, g.end) for g in gaps
    ]
    summary = clip.summarize(fragments, "PRODUCER_TIMESTAMP")
    assert len(summary.gaps) == 1


def test_a_long_fragment_covers_short_ones() -> None:
    """The latest end so far counts, not only the previous fragment's."""
    starts, ends = [0, 1000, 3000], [10_000, 2000, 11_000]
    assert timeline.gaps(starts, ends) == []
    assert timeline.merge(starts, ends) == [timeline.Span(0, 11_000, 3)]
    assert timeline.merge([], []) == []


def test_holes_of_a_range() -> None:
    spans = [timeline.Span(1000, 5000, 2), timeline.Span(8000, 9000, 1)]
    assert timeline.holes(spans, 0, 20_000) == [(5000, 8000), (9000, 20_000)]
    # Still being recorded: the end is no hole; a short lead-in is none either.
    assert timeline.holes(spans, 500, None) == [(5000, 8000)]
    assert timeline.holes([], 0, 10_000) == []


def test_epoch_ms_round_trip() -> None:
    moment = datetime(2026, 12, 3, 13, 30, 0, 123000, tzinfo=UTC)
    assert timeline.from_ms(timeline.to_ms(moment)) == moment
    assert timeline.to_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_columns_of_the_new_client_read_as_is() -> None:
    """A FragmentList's epoch-ms columns give the same spans as Fragment objects."""
    fragments = _fragments([0, 2000, 9000])
    listed = FragmentList.of(fragments)
    for kind in ("SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"):
        columns = timeline.fragment_times(listed, kind)
        objects = timeline.fragment_times(fragments, kind)
        assert [list(c) for c in columns] == [list(c) for c in objects]
        assert recordings.merge_spans(listed, kind) == recordings.merge_spans(
            fragments, kind
        )


class _ColumnsOnly(FragmentList):
    """A FragmentList that refuses to build Fragment objects."""

    __slots__ = ()

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return super().__getitem__(index)
        raise AssertionError("a Fragment was built")


def test_hot_paths_read_columns_only() -> None:
    """Plans, summaries, gaps and spans of a client's list build no Fragment.

    A day is 43,200 fragments: one object each would be the garbage the
    client's columns avoid. The answers equal those of Fragment objects.
    """
    fragments = _fragments([0, 2000, 4000, 9000, 11_000, 13_000, 20_000])
    plain = FragmentList.of(fragments)
    listed = _ColumnsOnly(
        list(plain.numbers),
        (plain.producer_ms, plain.server_ms, plain.durations_ms, plain.sizes),
    )
    for kind in ("SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"):
        assert clip.plan_clip_parts(
            listed, kind, max_fragments=3
        ) == clip.plan_clip_parts(fragments, kind, max_fragments=3)
        assert clip.plan_clip_parts(listed, kind, max_bytes=25) == clip.plan_clip_parts(
            fragments, kind, max_bytes=25
        )
        assert clip.summarize(listed, kind) == clip.summarize(fragments, kind)
        assert clip.find_gaps(listed, kind) == clip.find_gaps(fragments, kind)
        assert recordings.merge_spans(listed, kind) == recordings.merge_spans(
            fragments, kind
        )
    parts = clip.plan_clip_parts(listed, "SERVER_TIMESTAMP", max_fragments=3)
    assert [p.fragments for p in parts] == [3, 3, 1]
    # A part ends 1 ms before its media ends (EndTimestamp is inclusive).
    assert parts[0].end == T0 + timedelta(milliseconds=6000 - 1)
    assert parts[1].start == T0 + timedelta(seconds=9)
    assert parts[-1].end == T0 + timedelta(milliseconds=22_000 - 1)
    summary = clip.summarize(listed, "SERVER_TIMESTAMP")
    assert (summary.count, summary.size, summary.recorded_seconds) == (7, 70, 14.0)
    assert (summary.start, summary.end) == (T0, T0 + timedelta(seconds=22))
    assert [(g.start, g.end) for g in summary.gaps] == [
        (T0 + timedelta(seconds=6), T0 + timedelta(seconds=9)),
        (T0 + timedelta(seconds=15), T0 + timedelta(seconds=20)),
    ]
    empty = clip.summarize(FragmentList(), "SERVER_TIMESTAMP")
    assert (empty.count, empty.start, empty.end, empty.gaps) == (0, None, None, [])
    assert clip.plan_clip_parts(FragmentList(), "SERVER_TIMESTAMP") == []
