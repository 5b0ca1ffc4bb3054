"""The action answers' formatting."""

from __future__ import annotations

import random

import pytest

from custom_components.kinesis_video.answers import iso_ms, iso_ms_column

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
