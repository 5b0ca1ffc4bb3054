"""Records garbage-collection pauses inside a benchmarked Home Assistant.

Only scripts/bench_hass.py installs it: ``GET /api/bench_gc_watch`` answers the
collections that took over 1 ms since the last call (and forgets them), so a
stall seen from outside can be told apart into GC pauses and the rest;
``POST`` runs a full collection, so that a measured window starts from a
collected heap.
"""

from __future__ import annotations

import gc
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


class _GcView(HomeAssistantView):
    url = "/api/bench_gc_watch"
    name = "api:bench_gc_watch"

    def __init__(self, pauses: _Pauses) -> None:
        self._pauses = pauses

    async def get(self, request: web.Request) -> web.Response:
        rows, self._pauses.rows = self._pauses.rows, []
        return self.json(
            {
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
    hass.http.register_view(_GcView(pauses))
    return True
