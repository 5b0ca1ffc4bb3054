"""Retry back-off and per-stream pacing of calls (token buckets)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

# ListFragments allows 5 TPS per stream: pace a little under it (rate and burst),
# so network jitter never lets two calls reach the service too close together.
LIST_FRAGMENTS_TPS: Final = 4.5
LIST_FRAGMENTS_BURST: Final = 4
# GetClip allows 1 TPS per stream (no burst): starts 1.1 s apart, for the same
# reason. A clip's parts are downloaded one after another, so a part taking
# longer than this is not slowed down at all.
GET_CLIP_INTERVAL_S: Final = 1.1

# Operation -> (starts a second, burst) per stream, shared by all callers.
PACING: Final[dict[str, tuple[float, float]]] = {
    "ListFragments": (LIST_FRAGMENTS_TPS, LIST_FRAGMENTS_BURST),
    "GetClip": (1 / GET_CLIP_INTERVAL_S, 1),
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded, jittered exponential back-off for throttling and transient errors."""

    retries: int = 4
    base_s: float = 0.5
    cap_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.cap_s, self.base_s * 2.0**attempt)
        # "Equal jitter": spreads clients apart but never retries at once.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class TokenBucket:
    """Paces the starts of calls so a per-stream TPS limit is never hit.

    At most ``burst`` calls start at once, then ``rate`` a second, counted start
    to start (however long each call then takes). A caller books its start on
    arrival, before waiting, so concurrent callers start in turn. The clock is
    the loop's unless one is given (tests).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Start full (``burst`` calls may start at once)."""
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None
        self._clock = clock
        self._sleep = sleep

    async def take(self) -> None:
        """Book the next start and wait for it."""
        now = self._clock() if self._clock else asyncio.get_running_loop().time()
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._last = now
        # Below zero, the debt is the queue of booked starts. A cancelled
        # caller's slot is not given back: later bookings already count on it.
        self._tokens -= 1
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)


class Pacers:
    """One token bucket per (operation, stream), made on first use."""

    def __init__(self, pacing: dict[str, tuple[float, float]] | None = None) -> None:
        """Use ``pacing`` (operation -> rate, burst); default: PACING."""
        self._pacing = PACING if pacing is None else pacing
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def paces(self, operation: str) -> bool:
        """Whether calls of ``operation`` are paced."""
        return operation in self._pacing

    def bucket(self, operation: str, stream: str) -> TokenBucket:
        """The bucket of (operation, stream)."""
        if (bucket := self._buckets.get((operation, stream))) is None:
            rate, burst = self._pacing[operation]
            bucket = TokenBucket(rate, burst)
            self._buckets[(operation, stream)] = bucket
        return bucket
