"""Waiting until a range that ends in the future is in the archive (event clips).

No Home Assistant imports. "When the doorbell rings, keep from 10 s before to
30 s after" asks for an end that has not happened yet: the action waits for
it, then for KVS to have ingested the fragment that holds it, and saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from .kvs import KinesisVideoClient, TimestampType

# The furthest ahead an action may end: an automation that waits longer should
# say so itself (a delay), not hold an action open.
MAX_AHEAD: Final = timedelta(minutes=10)
# A fragment is ingested once it is complete, and listed within about a second
# (ListFragments is eventually consistent): first look this long after the end.
SETTLE: Final = timedelta(seconds=2)
# Fragments last at most 10 s: one that starts after the end shows that the one
# holding the end is complete. Looked for in this window past the end.
LOOK_AHEAD: Final = timedelta(seconds=30)
# A producer that stopped sends no later fragment: save what there is after this.
GIVE_UP_AFTER: Final = timedelta(seconds=20)
POLL_INTERVAL_S: Final = 1.0


async def wait_until_recorded(
    client: KinesisVideoClient,
    arn: str,
    end: datetime,
    *,
    timestamp_type: TimestampType,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return once the media up to ``end`` is archived (or it will not come).

    Returns at once for an end long enough ago. Cancelling the caller cancels
    the wait. Polls at most once a second, within ListFragments' pacing.
    """
    if (delay := (end + SETTLE - now()).total_seconds()) > 0:
        await sleep(delay)
    elif now() - end > LOOK_AHEAD:
        return  # a range of the past: nothing to wait for
    give_up = end + GIVE_UP_AFTER
    # Bounded by count too, whatever the clock does (a frozen or jumping one).
    for _ in range(int(GIVE_UP_AFTER.total_seconds() / POLL_INTERVAL_S) + 1):
        if (
            await client.has_fragments(
                arn, end, end + LOOK_AHEAD, timestamp_type=timestamp_type
            )
            or now() >= give_up
        ):
            return
        await sleep(POLL_INTERVAL_S)
