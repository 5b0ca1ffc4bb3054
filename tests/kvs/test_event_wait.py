"""Waiting for a future end against the emulator's live video (real time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from custom_components.kinesis_video import event_wait
from custom_components.kinesis_video.kvs import KinesisVideoClient
from kvs_emulator.testing import EmulatorProcess
from tests.kvs.conftest import admin


def utcnow() -> datetime:
    return datetime.now(UTC)


async def test_waits_for_the_fragment_that_holds_the_end(
    make_client: Callable[..., KinesisVideoClient], arns: dict[str, str]
) -> None:
    """It returns after the end, once a complete fragment reaching it is listed."""
    client = make_client()
    end = utcnow() + timedelta(seconds=1)
    await event_wait.wait_until_recorded(
        client,
        arns["front-door"],
        end,
        timestamp_type="SERVER_TIMESTAMP",
        clock=event_wait.Clock(utcnow),
    )
    assert utcnow() >= end + event_wait.SETTLE
    listed, _ = await client.list_fragments(
        arns["front-door"], end - event_wait.FRAGMENT_MAX, end + event_wait.LOOK_AHEAD
    )
    reach = max(
        f.server_timestamp + timedelta(milliseconds=f.duration_ms) for f in listed
    )
    assert reach >= end, "returned before the media up to the end was archived"


async def test_an_end_on_a_fragment_start_waits_for_that_fragment(
    make_client: Callable[..., KinesisVideoClient], arns: dict[str, str]
) -> None:
    """An end exactly where a fragment starts: that fragment is in the range too.

    Ranges hold the fragments that start in [start, end]; the one starting at
    the end is listed only once complete, so the wait lasts until then (it used
    to stop at the fragment ending there, and the saved range then depended on
    how soon it was listed).
    """
    client = make_client()
    arn = arns["front-door"]
    now = utcnow()
    listed, _ = await client.list_fragments(arn, now - timedelta(seconds=30), now)
    last = max(listed, key=lambda f: f.server_timestamp)
    step = timedelta(milliseconds=last.duration_ms)
    # The start of the fragment after the one being recorded now.
    end = last.server_timestamp + 2 * step
    assert end > now
    await event_wait.wait_until_recorded(
        client,
        arn,
        end,
        timestamp_type="SERVER_TIMESTAMP",
        clock=event_wait.Clock(utcnow),
    )
    starting_there, _ = await client.list_fragments(arn, end, end)
    assert [f.server_timestamp for f in starting_there] == [end]


async def test_a_past_range_does_not_wait(
    make_client: Callable[..., KinesisVideoClient], arns: dict[str, str]
) -> None:
    """An end long gone needs no call and no wait."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await event_wait.wait_until_recorded(
        make_client(),
        arns["front-door"],
        utcnow() - timedelta(minutes=5),
        timestamp_type="SERVER_TIMESTAMP",
        clock=event_wait.Clock(utcnow, sleep),
    )
    assert slept == []


async def test_a_stopped_producer_gives_up(
    emulator: EmulatorProcess,
    make_client: Callable[..., KinesisVideoClient],
    arns: dict[str, str],
) -> None:
    """No fragment comes past the end: it saves what there is after a bound.

    The clock here is a fake one that each sleep moves on, so the 20 s bound
    costs no real time; the emulator still answers every poll for real.
    """
    await admin(emulator, "POST", "streams/backyard", {"online": False})
    clock = [utcnow()]
    polls: list[float] = []

    async def sleep(seconds: float) -> None:
        polls.append(seconds)
        clock[0] += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    end = clock[0] + timedelta(seconds=3)
    await event_wait.wait_until_recorded(
        make_client(),
        arns["backyard"],
        end,
        timestamp_type="SERVER_TIMESTAMP",
        clock=event_wait.Clock(lambda: clock[0], sleep),
    )
    assert clock[0] >= end + event_wait.GIVE_UP_AFTER
    # The first sleep waits for the end; then polls at a steady pace to the bound.
    assert polls[1:] == [event_wait.POLL_INTERVAL_S] * (len(polls) - 1)
    assert (
        len(polls) - 1
        <= event_wait.GIVE_UP_AFTER.total_seconds() / event_wait.POLL_INTERVAL_S
    )


async def test_cancelling_stops_the_wait(
    make_client: Callable[..., KinesisVideoClient], arns: dict[str, str]
) -> None:
    """Cancelling the action (automation stopped, entry unloaded) ends the wait."""
    task = asyncio.ensure_future(
        event_wait.wait_until_recorded(
            make_client(),
            arns["front-door"],
            utcnow() + timedelta(minutes=5),
            timestamp_type="SERVER_TIMESTAMP",
            clock=event_wait.Clock(utcnow),
        )
    )
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1)
    assert task in done
    assert task.cancelled()
