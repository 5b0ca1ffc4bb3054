"""The API layer's downloads to files, against the emulator (no Home Assistant)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_components.kinesis_video.api import (
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
    """Two calls are >= 1 s apart; a moved endpoint (HTTP 200 + error type) is
    not written to the file, and the retry on a fresh endpoint is."""
    arn = {s.name: s.arn for s in await client.list_streams()}["front-door"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    start = end - timedelta(seconds=10)
    path = tmp_path / "a.mp4"
    first = await client.get_clip_to_file(arn, start, end, path)
    assert first == path.stat().st_size > 0
    began = time.monotonic()
    await _admin(emulator, "endpoints/rotate", {})
    second = await client.get_clip_to_file(arn, start, end, path)
    assert time.monotonic() - began >= 0.9
    assert second == first == path.stat().st_size
    assert path.read_bytes()[4:8] == b"ftyp"


async def test_get_media_for_fragments_needs_numbers(
    client: KinesisVideoClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.get_media_for_fragments_to_file("arn", [], tmp_path / "x.mkv")
