"""Shared helpers for the emulator's contract tests."""

from __future__ import annotations

import io
import itertools
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import av
import pytest
from botocore.exceptions import ClientError

from kvs_emulator.framecode import read_frame_index
from kvs_emulator.testing import EmulatorProcess

FPS = 10
FRAGMENT_S = 2
FRAMES_PER_FRAGMENT = FPS * FRAGMENT_S
CYCLE = 600  # frames per cycle: 10 fps * 2 s * 30 pool entries = 60 s


def freeze_clock(emulator: EmulatorProcess, at: float | None = None) -> int:
    """Freeze the emulator clock on a whole minute (or ``at``); return epoch s.

    A minute boundary a little before real time lies well inside the 2 h of
    history the session emulator has, and makes every time in the test exact.
    """
    if at is None:
        at = int(emulator.admin("GET", "state")["now"]) // 60 * 60
    emulator.admin("POST", "clock", {"set": at, "freeze": True})
    return int(at)


def advance_clock(emulator: EmulatorProcess, seconds: float) -> float:
    """Move the (frozen) emulator clock forward; return the new time."""
    now: float = emulator.admin("POST", "clock", {"advance": seconds})["now"]
    return now


def tps_limits(emulator: EmulatorProcess, *, enabled: bool) -> None:
    """Switch the per-stream rate limits on or off."""
    answer = emulator.admin("POST", "config", {"tps_limits": enabled})
    assert answer["tps_limits"] is enabled


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """Run a boto3 call that must fail: (error code, HTTP status, message)."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def time_range(
    start: float, end: float, kind: str = "SERVER_TIMESTAMP"
) -> dict[str, Any]:
    """A FragmentSelector / ClipFragmentSelector / HLS selector body."""
    return {
        "FragmentSelectorType": kind,
        "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
    }


def list_all_fragments(
    archived: Any, stream: str, selector: dict[str, Any] | None, page_size: int
) -> list[list[dict[str, Any]]]:
    """Every page of ListFragments, in the order the pages came."""
    pages: list[list[dict[str, Any]]] = []
    kwargs: dict[str, Any] = {"StreamName": stream, "MaxResults": page_size}
    if selector is not None:
        kwargs["FragmentSelector"] = selector
    while True:
        response = archived.list_fragments(**kwargs)
        pages.append(response["Fragments"])
        if "NextToken" not in response:
            return pages
        kwargs["NextToken"] = response["NextToken"]


def epoch(value: datetime) -> float:
    """A botocore timestamp as epoch seconds."""
    return value.timestamp()


def expected_index(epoch_ms: int) -> int:
    """The frame counter the synthetic camera draws at wall time ``epoch_ms``."""
    return (epoch_ms * FPS // 1000) % CYCLE


def assert_continuous(indices: Iterable[int | None]) -> list[int]:
    """Frame counters that all read and follow each other modulo the cycle."""
    read = list(indices)
    assert read, "no frames"
    assert None not in read, f"unreadable frame counter in {read}"
    values = [int(value) for value in read if value is not None]
    for previous, current in itertools.pairwise(values):
        assert current == (previous + 1) % CYCLE, (previous, current)
    return values


def decode_frames(
    data: bytes | str, fmt: str | None = None, limit: int | None = None
) -> tuple[list[int | None], list[float]]:
    """Decode video from bytes or a URL: frame counters and frame times (s)."""
    source: Any = data if isinstance(data, str) else io.BytesIO(data)
    indices: list[int | None] = []
    times: list[float] = []
    with av.open(source, "r", format=fmt) as container:
        for frame in container.decode(video=0):
            indices.append(read_frame_index(frame.to_ndarray(format="rgb24")))
            times.append(float(frame.time) if frame.time is not None else -1.0)
            if limit is not None and len(indices) >= limit:
                break
    return indices, times


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET a playback URL (no signature): status, headers, body."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()
