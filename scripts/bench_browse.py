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
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from custom_components.kinesis_video.api import AwsCredentials, KinesisVideoClient
from custom_components.kinesis_video.recordings import RecordingIndex, merge_spans
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
    hours = await index.fragments_by_hour(arn, start, end, "SERVER_TIMESTAMP")
    total = 0
    for _, _, fragments in hours:
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
        client = await KinesisVideoClient.create(
            AwsCredentials(
                access_key_id=emulator.access_key,
                secret_access_key=emulator.secret_key,
                region=emulator.region,
                endpoint_url=emulator.url,
            )
        )
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=250)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.latency_ms))
