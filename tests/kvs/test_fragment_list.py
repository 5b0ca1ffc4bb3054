"""FragmentList and the ListFragments page parser: order, duplicates, objects."""

from __future__ import annotations

import gc
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.kinesis_video.kvs import Fragment, FragmentList, models, wire
from custom_components.kinesis_video.kvs.models import FragmentListBuilder

from ..loop_ticks import LoopTicks

DAY = 43_200  # 2 s fragments
BASE_MS = 1_796_000_000_000
NUMBER_BASE = 91343852333181432392682062607743920146264440798


def page_bytes(
    first: int, count: int, *, seed: int = 0, token: str | None = None
) -> bytes:
    """A ListFragments page as KVS sends it (fields in its order, shuffled)."""
    items = [
        {
            "FragmentNumber": str(NUMBER_BASE + index),
            "FragmentSizeInBytes": 40_000 + index % 7,
            "ProducerTimestamp": (BASE_MS + index * 2000 + 17) / 1000,
            "ServerTimestamp": (BASE_MS + index * 2000 + 250) / 1000,
            "FragmentLengthInMilliseconds": 2000,
        }
        for index in range(first, first + count)
    ]
    random.Random(seed).shuffle(items)
    body: dict[str, object] = {"Fragments": items}
    if token:
        body["NextToken"] = token
    return json.dumps(body).encode()


def day_pages() -> list[bytes]:
    order = list(range(0, DAY, 1000))
    random.Random(1).shuffle(order)  # pages in no order either
    return [
        page_bytes(first, min(1000, DAY - first), seed=first, token="t")
        for first in order
    ]


def list_day(pages: list[bytes]) -> FragmentList:
    builder = FragmentListBuilder()
    for body in pages:
        page = wire.fragment_page(body)
        builder.add(
            page.numbers, page.producer_ms, page.server_ms, page.duration_ms, page.size
        )
    return builder.build("SERVER_TIMESTAMP")


def test_a_day_leaves_few_tracked_objects() -> None:
    """43,200 fragments: a handful of objects for the collector, not ~43k.

    Counted, not timed: the objects the collector tracks that survive (held by
    the result), and the collections the parsing itself sets off.
    """
    pages = day_pages()
    # Once first: what a first run leaves for good (a coverage tracer's records
    # of the lines it saw) is not the listing's.
    list_day(pages)
    gc.collect()
    before = len(gc.get_objects())
    collections = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal collections
        if phase == "start":
            collections += 1

    gc.callbacks.append(count)
    try:
        fragments = list_day(pages)
    finally:
        gc.callbacks.remove(count)
    gc.collect()
    survivors = len(gc.get_objects()) - before
    assert len(fragments) == DAY
    assert fragments.numbers[0] == str(NUMBER_BASE)
    assert list(fragments.server_ms) == [BASE_MS + i * 2000 + 250 for i in range(DAY)]
    # The list of numbers and the FragmentList; arrays and str are untracked.
    assert survivors <= 10, survivors
    # json.loads of the same pages builds 43,200 dicts (about 21 collections at
    # the default threshold of 2000); the scan builds a few lists a page.
    assert collections <= 3, collections


def test_parse_matches_json() -> None:
    body = page_bytes(0, 300, seed=3, token="abc")
    page = wire.fragment_page(body)
    items = json.loads(body)["Fragments"]
    assert page.numbers == [item["FragmentNumber"] for item in items]
    assert list(page.producer_ms) == [
        round(item["ProducerTimestamp"] * 1000) for item in items
    ]
    assert list(page.size) == [item["FragmentSizeInBytes"] for item in items]
    assert page.next_token == "abc"


