"""The action answers' formatting."""

from __future__ import annotations

import ast
import asyncio
import copy
import json
import pickle
import random

import pytest
from homeassistant.helpers.json import ExtendedJSONEncoder, json_bytes

from custom_components.kinesis_video.answers import (
    PLAIN_ROWS_UP_TO,
    ROWS_PER_SLICE,
    FragmentRows,
    fragment_list,
    fragment_rows,
    iso_ms,
    iso_ms_column,
)
from custom_components.kinesis_video.kvs import Fragment, FragmentList
from custom_components.kinesis_video.timeline import from_ms

EDGES = [
    0,  # the epoch, a whole second
    -1,  # just before it
    59_999,  # a minute's last millisecond
    60_000,  # the next minute, whole
    951_782_400_000,  # 2000-02-29, a leap day
    1_796_450_399_999,  # a day's last millisecond
    1_796_450_400_000,  # the next day, whole
    1_796_450_400_123,
    253_402_300_799_999,  # 9999-12-31T23:59:59.999
]


@pytest.mark.parametrize("value", EDGES)
def test_edges_read_as_iso_ms(value: int) -> None:
    """Whole seconds have no fraction; others microseconds, as isoformat()."""
    assert iso_ms_column([value]) == [iso_ms(value)]


def test_column_reads_as_iso_ms_in_any_order() -> None:
    """A column in order, and one shuffled (the kept prefix must not leak)."""
    rng = random.Random(7)
    base = 1_796_450_400_000
    ordered = [base + 2000 * i + rng.choice([0, 3, 999]) for i in range(5000)]
    shuffled = [rng.randrange(-(10**12), 253_402_300_800_000) for _ in range(5000)]
    for values in (ordered, shuffled, sorted(shuffled, reverse=True)):
        assert iso_ms_column(values) == [iso_ms(v) for v in values]


def _fragments(count: int, numbers: list[str] | None = None) -> FragmentList:
    rng = random.Random(count)
    base = 1_796_450_400_000
    return FragmentList.of(
        Fragment(
            number=numbers[i] if numbers else str(91343852333181432392682 + i),
            producer_timestamp=from_ms(base + 2000 * i + rng.choice([0, 3, 999])),
            server_timestamp=from_ms(base + 2000 * i + 250),
            duration_ms=rng.randrange(500, 2500),
            size=rng.randrange(10**4, 10**7),
        )
        for i in range(count)
    )


@pytest.mark.parametrize("count", [0, 1, ROWS_PER_SLICE, 2 * ROWS_PER_SLICE + 7])
async def test_rows_send_what_their_dicts_would(count: int) -> None:
    """Home Assistant's encoder writes the rows exactly as it writes their dicts."""
    fragments = _fragments(count)
    rows = await FragmentRows.of(fragments)
    as_dicts = fragment_rows(fragments)
    assert json_bytes({"fragments": rows}) == json_bytes({"fragments": as_dicts})
    assert len(rows) == count
    assert list(rows) == as_dicts


async def test_rows_escape_numbers_as_json_does() -> None:
    """A number JSON must escape (KVS's never need it) is escaped as orjson does."""
    numbers = ['1"2', "3\\4", "5\n6", "\x00", "\x1f", "\x7f", "é", "/", "plain"]
    fragments = _fragments(len(numbers), numbers)
    rows = await FragmentRows.of(fragments)
    assert json_bytes(rows) == json_bytes(fragment_rows(fragments))
    assert [row["number"] for row in rows] == numbers


async def test_rows_read_as_a_list_of_dicts() -> None:
    """Index, slice, iterate, compare, and render back as a list."""
    fragments = _fragments(1203)
    rows = await FragmentRows.of(fragments)
    as_dicts = fragment_rows(fragments)
    assert rows[0] == as_dicts[0]
    assert rows[-1] == as_dicts[-1]
    assert rows[-1203] == as_dicts[0]
    assert rows[600:603] == as_dicts[600:603]
    assert rows[::400] == as_dicts[::400]
    for index in (1203, -1204):
        with pytest.raises(IndexError):
            rows[index]
    with pytest.raises(TypeError):
        rows["number"]  # type: ignore[call-overload]
    assert list(reversed(rows)) == as_dicts[::-1]
    assert rows == as_dicts
    assert rows != tuple(as_dicts)  # as a list is not equal to a tuple
    assert rows != as_dicts[:-1]
    assert rows == await FragmentRows.of(fragments)
    assert rows != await FragmentRows.of(fragments[1:])
    assert rows != "rows"
    # Joined or repeated, they give lists, as a list would.
    assert rows + as_dicts[:2] == as_dicts + as_dicts[:2]
    assert as_dicts[:2] + rows == as_dicts[:2] + as_dicts
    assert rows + rows == as_dicts * 2 == rows * 2 == 2 * rows
    assert type(rows + []) is list  # noqa: RUF005 - the operator is under test
    with pytest.raises(TypeError):
        rows + (1,)  # type: ignore[operator]  # noqa: RUF005
    with pytest.raises(TypeError):
        (1,) + rows  # type: ignore[operator]  # noqa: RUF005
    assert ast.literal_eval(repr(rows)) == as_dicts
    assert rows.as_dict() == as_dicts
    assert json.dumps(rows, cls=ExtendedJSONEncoder) == json.dumps(as_dicts)
    with pytest.raises(TypeError):
        hash(rows)


@pytest.mark.parametrize(
    ("count", "limit", "plain"),
    [
        (0, 1000, True),
        (PLAIN_ROWS_UP_TO, 100_000, True),
        (PLAIN_ROWS_UP_TO + 1, PLAIN_ROWS_UP_TO, True),
        (PLAIN_ROWS_UP_TO + 1, 100_000, False),
    ],
)
async def test_long_answers_hold_fragment_rows(
    count: int, limit: int, *, plain: bool
) -> None:
    """Up to the default limit a plain list of dicts, FragmentRows beyond."""
    fragments = _fragments(count)
    answer = await fragment_list(fragments, "SERVER_TIMESTAMP", limit)
    shown = answer["fragments"]
    assert type(shown) is (list if plain else FragmentRows)
    assert shown == fragment_rows(fragments[:limit])
    assert answer["truncated"] is (count > limit)
    assert answer["summary"]["count"] == count


async def test_rows_made_a_slice_per_loop_turn() -> None:
    """Other tasks run between two slices of the rows' JSON."""
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = turns
    await FragmentRows.of(_fragments(3 * ROWS_PER_SLICE + 1))
    counter.cancel()
    assert turns - before >= 3


async def test_rows_copy_and_pickle_as_a_list_would() -> None:
    """The rows copy and pickle as a list would."""
    rows = await FragmentRows.of(_fragments(3))
    for copied in (
        copy.copy(rows),
        copy.deepcopy(rows),
        pickle.loads(pickle.dumps(rows)),
    ):
        assert copied == rows
        assert json_bytes(copied) == json_bytes(rows)
