"""Time listing a day of recordings: the media browser's code path vs plain boto3.

    .venv/bin/python scripts/bench_browse.py [--runs 3] [--latency-ms 250]

A day of 2-second fragments (43,200) on an emulator started with
``--streams day --history 25h --retention-hours 48``, with the emulator's per-stream
rate limits ON (ListFragments: 5 TPS), as AWS enforces them.

- browser: ``RecordingIndex.fragments_by_hour`` (what the media browser's day view
  runs): the day split into hours listed three at a time, every ListFragments call
  paced under 5 TPS by the API layer, then merged into spans. A fresh index per run
  (no cache).
- boto3: one ``list_fragments`` listing of the whole day with NextToken and
  MaxResults 1000, one page after another, then sorted. botocore does not retry
  ClientLimitExceededException, so the loop waits 200 ms and asks again when
  throttled (otherwise it could not finish at all).

Both runs alternate in the same process against the same emulator, with a pause
between them so the emulator's token bucket is full at each start. The second
scenario adds a fixed latency to every ListFragments call (a fault rule), closer to
a real round trip to AWS than loopback.

    .venv/bin/python scripts/bench_browse.py --opens [--latency-ms 0]

Opening a day as the media browser does (``RecordingIndex.hours`` with the day
view's time budget, past hours kept in an ``ArchiveStore``): the first open, a later
open, and an open after a restart (a new client and index, the store reloaded from
its JSON), on a 2-hour stream (the demo's) and a stream recording all day (49 h of
history: today and yesterday, UTC). For the first open it also prints when the
listings it left under way were done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from custom_components.kinesis_video.kvs import AwsCredentials, KinesisVideoClient
from custom_components.kinesis_video.media_source import DAY_BUDGET_S
from custom_components.kinesis_video.recordings import (
    ArchiveStore,
    RecordingIndex,
    gather_or_cancel,
    merge_spans,
    split_hours,
)
from kvs_emulator.testing import EmulatorProcess

PAUSE_S = 1.5  # lets the emulator's 5-token bucket refill between runs


def plain_boto3(client: Any, arn: str, start: datetime, end: datetime) -> int:
    """List [start, end) page by page; returns the number of fragments."""
    fragments: list[dict[str, Any]] = []
    token: str | None = None
    throttled = 0
    while True:
        params: dict[str, Any] = {
            "StreamARN": arn,
            "MaxResults": 1000,
            "FragmentSelector": {
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {
                    "StartTimestamp": start,
                    "EndTimestamp": end - timedelta(milliseconds=1),
                },
            },
        }
        if token:
            params["NextToken"] = token
        try:
            page = client.list_fragments(**params)
        except client.exceptions.ClientLimitExceededException:
            throttled += 1
            time.sleep(0.2)
            continue
        fragments.extend(page["Fragments"])
        token = page.get("NextToken")
        if not token:
            break
    fragments.sort(key=lambda f: f["ServerTimestamp"])
    return len(fragments)


async def browser(
    client: KinesisVideoClient, arn: str, start: datetime, end: datetime
) -> int:
    """The media browser's day listing; returns the number of fragments."""
    index = RecordingIndex(client)
    hours = await gather_or_cancel(
        *(
            index.fragments(arn, a, b, "SERVER_TIMESTAMP")
            for a, b in split_hours(start, end)
        )
    )
    total = 0
    for fragments in hours:
        merge_spans(fragments, "SERVER_TIMESTAMP")
        total += len(fragments)
    return total


def throttled_calls(emulator: EmulatorProcess) -> int:
    log = emulator.calls()
    return sum(
        1
        for call in log["calls"]
        if call["operation"] == "ListFragments" and call["error"]
    )


async def scenario(
    emulator: EmulatorProcess,
    *,
    client: KinesisVideoClient,
    plain: Any,
    arn: str,
    day: tuple[datetime, datetime],
    runs: int,
    label: str,
) -> None:
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {"boto3": [], "browser": []}
    counts: dict[str, set[int]] = {"boto3": set(), "browser": set()}
    calls: dict[str, list[int]] = {"boto3": [], "browser": []}
    for _ in range(runs):
        for name in ("boto3", "browser"):
            await asyncio.sleep(PAUSE_S)
            emulator.admin("DELETE", "calls")
            began = time.perf_counter()
            if name == "boto3":
                count = await loop.run_in_executor(None, plain_boto3, plain, arn, *day)
            else:
                count = await browser(client, arn, *day)
            times[name].append(time.perf_counter() - began)
            counts[name].add(count)
            log = emulator.calls()
            calls[name].append(log["counts"].get("ListFragments", 0))
            calls[name].append(-throttled_calls(emulator))
    print(f"\n{label}")
    for name in ("boto3", "browser"):
        made = calls[name][0::2]
        refused = [-v for v in calls[name][1::2]]
        print(
            f"  {name:8s} median {statistics.median(times[name]):6.2f} s"
            f"  (runs: {', '.join(f'{t:.2f}' for t in times[name])})"
            f"  fragments {sorted(counts[name])}"
            f"  ListFragments calls {made} throttled {refused}"
        )
    ratio = statistics.median(times["boto3"]) / statistics.median(times["browser"])
    print(f"  speed-up browser vs boto3: {ratio:.2f}x")


