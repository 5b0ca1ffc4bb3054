"""A day of fragments never holds the event loop for long.

The structural tests check how the CPU-heavy steps are cut up or on which
thread they run (never how long they take). ``test_bench_loop_stall``
measures the loop's longest stall while four streams list a whole day at once;
it is a benchmark, skipped unless run by ``scripts/bench_loop_stall.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from homeassistant.components.media_source import MediaSourceItem
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kinesis_video import answers, clip, media_source, recordings
from custom_components.kinesis_video.const import CONF_STREAMS, DOMAIN
from custom_components.kinesis_video.kvs import Fragment, FragmentList
from custom_components.kinesis_video.media_source import KinesisVideoMediaSource
from custom_components.kinesis_video.recordings import HOUR
from kvs_emulator.testing import EmulatorProcess

from ..loop_ticks import LoopTicks
from .conftest import entry_data, setup_entry

BENCH_ENV = "KVS_BENCH_LOOP_STALL"


@contextmanager
def _threads(*targets: tuple[Any, str]) -> Iterator[list[int]]:
    """Record the thread of every call to the given module functions."""
    seen: list[int] = []

    def recorder(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(threading.get_ident())
            return original(*args, **kwargs)

        return call

    with ExitStack() as stack:
        for module, name in targets:
            original = getattr(module, name)
            stack.enter_context(patch.object(module, name, recorder(original)))
        yield seen


def _hour_start(value: datetime) -> datetime:
    return dt_util.as_local(value).replace(minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("compact", [False, True], ids=["dicts", "fragment_rows"])
async def test_list_fragments_answer_made_in_slices(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    *,
    compact: bool,
) -> None:
    """A long answer is made in short slices, and the loop runs between them.

    On the loop rather than in the executor: a job there would hold the GIL
    against the loop for as long. The slice is made small here so that ten
    minutes of fragments need several; for the compact rows (FragmentRows) the
    plain-list bound is lowered so that they hold them.
    """
    await setup_entry(hass, config_entry)
    monkeypatch.setattr(answers, "ROWS_PER_SLICE", 50)
    if compact:
        monkeypatch.setattr(answers, "PLAIN_ROWS_UP_TO", 10)
    slices: list[tuple[int, int]] = []  # (rows, loop ticks seen before the slice)
    maker = "rows_json" if compact else "fragment_rows"
    original = getattr(answers, maker)
    ticks = LoopTicks()

    def record(fragments: Any) -> Any:
        slices.append((len(fragments), ticks.count))
        return original(fragments)

    end = dt_util.utcnow()
    async with ticks:
        with patch.object(answers, maker, record):
            response = await hass.services.async_call(
                DOMAIN,
                "list_fragments",
                {
                    "entity_id": "camera.front_door",
                    "start": end - timedelta(minutes=10),
                },
                blocking=True,
                return_response=True,
            )
    assert response is not None
    answer: Any = response["camera.front_door"]
    assert type(answer["fragments"]) is (answers.FragmentRows if compact else list)
    assert answer["summary"]["count"] == len(answer["fragments"]) >= 290
    assert sum(rows for rows, _ in slices) == len(answer["fragments"])
    assert len(slices) >= 6
    assert all(rows <= 50 for rows, _ in slices)
    # Other tasks ran between every two slices.
    seen = [at for _, at in slices]
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_browser_merges_off_the_loop(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """The day's and the hour's fragments are merged into spans in the executor."""
    await setup_entry(hass, config_entry)
    loop_thread = threading.get_ident()
    hour = _hour_start(dt_util.utcnow() - timedelta(minutes=60))
    day = f"{config_entry.entry_id}/front-door/{hour.date().isoformat()}"
    source = KinesisVideoMediaSource(hass, await media_source.async_get_archive(hass))
    # No day budget: every hour is listed (and merged) before the day answers,
    # however slow the machine; the budget is tested in test_media_thumbnails.
    with (
        patch.object(media_source, "DAY_BUDGET_S", None),
        _threads((recordings, "merge_spans")) as seen,
    ):
        # The hour first: the day reuses its spans, and merges the other hours.
        spans = await source.async_browse_media(
            MediaSourceItem(hass, DOMAIN, f"{day}/{hour.strftime('%H%z')}", None)
        )
        assert spans.children
        merged = len(seen)
        assert merged >= 1
        listed = await source.async_browse_media(
            MediaSourceItem(hass, DOMAIN, day, None)
        )
        assert listed.children
    assert len(seen) > merged
    assert loop_thread not in seen


# -- benchmark ----------------------------------------------------------------

STREAMS = ("s1", "s2", "s3", "s4")


class _LagProbe:
    """Sleeps 5 ms again and again; how late each wake-up was is a loop stall."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append(time.perf_counter() - began - 0.005)

    async def measure(self, work: Awaitable[Any]) -> dict[str, float]:
        self.lags = []
        self._task = asyncio.create_task(self._run())
        began = time.perf_counter()
        try:
            await work
        finally:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        lags = sorted(self.lags)
        return {
            "wall_s": time.perf_counter() - began,
            "max_ms": 1000 * lags[-1],
            "p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
            "over_50ms": sum(lag > 0.05 for lag in lags),
        }


