"""Downloads to files: pacing, moved endpoints, cut connections, cancellation.

Ported from tests/test_api_downloads.py, plus the retry of a cut body (issue
12 item 3) and cancellation while the body streams.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from custom_components.kinesis_video.kvs import (
    GET_CLIP_INTERVAL_S,
    AwsCredentials,
    InvalidArgumentError,
    KinesisVideoClient,
    RetryPolicy,
    ServiceError,
)
from kvs_emulator.testing import EmulatorProcess

from .conftest import FAST, admin, blocking, fault

MakeClient = Callable[..., KinesisVideoClient]


def clip_range() -> tuple[datetime, datetime]:
    end = datetime.now(UTC) - timedelta(minutes=5)
    return end - timedelta(seconds=10), end


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll a blocking condition (in a worker thread, not on the loop)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


async def files(folder: Path) -> list[Path]:
    return await blocking(lambda: sorted(folder.iterdir()))


async def read(path: Path) -> bytes:
    return await blocking(path.read_bytes)


async def test_get_clip_to_file_paced_and_endpoint_moved(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Calls start >= 1.1 s apart; a moved endpoint (HTTP 200 + error type) is
    not written to the file, and the retry on a fresh endpoint is."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    start, end = clip_range()
    path = tmp_path / "a.mp4"
    began = time.monotonic()
    first = await client.get_clip_to_file(arn, start, end, path)
    assert first == (await blocking(path.stat)).st_size > 0
    await admin(emulator, "POST", "endpoints/rotate", {})
    second = await client.get_clip_to_file(arn, start, end, path)
    # Three starts: the first call, then the second's two attempts (a lower
    # bound the pacing guarantees, however slow the machine).
    assert time.monotonic() - began >= 2 * GET_CLIP_INTERVAL_S
    assert second == first == (await blocking(path.stat)).st_size
    assert (await read(path))[4:8] == b"ftyp"


async def test_get_media_for_fragments_needs_numbers(
    client: KinesisVideoClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.get_media_for_fragments_to_file("arn", [], tmp_path / "x.mkv")


async def test_cancelled_before_the_answer_leaves_no_file(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Cancelled while waiting for AWS (an automation in restart mode, shutdown)."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    await fault(emulator, operation="GetClip", count=1, latency_s=1.0)
    task = asyncio.create_task(
        client.get_clip_to_file(arn, *clip_range(), tmp_path / "clip.mp4.part")
    )
    await asyncio.sleep(0.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await files(tmp_path) == []
    # The emulator answers after its delay, to a closed connection: wait for
    # that, so that the next test's log starts clean.
    await blocking(wait_until, lambda: emulator.calls()["counts"].get("GetClip") == 1)
    assert await files(tmp_path) == []


async def test_concurrent_clips_share_the_pacer(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """20 concurrent GetClip downloads on 4 streams: none throttled (limits on).

    GetClip allows 1 TPS per stream; every caller of the client books its start
    on the stream's one pacer, so concurrent actions never go over it.
    """
    for name in ("garage", "porch"):
        await admin(emulator, "POST", "streams", {"name": name, "history": 900})
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
    log = await blocking(emulator.calls)
    clips = [c for c in log["calls"] if c["operation"] == "GetClip"]
    assert [c for c in clips if c["status"] != 200] == []
    assert len(clips) == 20


# -- cut connections (issue 12 item 3) -------------------------------------------


async def test_cut_clip_retried_from_the_start(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Two cuts mid-body: the third attempt rewrites the file whole."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    start, end = clip_range()
    clean = tmp_path / "clean.mp4"
    await client.get_clip_to_file(arn, start, end, clean)
    await fault(emulator, operation="GetClip", count=2, cut_after_bytes=50_000)
    path = tmp_path / "cut.mp4"
    written = await client.get_clip_to_file(arn, start, end, path)
    assert await read(path) == await read(clean)
    assert written == len(await read(clean)) > 50_000
    assert (await counts_of(emulator, "GetClip")) == [200] * 4  # clean + 3


async def test_cut_clip_fails_when_retries_are_spent(
    make_client: MakeClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    kvs = make_client(retry=RetryPolicy(retries=1, base_s=0.01, cap_s=0.02))
    arn = {s.name: s.arn for s in await kvs.list_streams()}["front-door"]
    await fault(emulator, operation="GetClip", count=-1, cut_after_bytes=50_000)
    with pytest.raises(ServiceError) as caught:
        await kvs.get_clip_to_file(arn, *clip_range(), tmp_path / "cut.mp4")
    assert caught.value.retryable
    assert "connection failed" in str(caught.value)
    # Two attempts, each once more on a fresh endpoint.
    assert len(await counts_of(emulator, "GetClip")) == 4


async def test_cut_media_batch_retried_from_its_offset(
    client: KinesisVideoClient, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """1200 fragments are two batches; the second is cut once and redone."""
    arn = {s.name: s.arn for s in await client.list_streams()}["backyard"]
    end = datetime.now(UTC) - timedelta(minutes=50)
    fragments, _ = await client.list_fragments(arn, end - timedelta(minutes=40), end)
    assert len(fragments) == 1200
    clean = tmp_path / "clean.mkv"
    total = await client.get_media_for_fragments_to_file(arn, fragments.numbers, clean)
    await fault(
        emulator,
        operation="GetMediaForFragmentList",
        count=1,
        skip=1,
        cut_after_bytes=10_000,
    )
    path = tmp_path / "cut.mkv"
    assert (
        await client.get_media_for_fragments_to_file(arn, fragments.numbers, path)
        == total
    )
    assert await read(path) == await read(clean)
    assert len(await counts_of(emulator, "GetMediaForFragmentList")) == 5


async def counts_of(emulator: EmulatorProcess, operation: str) -> list[int]:
    log = await blocking(emulator.calls)
    return [c["status"] for c in log["calls"] if c["operation"] == operation]


# -- cancelled while the body streams ----------------------------------------------


@pytest.fixture
async def stalling_server(
    socket_enabled: None,
) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server that sends 3 MiB of a GetClip body, then waits forever.

    The emulator sends a body at full speed (it can only delay the answer or
    cut it), so a body that stalls midway, the way a slow network looks, needs
    a server of its own. Its endpoint answers GetDataEndpoint with itself.
    """
    release = asyncio.Event()

    async def endpoint(request: web.Request) -> web.Response:
        return web.json_response({"DataEndpoint": str(request.url.origin())})

    async def clip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = 10 * 1024 * 1024
        await response.prepare(request)
        await response.write(b"\0" * (3 * 1024 * 1024))
        await release.wait()
        return response

    app = web.Application()
    app.router.add_post("/getDataEndpoint", endpoint)
    app.router.add_post("/getClip", clip)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", release
    release.set()
    await runner.cleanup()


