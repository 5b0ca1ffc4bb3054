"""Benchmark: a >= 200 MB clip saved by the integration vs. plain boto3 get_clip.

Both run against the same emulator (500 kB padding per fragment, no TPS limits)
in the same run, each variant in a child process of its own so its peak RSS
(from ``os.wait4``) is its alone:

- ``integration``: KinesisVideoClient.list_fragments + clip.plan_clip_parts +
  get_clip_to_file per part (streamed in chunks) + clip.join_mp4 (PyAV remux);
- ``boto3-read``: boto3 ``get_clip`` per part, ``Payload.read()`` into a file
  (the usual snippet);
- ``boto3-stream``: the same, copied with ``shutil.copyfileobj`` (1 MiB chunks);
- ``boto3-paced``: ``boto3-stream`` with its calls started 1 s apart (start to
  start), as a careful script keeps to GetClip's 1 TPS per stream.

The boto3 variants use the same fragment-boundary parts (one ListFragments
listing), so every variant downloads the same bytes.

    python scripts/bench_clip.py [--minutes 15] [--repeat 3] [--variants a,b]
        [--latency S]

``--latency`` holds every GetClip answer S seconds (as a slow link would), so
the cost of pacing between calls shows.

Each variant runs ``--repeat`` times (rotating order); medians are reported.
"""

# Imports sit in the functions on purpose: each child imports only what its
# variant uses, so its peak RSS is its own.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STREAM = "big"
VARIANTS = (
    "baseline",
    "integration",
    "integration-unpaced",
    "boto3-read",
    "boto3-stream",
    "boto3-paced",
)
GET_CLIP_INTERVAL_S = 1.0  # boto3-paced: GetClip's 1 TPS per stream


def _kwargs(args: argparse.Namespace) -> dict[str, str]:
    return {
        "endpoint_url": args.url,
        "region_name": args.region,
        "aws_access_key_id": args.key,
        "aws_secret_access_key": args.secret,
    }


