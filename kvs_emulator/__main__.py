"""Command line: ``python -m kvs_emulator [--port 4567] [--streams a,b] ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence

from .media import MediaConfig
from .server import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Emulator,
    EmulatorConfig,
    StreamSpec,
    start_server,
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_ms(text: str) -> int:
    """Parse ``90s``, ``30m``, ``2h``, ``1d`` or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 2h, 30m)")
    return round(float(match.group(1)) * _UNITS[match.group(2) or "s"] * 1000)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m kvs_emulator",
        description="A local Amazon Kinesis Video Streams (boto3 endpoint_url target).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=4567, help="0 picks a free port")
    parser.add_argument(
        "--streams",
        default="front-door,backyard",
        help="comma-separated stream names with history and live video",
    )
    parser.add_argument("--history", type=duration_ms, default="2h")
    parser.add_argument("--retention-hours", type=int, default=24)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT)
    parser.add_argument("--fragment-seconds", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument(
        "--padding-bytes",
        type=int,
        default=0,
        help="extra bytes per fragment (big payloads for benchmarks)",
    )
    parser.add_argument(
        "--no-tps-limits",
        action="store_true",
        help="do not enforce the per-stream request rates AWS enforces",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (test harnesses)",
    )
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    """Turn options into an EmulatorConfig."""
    names = [n.strip() for n in args.streams.split(",") if n.strip()]
    return EmulatorConfig(
        streams=[
            StreamSpec(
                name=name,
                history_ms=args.history,
                retention_hours=args.retention_hours,
            )
            for name in names
        ],
        credentials={args.access_key: args.secret_key},
        region=args.region,
        account_id=args.account_id,
        media=MediaConfig(
            width=args.width,
            height=args.height,
            fps=args.fps,
            fragment_ms=round(args.fragment_seconds * 1000),
            padding_bytes=args.padding_bytes,
        ),
        tps_limits=not args.no_tps_limits,
    )


async def serve(args: argparse.Namespace) -> None:
    """Build, bind, announce, and serve until SIGINT/SIGTERM."""
    config = config_from(args)
    emulator = await asyncio.get_running_loop().run_in_executor(None, Emulator, config)
    runner, url = await start_server(emulator, args.host, args.port)
    names = ",".join(spec.name for spec in config.streams) or "-"
    print(
        f"KVS emulator ready at {url} access_key={args.access_key}"
        f" secret_key={args.secret_key} region={args.region} streams={names}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.exit_with_parent:
        # A test run killed from outside (a CI timeout) cannot stop its emulator;
        # the emulator notices it was orphaned instead.
        parent = os.getppid()
        watch = asyncio.create_task(_stop_when_orphaned(parent, stop))
    try:
        await stop.wait()
    finally:
        if args.exit_with_parent:
            watch.cancel()
        await runner.cleanup()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once this process's parent is no longer ``parent``."""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event for this; poll
        await asyncio.sleep(1)
    stop.set()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
