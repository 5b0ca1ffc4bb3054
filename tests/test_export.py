"""The export pipelines against the emulator, with the client library directly."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import av
import pytest

from custom_components.kinesis_video.export import (
    CLIP_DOWNLOADS_IN_FLIGHT,
    Destination,
    ImageRequest,
    MediaJoinError,
    Source,
    export_clip,
    export_fragments,
    export_images,
)
from custom_components.kinesis_video.kvs import (
    InvalidArgumentError,
    KinesisVideoClient,
    NoMediaError,
)
from custom_components.kinesis_video.mp4join import Mp4Joiner
from custom_components.kinesis_video.safe_files import Folder
from kvs_emulator.testing import EmulatorProcess

from .kvs.conftest import FAST, admin, blocking, credentials, fault

# The emulator's fragments last 2 s; GetClip takes at most 200 of them.
FRAGMENT_S = 2


@pytest.fixture
async def source(emulator: EmulatorProcess) -> AsyncIterator[Source]:
    """The front door's stream, read through a client on a session of the test's."""
    async with aiohttp.ClientSession() as http:
        client = KinesisVideoClient(http, credentials(emulator), retry=FAST)
        arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
        loop = asyncio.get_running_loop()
        yield Source(
            client, arn, lambda func, *args: loop.run_in_executor(None, func, *args)
        )
        await client.close()


@pytest.fixture
async def folder(tmp_path: Path) -> AsyncIterator[Folder]:
    opened = await blocking(Folder.open, tmp_path, lambda _: True)
    yield opened
    await blocking(opened.close)


def _range(seconds: int) -> tuple[datetime, datetime]:
    """A recorded range ending a few minutes ago, on the 2 s grid."""
    end = datetime.now(UTC) - timedelta(minutes=10)
    end = end.replace(second=end.second - end.second % 2, microsecond=500_000)
    return end - timedelta(seconds=seconds), end


def _files(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def _seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


async def test_clip_of_many_parts_is_joined_in_order(
    source: Source, folder: Folder, emulator: EmulatorProcess
) -> None:
    """15 minutes: 450 fragments in 3 GetClip parts, joined into one MP4."""
    await admin(emulator, "POST", "config", {"tps_limits": False})
    start, end = _range(900)
    into = Destination(folder, "clip.mp4", overwrite=False)
    clip = await export_clip(source, start, end, into)
    assert clip.parts == 3 > CLIP_DOWNLOADS_IN_FLIGHT
    assert len(clip.fragments) == 900 // FRAGMENT_S
    # Only the clip is left: every part was joined, then deleted.
    assert await blocking(_files, folder.path) == ["clip.mp4"]
    assert clip.size == (await blocking(os.stat, folder.path / "clip.mp4")).st_size
    seconds = await blocking(_seconds, folder.path / "clip.mp4")
    assert abs(seconds - 900) <= 2 * FRAGMENT_S, seconds
    calls = (await blocking(emulator.calls))["calls"]
    assert [c["status"] for c in calls if c["operation"] == "GetClip"] == [200] * 3


async def test_clip_of_one_part_is_not_remuxed(source: Source, folder: Folder) -> None:
    start, end = _range(20)
    clip = await export_clip(source, start, end, Destination(folder, "a.mp4", False))
    assert clip.parts == 1
    assert await blocking(_files, folder.path) == ["a.mp4"]


async def test_cancelled_clip_export_leaves_no_file(
    source: Source, folder: Folder, emulator: EmulatorProcess
) -> None:
    """Cancelled while its parts download (second part slow): nothing is left."""
    await admin(emulator, "POST", "config", {"tps_limits": False})
    await fault(emulator, operation="GetClip", skip=1, count=-1, latency_s=2.0)
    start, end = _range(900)
    task = asyncio.create_task(
        export_clip(source, start, end, Destination(folder, "c.mp4", False))
    )

    def parts_on_disk() -> None:
        deadline = time.monotonic() + 30
        while len(_files(folder.path)) < 2:  # the output and a part
            assert time.monotonic() < deadline, "no part came"
            time.sleep(0.02)

    await blocking(parts_on_disk)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await blocking(_files, folder.path) == []


async def test_failed_part_publishes_nothing(
    source: Source, folder: Folder, emulator: EmulatorProcess
) -> None:
    """The second part refused: the error comes through, no clip and no part."""
    await admin(emulator, "POST", "config", {"tps_limits": False})
    await fault(
        emulator,
        operation="GetClip",
        skip=1,
        count=-1,
        error="InvalidArgumentException",
        status=400,
    )
    start, end = _range(900)
    with pytest.raises(InvalidArgumentError):
        await export_clip(source, start, end, Destination(folder, "f.mp4", False))
    assert await blocking(_files, folder.path) == []


async def test_join_refused_publishes_nothing(
    source: Source, folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg refusing a part: MediaJoinError, nothing left.

    Mocked: the emulator's parts always join; the refusal is simulated.
    """

    def refuse(self: Mp4Joiner, piece: Path) -> None:
        raise ValueError("Cannot join the clip parts")

    monkeypatch.setattr(Mp4Joiner, "add", refuse)
    start, end = _range(900)
    with pytest.raises(MediaJoinError):
        await export_clip(source, start, end, Destination(folder, "j.mp4", False))
    assert await blocking(_files, folder.path) == []


async def test_clip_of_an_empty_range(source: Source, folder: Folder) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(NoMediaError):
        await export_clip(
            source, start, start + timedelta(minutes=1), Destination(folder, "e", False)
        )
    assert await blocking(_files, folder.path) == []


async def test_fragments_export(source: Source, folder: Folder) -> None:
    start, end = _range(10)
    fragments, _ = await source.client.list_fragments(source.arn, start, end)
    numbers = [f.number for f in fragments]
    saved = await export_fragments(
        source, numbers, Destination(folder, "f.mkv", overwrite=False)
    )
    assert saved.count == len(numbers) == 5
    assert await blocking(_files, folder.path) == ["f.mkv"]
    assert saved.size == (await blocking(os.stat, folder.path / "f.mkv")).st_size > 0


async def test_failed_fragments_export_leaves_nothing(
    source: Source, folder: Folder
) -> None:
    with pytest.raises(NoMediaError):
        await export_fragments(source, ["1"], Destination(folder, "x.mkv", False))
    assert await blocking(_files, folder.path) == []


async def test_images_export_all_or_nothing(
    source: Source, folder: Folder, emulator: EmulatorProcess
) -> None:
    """Two windows of stills; a failed second window publishes none."""
    await admin(emulator, "POST", "config", {"tps_limits": False})
    start, end = _range(310)
    request = ImageRequest(
        interval=timedelta(seconds=10),
        image_format="JPEG",
        name=lambda image: f"{image.timestamp:%H%M%S}.jpg",
    )
    saved = await export_images(
        source, start, end, request, Destination(folder, "s_", False)
    )
    assert len(saved.files) == 32  # 0, 10, ..., 310 s: both ends included
    assert all(Path(f).name.startswith("s_") for f in saved.files)
    assert saved.no_media == saved.errors == []
    await fault(
        emulator,
        operation="GetImages",
        skip=1,
        count=1,
        error="InvalidArgumentException",
        status=400,
    )
    with pytest.raises(InvalidArgumentError):
        await export_images(
            source, start, end, request, Destination(folder, "t_", False)
        )
    assert [n for n in await blocking(_files, folder.path) if n.startswith("t_")] == []