async def _integration(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import aiohttp

    from custom_components.kinesis_video.kvs import AwsCredentials, KinesisVideoClient

    # The client sends through the caller's session, as on Home Assistant's.
    async with aiohttp.ClientSession() as session:
        credentials = AwsCredentials(args.key, args.secret, args.region, args.url)
        return await _integration_on(
            KinesisVideoClient(session, credentials), args, out
        )


async def _integration_on(
    client: Any, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    from custom_components.kinesis_video.clip import plan_clip_parts
    from custom_components.kinesis_video.mp4join import join_mp4
    from custom_components.kinesis_video.safe_files import Folder

    arn = (await client.list_streams())[0].arn
    start = datetime.fromtimestamp(args.start, UTC)
    end = datetime.fromtimestamp(args.end, UTC)
    began = time.perf_counter()
    fragments, _ = await client.list_fragments(arn, start, end)
    parts = plan_clip_parts(fragments, "SERVER_TIMESTAMP")
    # Small blocking steps, timed with the rest (a script: no loop to protect).
    folder = Folder.open(out.parent, lambda _: True)
    pieces = [folder.new_part(f"{out.name}.{i}") for i in range(len(parts))]
    part = folder.new_part(out.name)
    downloaded = 0
    for piece, clip in zip(pieces, parts, strict=True):
        downloaded += await client.get_clip_to_file(
            arn, clip.start, clip.end, piece.path
        )
    download_s = time.perf_counter() - began
    loop = asyncio.get_running_loop()
    media_s = await loop.run_in_executor(
        None, join_mp4, [piece.path for piece in pieces], part.path
    )
    size = folder.publish(part, out.name, overwrite=True)
    folder.close()
    await client.close()
    return {
        "calls": len(parts),
        "fragments": len(fragments),
        "downloaded": downloaded,
        "output": size,
        "media_s": media_s,
        "download_s": download_s,
        "total_s": time.perf_counter() - began,
    }


def _boto3(
    args: argparse.Namespace, out: Path, *, stream: bool, paced: bool = False
) -> dict[str, Any]:
    import shutil

    import boto3

    from custom_components.kinesis_video.clip import plan_clip_parts
    from custom_components.kinesis_video.kvs import Fragment

    control = boto3.client("kinesisvideo", **_kwargs(args))
    began = time.perf_counter()
    endpoint = control.get_data_endpoint(StreamName=STREAM, APIName="GET_CLIP")[
        "DataEndpoint"
    ]
    media = boto3.client(
        "kinesis-video-archived-media", **{**_kwargs(args), "endpoint_url": endpoint}
    )
    selector = {
        "FragmentSelectorType": "SERVER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": args.start, "EndTimestamp": args.end},
    }
    listed: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = media.list_fragments(
            StreamName=STREAM, MaxResults=1000, FragmentSelector=selector, **token
        )
        listed += page["Fragments"]
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    fragments = sorted(
        (
            Fragment(
                f["FragmentNumber"],
                f["ProducerTimestamp"],
                f["ServerTimestamp"],
                f["FragmentLengthInMilliseconds"],
                f["FragmentSizeInBytes"],
            )
            for f in listed
        ),
        key=lambda f: f.server_timestamp,
    )
    downloaded = 0
    started = -GET_CLIP_INTERVAL_S
    for index, clip in enumerate(plan_clip_parts(fragments, "SERVER_TIMESTAMP")):
        if paced:
            time.sleep(max(0.0, started + GET_CLIP_INTERVAL_S - time.monotonic()))
            started = time.monotonic()
        response = media.get_clip(
            StreamName=STREAM,
            ClipFragmentSelector={
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {
                    "StartTimestamp": clip.start,
                    "EndTimestamp": clip.end,
                },
            },
        )
        with out.with_name(f"{out.name}.{index}").open("wb") as file:
            if stream:
                shutil.copyfileobj(response["Payload"], file, 1024 * 1024)
            else:
                file.write(response["Payload"].read())
            downloaded += file.tell()
    elapsed = time.perf_counter() - began
    return {
        "calls": index + 1,
        "fragments": len(fragments),
        "downloaded": downloaded,
        "download_s": elapsed,
        "total_s": elapsed,
    }


def child(args: argparse.Namespace) -> None:
    """Run one variant and print its figures as JSON."""
    out = Path(args.out)
    if args.variant.startswith("integration"):
        if args.variant == "integration-unpaced":
            # The same code path without the 1 TPS pacing of GetClip: the
            # emulator runs without rate limits, plain boto3 does not pace.
            from custom_components.kinesis_video.kvs import pacing

            pacing.PACING["GetClip"] = (1e9, 1e9)
        result = asyncio.run(_integration(args, out))
    elif args.variant == "baseline":
        import av  # noqa: F401
        import boto3  # noqa: F401

        import custom_components.kinesis_video.kvs  # noqa: F401

        result = {}
    else:
        result = _boto3(
            args,
            out,
            stream=args.variant in ("boto3-stream", "boto3-paced"),
            paced=args.variant == "boto3-paced",
        )
    print(json.dumps(result))


def _run_child(variant: str, common: list[str], out: Path) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, "--out", str(out), *common],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{variant} failed ({process.returncode})")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: kB
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--child")
    parser.add_argument("--out")
    for name in ("url", "region", "key", "secret"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--start", type=float)
    parser.add_argument("--end", type=float)
    args = parser.parse_args()
    if args.child:
        args.variant = args.child
        child(args)
        return

    from kvs_emulator.testing import EmulatorProcess

    with (
        EmulatorProcess(
            "--padding-bytes",
            "500000",
            "--streams",
            STREAM,
            "--history",
            f"{int(args.minutes) + 15}m",
            "--no-tps-limits",
        ) as emulator,
        tempfile.TemporaryDirectory() as tmp,
    ):
        now = emulator.admin("GET", "state")["now"]
        end = now - 60
        start = end - timedelta(minutes=args.minutes).total_seconds()
        common = [
            f"--url={emulator.url}",
            f"--region={emulator.region}",
            f"--key={emulator.access_key}",
            f"--secret={emulator.secret_key}",
            f"--start={start}",
            f"--end={end}",
        ]
        emulator.admin("POST", "clock", {"set": now, "freeze": True})
        if args.latency:
            emulator.admin(
                "POST",
                "faults",
                {"operation": "GetClip", "count": -1, "latency_s": args.latency},
            )
        variants = tuple(v for v in VARIANTS if v in args.variants.split(","))
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        # Rounds in rotating order, so warm-up and page-cache effects spread
        # over every variant; the median of each figure is reported.
        for round_ in range(args.repeat):
            turn = round_ % len(variants)
            order = variants[turn:] + variants[:turn]
            for variant in order:
                out = Path(tmp) / f"{variant}.mp4"
                runs[variant].append(_run_child(variant, common, out))
                for leftover in Path(tmp).iterdir():
                    leftover.unlink()
        results = {
            variant: {
                key: statistics.median(run[key] for run in variant_runs)
                for key in variant_runs[0]
            }
            for variant, variant_runs in runs.items()
        }
    print(json.dumps(results, indent=2))
    mb = 1024 * 1024
    for name in variants:
        if name == "baseline":
            continue
        r = results[name]
        print(
            f"{name:13s} {r['downloaded'] / mb:8.1f} MiB in {r['calls']} calls:"
            f" download {r['download_s']:6.2f} s"
            f" ({r['downloaded'] / mb / r['download_s']:6.1f} MiB/s),"
            f" total {r['total_s']:6.2f} s, peak RSS {r['peak_rss_mb']:6.1f} MiB"
        )
    if "baseline" in results:
        print(
            "baseline (imports only) peak RSS"
            f" {results['baseline']['peak_rss_mb']:.1f} MiB"
        )
    for mine in ("integration", "integration-unpaced"):
        for plain in ("boto3-read", "boto3-stream", "boto3-paced"):
            if mine not in results or plain not in results:
                continue
            a, b = results[mine], results[plain]
            print(
                f"throughput {mine}/{plain}:"
                f" download {b['download_s'] / a['download_s']:.2f},"
                f" end to end incl. join {b['total_s'] / a['total_s']:.2f};"
                f" peak RSS {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x"
            )
    if "integration" in results:
        out = results["integration"]
        print(
            f"joined MP4: {out['output'] / mb:.1f} MiB, {out['media_s']:.1f} s of"
            " video (the emulator's padding boxes are not media and are dropped by"
            " the remux)"
        )


if __name__ == "__main__":
    main()