async def main(runs: int, latency_ms: int) -> None:
    with EmulatorProcess(
        "--streams", "day", "--history", "25h", "--retention-hours", "48"
    ) as emulator:
        kwargs = emulator.boto3_kwargs()
        control = boto3.client("kinesisvideo", **kwargs)
        arn = control.describe_stream(StreamName="day")["StreamInfo"]["StreamARN"]
        endpoint = control.get_data_endpoint(StreamARN=arn, APIName="LIST_FRAGMENTS")
        plain = boto3.client(
            "kinesis-video-archived-media",
            **{**kwargs, "endpoint_url": endpoint["DataEndpoint"]},
        )
        client = await _client(emulator)
        # The 24 whole hours before the last full hour: 43,200 fragments of 2 s.
        clock = emulator.admin("POST", "clock", {})
        now = datetime.fromtimestamp(clock["now"], UTC)
        end = now.replace(minute=0, second=0, microsecond=0)
        day = (end - timedelta(hours=24), end)
        print(f"day: {day[0].isoformat()} .. {day[1].isoformat()}, TPS limits on")
        try:
            await scenario(
                emulator,
                client=client,
                plain=plain,
                arn=arn,
                day=day,
                runs=runs,
                label="loopback (no added latency)",
            )
            emulator.admin(
                "POST",
                "faults",
                {
                    "operation": "ListFragments",
                    "count": -1,
                    "latency_s": latency_ms / 1000,
                },
            )
            await scenario(
                emulator,
                client=client,
                plain=plain,
                arn=arn,
                day=day,
                runs=runs,
                label=f"{latency_ms} ms added to every ListFragments call",
            )
        finally:
            await client.close()


# One HTTP session for the script's clients, as Home Assistant shares its own.
_HTTP: dict[str, aiohttp.ClientSession] = {}


async def _client(emulator: EmulatorProcess) -> KinesisVideoClient:
    if "session" not in _HTTP:
        _HTTP["session"] = aiohttp.ClientSession()
    return KinesisVideoClient(
        _HTTP["session"],
        AwsCredentials(
            access_key_id=emulator.access_key,
            secret_access_key=emulator.secret_key,
            region=emulator.region,
            endpoint_url=emulator.url,
        ),
    )


async def open_day(
    emulator: EmulatorProcess,
    index: RecordingIndex,
    arn: str,
    day: tuple[datetime, datetime],
    now: datetime,
) -> tuple[float, int, int, int]:
    """(seconds, recorded hours listed, hour tiles not listed yet, ListFragments).

    The day view shows both (an hour not listed yet lists itself when opened);
    hours known to hold nothing are left out.
    """
    emulator.admin("DELETE", "calls")
    hours = [
        (a, b, b <= now - timedelta(minutes=5))  # the media source's "final"
        for a, b in split_hours(day[0], min(day[1], now + timedelta(hours=1)))
        if a < now
    ]
    began = time.perf_counter()
    listed = await index.hours(arn, hours, "SERVER_TIMESTAMP", budget=DAY_BUDGET_S)
    took = time.perf_counter() - began
    shown = sum(bool(spans) for spans in listed)
    pending = sum(spans is None for spans in listed)
    return took, shown, pending, emulator.calls()["counts"].get("ListFragments", 0)


async def opens(latency_ms: int) -> None:
    """First open, later open, open after a restart, per stream and day."""
    with EmulatorProcess(
        "--streams", "day", "--history", "49h", "--retention-hours", "72"
    ) as emulator:
        emulator.admin("POST", "streams", {"name": "demo", "history": 7200})
        if latency_ms:
            emulator.admin(
                "POST",
                "faults",
                {
                    "operation": "ListFragments",
                    "count": -1,
                    "latency_s": latency_ms / 1000,
                },
            )
        control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        arns = {
            s["StreamName"]: s["StreamARN"]
            for s in control.list_streams()["StreamInfoList"]
        }
        now = datetime.fromtimestamp(emulator.admin("POST", "clock", {})["now"], UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        cases = [
            ("demo (2 h), today", "demo", (today, today + timedelta(days=1))),
            ("24 h stream, today", "day", (today, today + timedelta(days=1))),
            ("24 h stream, yesterday", "day", (today - timedelta(days=1), today)),
        ]
        print(
            f"now {now.isoformat()}, TPS limits on, day budget {DAY_BUDGET_S} s,"
            f" {latency_ms} ms added per ListFragments"
        )
        saved: dict[str, Any] = {}
        for label, name, day in cases:
            await asyncio.sleep(PAUSE_S)
            client = await _client(emulator)
            store = ArchiveStore()
            index = RecordingIndex(client, store=store)
            first = await open_day(emulator, index, arns[name], day, now)
            began = time.perf_counter()
            await asyncio.gather(*index._inflight.values(), *index._background)
            rest = time.perf_counter() - began + first[0]
            later = await open_day(emulator, index, arns[name], day, now)
            saved = json.loads(json.dumps(store.dump()))  # what .storage keeps
            await client.close()
            client = await _client(emulator)
            reloaded = ArchiveStore()
            reloaded.load(saved)
            index = RecordingIndex(client, store=reloaded)
            restart = await open_day(emulator, index, arns[name], day, now)
            await asyncio.gather(*index._inflight.values(), *index._background)
            await client.close()
            print(f"\n{label}")
            for what, (took, shown, pending, made) in (
                ("first open", first),
                ("later open", later),
                ("after restart", restart),
            ):
                print(
                    f"  {what:14s} {1000 * took:7.1f} ms  recorded hours listed"
                    f" {shown:2d}, hours not listed yet (tiles) {pending:2d},"
                    f" ListFragments {made}"
                )
            print(f"  (first open: every hour listed after {rest:.2f} s)")
        print(f"\nstore: {len(json.dumps(saved))} bytes of JSON for the last case")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=250)
    parser.add_argument("--opens", action="store_true", help="day opens, kept")
    args = parser.parse_args()

    async def run() -> None:
        try:
            if args.opens:
                await opens(args.latency_ms)
            else:
                await main(args.runs, args.latency_ms)
        finally:
            if (session := _HTTP.pop("session", None)) is not None:
                await session.close()

    asyncio.run(run())
