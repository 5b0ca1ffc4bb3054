"""The API layer's downloads to files, against the emulator (no Home Assistant)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_components.kinesis_video.api import (
    GET_CLIP_INTERVAL_S,
    AwsCredentials,
    InvalidArgumentError,
    KinesisVideoClient,
    RetryPolicy,
)
from kvs_emulator.testing import EmulatorProcess

FAST = RetryPolicy(retries=4, base_s=0.01, cap_s=0.05)


async def _admin(emulator: EmulatorProcess, path: str, body: dict[str, Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(
        None, emulator.admin, "POST", path, body
    )


@pytest.fixture
async def client(emulator: EmulatorProcess) -> AsyncIterator[KinesisVideoClient]:
    kvs = await KinesisVideoClient.create(
        AwsCredentials(
            emulator.access_key, emulator.secret_key, emulator.region, emulator.url
        ),
        retry=FAST,
    )
    yield kvs
    await kvs.close()


async def test_get_clip_to_file_paced_and_endpoint_moved(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Calls start >= 1.1 s apart; a moved endpoint (HTTP 200 + error type) is
    not written to the file, and the retry on a fresh endpoint is."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    start = end - timedelta(seconds=10)
    path = tmp_path / "a.mp4"
    began = time.monotonic()
    first = await client.get_clip_to_file(arn, start, end, path)
    assert first == path.stat().st_size > 0
    await _admin(emulator, "endpoints/rotate", {})
    second = await client.get_clip_to_file(arn, start, end, path)
    # Three starts: the first call, then the second's two attempts (a lower
    # bound the pacing guarantees, however slow the machine).
    assert time.monotonic() - began >= 2 * GET_CLIP_INTERVAL_S
    assert second == first == path.stat().st_size
    assert path.read_bytes()[4:8] == b"ftyp"


async def test_get_media_for_fragments_needs_numbers(
    client: KinesisVideoClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.get_media_for_fragments_to_file("arn", [], tmp_path / "x.mkv")


async def test_cancelled_download_leaves_no_file(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Cancelled while the executor thread waits for AWS: the thread writes nothing.

    (An automation in restart mode, or shutdown, cancels the action; the thread
    itself cannot be cancelled and would otherwise write the file afterwards.)
    """
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=2)

    def run_in_pool(func: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return loop.run_in_executor(pool, func, *args)

    kvs = await KinesisVideoClient.create(
        AwsCredentials(
            emulator.access_key, emulator.secret_key, emulator.region, emulator.url
        ),
        run_in_executor=run_in_pool,
        retry=FAST,
    )
    arn = {s.name: s.arn for s in await kvs.list_streams()}["front-door"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    await _admin(
        emulator, "faults", {"operation": "GetClip", "count": 1, "latency_s": 1.0}
    )
    path = tmp_path / "clip.mp4.part"
    task = asyncio.create_task(
        kvs.get_clip_to_file(arn, end - timedelta(seconds=10), end, path)
    )
    # The emulator holds its answer for 1 s: cancel while the thread waits.
    await asyncio.sleep(0.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Let the abandoned thread receive its answer and finish.
    await asyncio.to_thread(pool.shutdown, wait=True)
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
    log = await asyncio.get_running_loop().run_in_executor(None, emulator.calls)
    assert log["counts"]["GetClip"] == 1  # the answer came, and was dropped


async def test_concurrent_clips_share_the_pacer(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """20 concurrent GetClip downloads on 4 streams: none throttled (limits on).

    GetClip allows 1 TPS per stream; every caller of the client books its start
    on the stream's one pacer, so concurrent actions never go over it.
    """
    for name in ("garage", "porch"):
        await _admin(emulator, "streams", {"name": name, "history": 900})
    arns = [s.arn for s in await client.list_streams()]
    assert len(arns) == 4
    end = datetime.now(UTC) - timedelta(minutes=5)
    start = end - timedelta(seconds=6)
    sizes = await asyncio.gather(
        *(
            client.get_clip_to_file(arn, start, end, tmp_path / f"{index}.mp4")
            for index, arn in enumerate(arns * 5)
        )
    )
    assert all(size > 0 for size in sizes)
    log = await asyncio.get_running_loop().run_in_executor(None, emulator.calls)
    clips = [c for c in log["calls"] if c["operation"] == "GetClip"]
    assert [c for c in clips if c["status"] != 200] == []
    assert len(clips) == 20