def test_parse_falls_back_when_a_field_is_missing() -> None:
    """Optional fields may be absent: the plain path fills in 0."""
    body = json.dumps(
        {
            "Fragments": [
                {"FragmentNumber": "1", "ProducerTimestamp": 1.5, "ServerTimestamp": 2},
                {
                    "FragmentNumber": "2",
                    "ProducerTimestamp": "2026-12-01T00:00:00Z",
                    "ServerTimestamp": 3.25,
                    "FragmentSizeInBytes": 10,
                    "FragmentLengthInMilliseconds": 2000,
                },
            ]
        }
    ).encode()
    page = wire.fragment_page(body)
    assert page.numbers == ["1", "2"]
    assert list(page.server_ms) == [2000, 3250]
    assert page.producer_ms[1] == round(
        datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000
    )
    assert list(page.size) == [0, 10]
    assert page.next_token is None
    assert wire.fragment_page(b'{"Fragments": []}').numbers == []
    assert wire.fragment_page(b"{}").numbers == []
    with pytest.raises(ValueError, match="JSON object"):
        wire.fragment_page(b"[]")


def test_builder_orders_dedupes_and_cuts() -> None:
    builder = FragmentListBuilder()
    # Equal start times are ordered by number (as integers, not as text).
    builder.add(["10", "9", "11"], [5, 5, 1], [100, 100, 50], [1, 2, 3], [7, 8, 9])
    builder.add(["9"], [5], [100], [2], [8])  # listed twice
    everything = builder.build("SERVER_TIMESTAMP")
    assert everything.numbers == ["11", "9", "10"]
    assert not everything.truncated
    by_producer = builder.build("PRODUCER_TIMESTAMP", limit=2)
    assert by_producer.numbers == ["11", "9"]
    assert by_producer.truncated
    assert by_producer.start_ms() is by_producer.producer_ms
    with pytest.raises(ValueError, match="differ"):
        builder.add(["1"], [1], [], [1], [1])
    assert len(builder) == 4  # the bad page was not kept


def test_builder_keeps_the_first_of_a_repeat_and_orders_ties_without_repeats() -> None:
    builder = FragmentListBuilder()
    # No number twice, two start times equal: ordered by number.
    builder.add(["30", "4", "200"], [0, 0, 0], [7, 3, 3], [1, 1, 1], [1, 1, 1])
    assert builder.build("SERVER_TIMESTAMP").numbers == ["4", "200", "30"]
    # A tie across the cut, and one before it: the lower number is kept first.
    assert builder.build("SERVER_TIMESTAMP", limit=1).numbers == ["4"]
    builder.add(["1"], [0], [9], [1], [1])
    assert builder.build("SERVER_TIMESTAMP", limit=3).numbers == ["4", "200", "30"]
    del builder  # the repeat below starts from the first three again
    builder = FragmentListBuilder()
    builder.add(["30", "4", "200"], [0, 0, 0], [7, 3, 3], [1, 1, 1], [1, 1, 1])
    # A number listed again with other columns: its first listing is kept.
    builder.add(["4"], [0], [9], [5], [5])
    again = builder.build("SERVER_TIMESTAMP")
    assert again.numbers == ["4", "200", "30"]
    assert list(again.durations_ms) == [1, 1, 1]


async def test_build_async_lets_the_loop_run_between_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A day is sorted and gathered on the loop, in steps, to the same list."""
    builder = FragmentListBuilder()
    for body in day_pages():
        page = wire.fragment_page(body)
        builder.add(
            page.numbers, page.producer_ms, page.server_ms, page.duration_ms, page.size
        )
    monkeypatch.setattr(models, "GATHER_SLICE", 1000)
    async with LoopTicks() as ticks:
        built = await builder.build_async("SERVER_TIMESTAMP", limit=DAY - 1)
    assert ticks.count >= DAY // 1000 + 2  # the sort, then each slice gathered
    assert built.truncated
    assert built == builder.build("SERVER_TIMESTAMP", limit=DAY - 1)
    assert built.numbers == [str(NUMBER_BASE + i) for i in range(DAY - 1)]


def test_fragment_list_is_a_sequence_of_fragments() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    items = [
        Fragment(str(n), start + timedelta(seconds=n), start, 2000, n) for n in range(3)
    ]
    fragments = FragmentList.of(items)
    assert fragments == items
    assert list(fragments) == items
    assert fragments[-1] == items[-1]
    assert fragments[1:] == items[1:]
    assert isinstance(fragments[1:], FragmentList)
    assert FragmentList() == []
    assert fragments != "abc"
    assert "3 fragments" in repr(fragments)
    assert fragments.durations_ms.tolist() == [2000] * 3
    assert fragments.sizes.tolist() == [0, 1, 2]
