"""Benchmark: the async client (kvs/) vs plain boto3, same emulator, same run.

1. ``list``: 4 streams x 24 h of ListFragments (limit 100000). The new client
   lists the 4 at once on one loop; boto3 pages the same days in 4 threads.
   The emulator's TPS limits stay on; both are paced the same way (4.5 starts a
   second per stream, burst 4, start to start).
2. ``clip``: GetClip of 30 min (parts of <= 200 fragments). The new client
   streams each part into a file (1 MiB writes in the executor); boto3 copies
   ``Payload`` with ``shutil.copyfileobj``. Both start calls 1.1 s apart.

    python scripts/bench_client.py [--repeat 3] [--clip-minutes 30]
        [--padding-bytes 150000]

Medians of ``--repeat`` runs (order alternating) are printed with the ratio,
and the CPU seconds of this process and of the emulator: on a shared machine the
emulator (one process, shuffling a whole day per page) is what bounds the
listing's wall time, so the clients' own CPU is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import boto3  # noqa: E402

from custom_components.kinesis_video.kvs import (  # noqa: E402
    GET_CLIP_INTERVAL_S,
    LIST_FRAGMENTS_BURST,
    LIST_FRAGMENTS_TPS,
    AwsCredentials,
    KinesisVideoClient,
)
from kvs_emulator.testing import EmulatorProcess  # noqa: E402

STREAMS = ("cam1", "cam2", "cam3", "cam4")
CLIP_PART_S = 400  # 200 fragments of 2 s


class SyncBucket:
    """The client's token bucket, for threads (the same pacing for boto3)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens = rate, burst, burst
        self.last: float | None = None
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            if self.last is not None:
                self.tokens = min(
                    self.burst, self.tokens + (now - self.last) * self.rate
                )
            self.last = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait:
            time.sleep(wait)


def day_range() -> tuple[datetime, datetime]:
    end = datetime.now(UTC) - timedelta(minutes=1)
    return end - timedelta(hours=24) + timedelta(seconds=1), end


def media_client(emulator: EmulatorProcess, arn: str, api: str) -> Any:
    control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    endpoint = control.get_data_endpoint(StreamARN=arn, APIName=api)["DataEndpoint"]
    return boto3.client(
        "kinesis-video-archived-media",
        **{**emulator.boto3_kwargs(), "endpoint_url": endpoint},
    )


def boto3_list(emulator: EmulatorProcess, arns: list[str]) -> int:
    start, end = day_range()

    def one(arn: str) -> int:
        client = media_client(emulator, arn, "LIST_FRAGMENTS")
        bucket = SyncBucket(LIST_FRAGMENTS_TPS, LIST_FRAGMENTS_BURST)
        found: dict[str, Any] = {}
        token = None
        while True:
            params: dict[str, Any] = {
                "StreamARN": arn,
                "MaxResults": 1000,
                "FragmentSelector": {
                    "FragmentSelectorType": "SERVER_TIMESTAMP",
                    "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
                },
            }
            if token:
                params["NextToken"] = token
            bucket.take()
            page = client.list_fragments(**params)
            found.update((f["FragmentNumber"], f) for f in page["Fragments"])
            if not (token := page.get("NextToken")):
                break
        fragments = sorted(found.values(), key=lambda f: f["ServerTimestamp"])
        return len(fragments[:100_000])

    with ThreadPoolExecutor(len(arns)) as pool:
        return sum(pool.map(one, arns))


async def client_list(emulator: EmulatorProcess, arns: list[str]) -> int:
    start, end = day_range()
    async with aiohttp.ClientSession() as session:
        kvs = KinesisVideoClient(session, credentials(emulator))
        results = await asyncio.gather(
            *(kvs.list_fragments(arn, start, end, limit=100_000) for arn in arns)
        )
    return sum(len(fragments) for fragments, _ in results)


def credentials(emulator: EmulatorProcess) -> AwsCredentials:
    return AwsCredentials(
        emulator.access_key, emulator.secret_key, emulator.region, emulator.url
    )