async def test_cancel_mid_body_stops_at_once_and_deletes(
    stalling_server: tuple[str, asyncio.Event],
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url, release = stalling_server
    kvs = KinesisVideoClient(
        http, AwsCredentials("AKIAEXAMPLE", "secret", "us-east-1", url), retry=FAST
    )
    path = tmp_path / "clip.mp4.part"
    task = asyncio.create_task(
        kvs.get_clip_to_file(
            "arn:aws:kinesisvideo:us-east-1:123456789012:stream/s/1",
            *clip_range(),
            path,
        )
    )
    # Wait until some of the body is on disk (the 1 MiB writes have begun).
    await blocking(wait_until, lambda: path.exists() and path.stat().st_size > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Done while the server still holds the rest of the body back: the client
    # did not wait for it, and left nothing behind.
    assert not release.is_set()
    assert await files(tmp_path) == []


async def test_download_file_through_proc_fd(
    client: KinesisVideoClient, tmp_path: Path
) -> None:
    """A /proc/self/fd/N path (the integration's Folder parts) is written in place."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    target = tmp_path / "part"
    fd = await blocking(os.open, target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        written = await client.get_clip_to_file(
            arn, *clip_range(), Path(f"/proc/self/fd/{fd}")
        )
    finally:
        await blocking(os.close, fd)
    assert written == len(await read(target)) > 0
