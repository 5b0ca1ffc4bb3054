"""Measure the emulator: GetClip streaming throughput and idle CPU.

    .venv/bin/python scripts/bench_emulator.py [--idle-seconds 30] [--clips 5]

Throughput: a clip of 200 fragments padded to ~500 KB each (~100 MB) streamed
through plain boto3 on loopback, read in 1 MiB chunks and discarded. Idle CPU: the
default two demo streams (history + live video), nobody calling, CPU time of the
emulator process over the window divided by wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kvs_emulator.testing import EmulatorProcess


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_clips(clips: int) -> None:
    """Stream ``clips`` ~100 MB clips and report MB/s."""
    with EmulatorProcess(
        "--streams",
        "big",
        "--history",
        "30m",
        "--padding-bytes",
        "500000",
        "--no-tps-limits",
    ) as emulator:
        client = boto3.client("kinesis-video-archived-media", **emulator.boto3_kwargs())
        end = datetime.now(UTC) - timedelta(minutes=1)
        start = end - timedelta(minutes=10)
        rates = []
        for _ in range(clips):
            began = time.perf_counter()
            answer = client.get_clip(
                StreamName="big",
                ClipFragmentSelector={
                    "FragmentSelectorType": "SERVER_TIMESTAMP",
                    "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
                },
            )
            size = sum(len(c) for c in answer["Payload"].iter_chunks(1 << 20))
            elapsed = time.perf_counter() - began
            rates.append(size / elapsed / 1e6)
            print(
                f"clip: {size / 1e6:.1f} MB in {elapsed:.2f} s = {rates[-1]:.0f} MB/s"
            )
        rates.sort()
        print(
            f"GetClip throughput, median of {clips}: {rates[len(rates) // 2]:.0f} MB/s"
        )


def bench_idle(seconds: float) -> None:
    """CPU share of an idle emulator serving two live demo streams."""
    with EmulatorProcess(
        "--streams", "front-door,backyard", "--history", "2h"
    ) as emulator:
        time.sleep(2)  # let start-up work settle
        before, began = cpu_seconds(emulator.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = cpu_seconds(emulator.pid) - before, time.monotonic() - began
        print(
            f"idle CPU with two live streams: {100 * used / wall:.2f} % of one core"
            f" ({used:.2f} s CPU over {wall:.0f} s)"
        )


def main() -> None:
    """Parse options and run both measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    bench_clips(args.clips)
    bench_idle(args.idle_seconds)


if __name__ == "__main__":
    main()