def clip_parts(minutes: int) -> list[tuple[datetime, datetime]]:
    end = datetime.now(UTC) - timedelta(minutes=10)
    start = end - timedelta(minutes=minutes)
    parts = []
    while start < end:
        # GetClip's range end is inclusive: stop just short of the next part.
        stop = min(end, start + timedelta(seconds=CLIP_PART_S))
        parts.append((start, stop - timedelta(milliseconds=1)))
        start = stop
    return parts


def boto3_clip(emulator: EmulatorProcess, arn: str, minutes: int, out: Path) -> int:
    client = media_client(emulator, arn, "GET_CLIP")
    last = 0.0
    total = 0
    for index, (start, end) in enumerate(clip_parts(minutes)):
        time.sleep(max(0.0, last + GET_CLIP_INTERVAL_S - time.monotonic()))
        last = time.monotonic()
        answer = client.get_clip(
            StreamARN=arn,
            ClipFragmentSelector={
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
            },
        )
        with (out / f"b{index}.mp4").open("wb") as file:
            shutil.copyfileobj(answer["Payload"], file, 1024 * 1024)
            total += file.tell()
    return total


async def client_clip(
    emulator: EmulatorProcess, arn: str, minutes: int, out: Path
) -> int:
    async with aiohttp.ClientSession() as session:
        kvs = KinesisVideoClient(session, credentials(emulator))
        total = 0
        for index, (start, end) in enumerate(clip_parts(minutes)):
            total += await kvs.get_clip_to_file(arn, start, end, out / f"c{index}.mp4")
    return total


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process or of ``pid``."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    func: Callable[[], Any], emulator_pid: int
) -> tuple[float, float, float, Any]:
    """Wall time, our CPU, the emulator's CPU, and the result."""
    began, cpu, served = time.perf_counter(), process_cpu(), process_cpu(emulator_pid)
    result = func()
    return (
        time.perf_counter() - began,
        process_cpu() - cpu,
        process_cpu(emulator_pid) - served,
        result,
    )


def compare(
    name: str,
    variants: dict[str, Callable[[], Any]],
    repeat: int,
    emulator_pid: int,
) -> None:
    """Run both variants ``repeat`` times (order alternating); print medians."""
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
    results: dict[str, Any] = {}
    for run in range(repeat):
        order = list(variants.items())
        if run % 2:
            order.reverse()
        for label, func in order:
            *figures, results[label] = timed(func, emulator_pid)
            runs[label].append((figures[0], figures[1], figures[2]))
            time.sleep(1.5)  # let the emulator's buckets refill between runs
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    print(
        f"{name}: ratio client/boto3 {wall['client'] / wall['boto3']:.3f}", flush=True
    )
    for label, figures in runs.items():
        print(
            f"  {label}: wall {wall[label]:.2f} s (runs"
            f" {', '.join(f'{r[0]:.2f}' for r in figures)}), own CPU"
            f" {statistics.median(r[1] for r in figures):.2f} s, emulator CPU"
            f" {statistics.median(r[2] for r in figures):.2f} s,"
            f" result {results[label]}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clip-minutes", type=int, default=30)
    parser.add_argument("--padding-bytes", type=int, default=150_000)
    parser.add_argument("--only", choices=("list", "clip"), default=None)
    args = parser.parse_args()
    with EmulatorProcess(
        "--streams",
        ",".join(STREAMS),
        "--history",
        "25h",
        "--padding-bytes",
        str(args.padding_bytes),
    ) as emulator:
        control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        arns = [s["StreamARN"] for s in control.list_streams()["StreamInfoList"]]
        if args.only in (None, "list"):
            compare(
                "list 4 x 24 h",
                {
                    "client": lambda: asyncio.run(client_list(emulator, arns)),
                    "boto3": lambda: boto3_list(emulator, arns),
                },
                args.repeat,
                emulator.pid,
            )
        if args.only in (None, "clip"):
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder)
                compare(
                    f"GetClip {args.clip_minutes} min",
                    {
                        "client": lambda: asyncio.run(
                            client_clip(emulator, arns[0], args.clip_minutes, out)
                        ),
                        "boto3": lambda: boto3_clip(
                            emulator, arns[0], args.clip_minutes, out
                        ),
                    },
                    args.repeat,
                    emulator.pid,
                )


if __name__ == "__main__":
    main()
