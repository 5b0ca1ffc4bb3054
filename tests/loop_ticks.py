"""Counting the event loop's turns, to see that a long job lets it run."""

from __future__ import annotations

import asyncio


class LoopTicks:
    """``async with LoopTicks() as ticks``: ``ticks.count`` turns of the loop."""

    def __init__(self) -> None:
        """No turn counted yet."""
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopTicks:
        """Start counting (from the loop's next turn)."""
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop counting."""
        if self._task is not None:
            self._task.cancel()

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)
