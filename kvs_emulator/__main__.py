"""Command line: ``python -m kvs_emulator [--port 4567] [--streams a,b] ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Final

from .emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Emulator,
    EmulatorConfig,
    StreamSpec,
)
from .media import MediaConfig
from .server import start_server

_LOGGER = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Linux sends this when the parent exits (prctl PR_SET_PDEATHSIG). Not SIGTERM:
# it also comes when only the parent's *thread* that started us exits, which is
# no reason to stop, so its handler first checks that the parent is gone.
ORPHAN_SIGNAL: Final = signal.SIGUSR1
_PR_SET_PDEATHSIG: Final = 1
# The fallback where that signal does not exist (or is lost): poll the parent.
ORPHAN_POLL_S: Final = 1.0


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
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="with --exit-with-parent: the pid of the process starting this one"
        " (default: the parent seen once running; a harness should pass it, so"
        " that its death during the start-up is noticed too)",
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
    """Build, bind, announce, and serve until SIGINT/SIGTERM (or orphaned)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    watch: asyncio.Task[None] | None = None
    if args.exit_with_parent:
        # A test run killed from outside (a CI timeout) cannot stop its emulator;
        # the emulator notices it was orphaned instead. Watch from the start: the
        # parent may die while the media pool is being built.
        parent = args.parent_pid if args.parent_pid is not None else os.getppid()
        watch = asyncio.create_task(_stop_when_orphaned(parent, stop))
    try:
        config = config_from(args)
        emulator = await loop.run_in_executor(None, Emulator, config)
        if stop.is_set():
            return
        runner, url = await start_server(emulator, args.host, args.port)
        try:
            names = ",".join(spec.name for spec in config.streams) or "-"
            print(
                f"KVS emulator ready at {url} access_key={args.access_key}"
                f" secret_key={args.secret_key} region={args.region} streams={names}",
                flush=True,
            )
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        if watch is not None:
            watch.cancel()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent`` is no longer this process's parent.

    An orphan is adopted by init or a subreaper, so its parent pid changes; that
    holds even if the dead parent's pid has been reused since.
    """
    loop = asyncio.get_running_loop()

    def check() -> None:
        if os.getppid() != parent and not stop.is_set():
            _LOGGER.warning("Parent process %s is gone: stopping", parent)
            stop.set()

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(ORPHAN_SIGNAL, check)
    _ask_for_parent_death_signal()
    try:
        # The first check runs at once: the parent may have died before we asked.
        while not stop.is_set():
            check()
            await asyncio.sleep(ORPHAN_POLL_S)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(ORPHAN_SIGNAL)


def _ask_for_parent_death_signal() -> None:
    """Have Linux send ORPHAN_SIGNAL when the parent exits (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(
            _PR_SET_PDEATHSIG,
            ctypes.c_ulong(ORPHAN_SIGNAL),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
    except (OSError, AttributeError):
        _LOGGER.debug("No parent-death signal; polling the parent instead")


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
