"""Waiting until a range that ends in the future is in the archive (event clips).

No Home Assistant imports. "When the doorbell rings, keep from 10 s before to
30 s after" asks for an end that has not happened yet: the action waits for
it, then for KVS to have ingested the fragment that holds it, and saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .kvs import KinesisVideoClient, TimestampType
from .timeline import fragment_times, to_ms

# The furthest ahead an action may end: an automation that waits longer should
# say so itself (a delay), not hold an action open.
MAX_AHEAD: Final = timedelta(minutes=10)
# A fragment is listed once it is complete, within about a second of its end
# (ListFragments is eventually consistent): the first look is this long after
# the end, then one every POLL_INTERVAL_S.
SETTLE: Final = timedelta(seconds=1)
POLL_INTERVAL_S: Final = 0.5
# A fragment lasts at most 10 s: the one that holds the end started this long
# before it at the most. Any listed fragment whose media reaches the end (that
# one, or a later one after a gap) shows the range is archived.
FRAGMENT_MAX: Final = timedelta(seconds=10)
# How far past the end a later fragment is looked for (after a gap at the end).
LOOK_AHEAD: Final = timedelta(seconds=30)
# A producer that stopped sends no later fragment: save what there is after this.
GIVE_UP_AFTER: Final = timedelta(seconds=20)


@dataclass(frozen=True, slots=True)
class Clock:
    """The time a wait reads (aware UTC) and how it sleeps: faked as a pair."""

    now: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def wait_until_recorded(
    client: KinesisVideoClient,
    arn: str,
    end: datetime,
    *,
    timestamp_type: TimestampType,
    clock: Clock,
) -> None:
    """Return once the media up to ``end`` is archived (or it will not come).

    Returns at once for an end long enough ago. Cancelling the caller cancels
    the wait. Polls twice a second at most, within ListFragments' pacing.
    """
    now, sleep = clock.now, clock.sleep
    if (delay := (end + SETTLE - now()).total_seconds()) > 0:
        await sleep(delay)
    elif now() - end > LOOK_AHEAD:
        return  # a range of the past: nothing to wait for
    give_up = end + GIVE_UP_AFTER
    # Bounded by count too, whatever the clock does (a frozen or jumping one).
    for _ in range(int(GIVE_UP_AFTER.total_seconds() / POLL_INTERVAL_S) + 1):
        if await _reaches(client, arn, end, timestamp_type) or now() >= give_up:
            return
        await sleep(POLL_INTERVAL_S)


async def _reaches(
    client: KinesisVideoClient, arn: str, end: datetime, timestamp_type: TimestampType
) -> bool:
    """Whether a listed fragment's media goes past ``end`` (one call: ~20 fragments).

    Past, not up to: a range holds the fragments that start in [start, end],
    so one starting exactly at ``end`` is in it, and listed only once complete.
    """
    listed, _ = await client.list_fragments(
        arn, end - FRAGMENT_MAX, end + LOOK_AHEAD, timestamp_type=timestamp_type
    )
    _, ends = fragment_times(listed, timestamp_type)
    return bool(ends) and max(ends) > to_ms(end)
