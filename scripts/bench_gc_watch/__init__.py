"""Records garbage-collection pauses inside a benchmarked Home Assistant.

Only scripts/bench_hass.py installs it: ``GET /api/bench_gc_watch`` answers the
collections that took over 1 ms since the last call (and forgets them), so a
stall seen from outside can be told apart into GC pauses and the rest;
``POST`` runs a full collection, so that a measured window starts from a
collected heap. With ``BENCH_SLOW_CALLBACK_MS`` set, it also answers each turn
of the event loop's callbacks that ran longer: which task, how long, and for a
task the code the step ran (where it resumed, where it waits next: the wait and
its caller), so that "our steps" and "Home Assistant's" can be told apart.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

from aiohttp import web
from homeassistant.components.http import HomeAssistantView
from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType

DOMAIN = "bench_gc_watch"


class _Pauses:
    def __init__(self) -> None:
        self.began = 0.0
        self.rows: list[tuple[float, int, float, int]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # Runs in whichever thread triggered the collection: keep it tiny.
        if phase == "start":
            self.began = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self.began) * 1000
        if took_ms > 1:
            self.rows.append(
                (time.monotonic(), info["generation"], took_ms, info["collected"])
            )


class _SlowCallbacks:
    """Times every callback the loop runs (Handle._run); keeps the slow ones."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self.rows: list[tuple[float, float, str]] = []

    def install(self) -> None:
        run = asyncio.Handle._run
        watch = self

        def timed_run(handle: asyncio.Handle) -> None:
            resumed_at = _innermost(handle)
            began = time.perf_counter()
            try:
                run(handle)
            finally:
                took_ms = (time.perf_counter() - began) * 1000
                if took_ms > watch.threshold_ms:
                    what = _name(handle)
                    if resumed_at:
                        # The step ran from where the task resumed to where
                        # it waits now: that names the slow code, not the task.
                        what += f" from {resumed_at} to {_innermost(handle)}"
                    watch.rows.append((time.monotonic(), took_ms, what))

        asyncio.Handle._run = timed_run  # type: ignore[method-assign]


def _task_of(handle: asyncio.Handle) -> asyncio.Task[Any] | None:
    """The task whose step ``handle`` runs (None for a plain callback)."""
    owner = getattr(handle._callback, "__self__", None)
    return owner if isinstance(owner, asyncio.Task) else None


def _innermost(handle: asyncio.Handle) -> str:
    """Where a task's innermost coroutine waits ("" for a plain callback)."""
    if (task := _task_of(handle)) is None:
        return ""
    coro: Any = task.get_coro()
    chain: list[str] = []
    while coro is not None and (frame := getattr(coro, "cr_frame", None)):
        chain.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None)
    return " < ".join(reversed(chain[-2:]))  # the wait, and who waits


def _name(handle: asyncio.Handle) -> str:
    if (task := _task_of(handle)) is not None:
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" at line {frame.f_lineno}" if frame else ""
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    return repr(handle._callback)[:200]


class _GcView(HomeAssistantView):
    url = "/api/bench_gc_watch"
    name = "api:bench_gc_watch"

    def __init__(self, pauses: _Pauses, slow: _SlowCallbacks | None) -> None:
        self._pauses = pauses
        self._slow = slow

    async def get(self, request: web.Request) -> web.Response:
        rows, self._pauses.rows = self._pauses.rows, []
        slow: list[tuple[float, float, str]] = []
        if self._slow is not None:
            slow, self._slow.rows = self._slow.rows, []
        return self.json(
            {
                "slow_callbacks": [
                    {"at": at, "ms": ms, "what": what} for at, ms, what in slow
                ],
                "pauses": [
                    {"at": at, "generation": gen, "ms": ms, "collected": n}
                    for at, gen, ms, n in rows
                ],
                "thresholds": gc.get_threshold(),
                "counts": gc.get_count(),
                "stats": gc.get_stats(),
                # Walks the whole heap: only when asked, outside a measured window.
                **(
                    {"objects": [len(gc.get_objects(g)) for g in range(3)]}
                    if "objects" in request.query
                    else {}
                ),
            }
        )

    async def post(self, request: web.Request) -> web.Response:
        """Collect everything now; how long it took."""
        began = time.perf_counter()
        gc.collect()
        self._pauses.rows.clear()
        return self.json({"ms": (time.perf_counter() - began) * 1000})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start recording collections."""
    pauses = _Pauses()
    gc.callbacks.append(pauses)
    slow = None
    if threshold := os.environ.get("BENCH_SLOW_CALLBACK_MS"):
        slow = _SlowCallbacks(float(threshold))
        slow.install()
    hass.http.register_view(_GcView(pauses, slow))
    return True