def _print(label: str, runs: list[dict[str, float]]) -> None:
    worst = max(r["max_ms"] for r in runs)
    each = ", ".join(f"{r['max_ms']:.0f}" for r in runs)
    print(
        f"{label}: max stall {worst:.0f} ms (runs: {each} ms;"
        f" median p99 {statistics.median(r['p99_ms'] for r in runs):.1f} ms;"
        f" stalls > 50 ms per run {[int(r['over_50ms']) for r in runs]};"
        f" wall {statistics.median(r['wall_s'] for r in runs):.1f} s)"
    )


def _time_steps() -> None:
    """CPU of the steps moved off the loop, for one stream's day."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    day = [
        Fragment(
            number=str(91343852333181432392682062600000000000000 + i),
            producer_timestamp=t0 + timedelta(seconds=2 * i, milliseconds=3),
            server_timestamp=t0 + timedelta(seconds=2 * i),
            duration_ms=2000,
            size=40_000,
        )
        for i in range(43_200)
    ]
    listed = FragmentList.of(day, timestamp_type="SERVER_TIMESTAMP")
    hours = [
        (t0 + h * HOUR, t0 + (h + 1) * HOUR, day[h * 1800 : (h + 1) * 1800])
        for h in range(24)
    ]
    steps: dict[str, Callable[[], object]] = {
        "summarize": lambda: clip.summarize(day, "SERVER_TIMESTAMP"),
        "1000 answer dicts": lambda: answers.fragment_rows(listed[:1000]),
        "43,200 answer dicts": lambda: answers.fragment_rows(listed),
        "43,200 answer rows as JSON": lambda: answers.rows_json(listed),
        "merge a day's spans": lambda: [
            recordings.merge_spans(f, "SERVER_TIMESTAMP") for _, _, f in hours
        ],
    }
    for name, step in steps.items():
        began = time.perf_counter()
        step()
        print(f"  {name}: {1000 * (time.perf_counter() - began):.0f} ms")


@pytest.mark.skipif(
    not os.environ.get(BENCH_ENV), reason="benchmark: scripts/bench_loop_stall.py"
)
async def test_bench_loop_stall(hass: HomeAssistant, socket_enabled: None) -> None:
    """Max loop stall: a day (43,200 fragments) on four streams at once."""
    runs = int(os.environ.get(BENCH_ENV, "1"))
    hass.loop.set_debug(False)  # as in production: debug mode slows every step
    _time_steps()
    emulator = EmulatorProcess(
        "--streams",
        ",".join(STREAMS),
        "--history",
        "49h",
        "--retention-hours",
        "72",
        "--no-tps-limits",
    )
    await hass.async_add_executor_job(emulator.start, 300)
    try:
        control = await hass.async_add_executor_job(
            partial(boto3.client, "kinesisvideo", **emulator.boto3_kwargs())
        )
        listed = await hass.async_add_executor_job(control.list_streams)
        arns = {s["StreamName"]: s["StreamARN"] for s in listed["StreamInfoList"]}
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="bench",
            unique_id="bench",
            data=entry_data(emulator),
            options={CONF_STREAMS: [arns[name] for name in STREAMS]},
        )
        await setup_entry(hass, entry)
        probe = _LagProbe()
        end = _hour_start(dt_util.utcnow()).astimezone(UTC)
        start = end - timedelta(hours=24)

        async def list_day(limit: int) -> None:
            answers: list[Any] = await asyncio.gather(
                *(
                    hass.services.async_call(
                        DOMAIN,
                        "list_fragments",
                        {
                            "entity_id": f"camera.{name}",
                            "start": start,
                            "end": end,
                            "limit": limit,
                        },
                        blocking=True,
                        return_response=True,
                    )
                    for name in STREAMS
                )
            )
            counts = [
                a[f"camera.{n}"]["summary"]["count"]
                for a, n in zip(answers, STREAMS, strict=True)
            ]
            assert min(counts) >= 43_200

        yesterday = (dt_util.now() - timedelta(days=1)).date().isoformat()

        async def browse_day() -> None:
            source = KinesisVideoMediaSource(hass)  # a fresh, empty cache
            days = await asyncio.gather(
                *(
                    source.async_browse_media(
                        MediaSourceItem(
                            hass, DOMAIN, f"{entry.entry_id}/{n}/{yesterday}", None
                        )
                    )
                    for n in STREAMS
                )
            )
            assert all(len(d.children or []) >= 23 for d in days)

        def boto3_client(arn: str) -> Any:
            endpoint = control.get_data_endpoint(
                StreamARN=arn, APIName="LIST_FRAGMENTS"
            )["DataEndpoint"]
            return boto3.client(
                "kinesis-video-archived-media",
                **{**emulator.boto3_kwargs(), "endpoint_url": endpoint},
            )

        plain = {
            name: await hass.async_add_executor_job(boto3_client, arns[name])
            for name in STREAMS
        }

        def boto3_day(name: str) -> int:
            """Plain boto3 paging the same day, sorted: no Home Assistant work."""
            fragments: list[dict[str, Any]] = []
            params: dict[str, Any] = {
                "StreamARN": arns[name],
                "MaxResults": 1000,
                "FragmentSelector": {
                    "FragmentSelectorType": "SERVER_TIMESTAMP",
                    "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
                },
            }
            while True:
                page = plain[name].list_fragments(**params)
                fragments.extend(page["Fragments"])
                if not page.get("NextToken"):
                    break
                params["NextToken"] = page["NextToken"]
            fragments.sort(key=lambda f: f["ServerTimestamp"])
            return len(fragments)

        async def baseline() -> None:
            counts = await asyncio.gather(
                *(hass.async_add_executor_job(boto3_day, n) for n in STREAMS)
            )
            assert min(counts) >= 43_200

        scenarios: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            # The floor: the same listing by plain boto3 in four executor
            # threads stalls the loop too (the GIL, and the emulator's CPU).
            ("baseline: plain boto3 in 4 executor threads", baseline),
            ("list_fragments, 4 streams x 24 h, limit 1000", lambda: list_day(1000)),
            (
                "list_fragments, 4 streams x 24 h, limit 100000",
                lambda: list_day(100_000),
            ),
            ("media browser day, 4 streams", browse_day),
        ]
        for label, work in scenarios:
            results = [await probe.measure(work()) for _ in range(runs)]
            _print(label, results)
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await hass.async_add_executor_job(emulator.stop)
