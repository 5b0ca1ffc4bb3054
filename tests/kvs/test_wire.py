"""The new client and boto3 (the reference) against the same emulator.

Each operation: the same request body on the wire (as JSON), and the same answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from custom_components.kinesis_video.kvs import (
    GET_CLIP_INTERVAL_S,
    InvalidArgumentError,
    KinesisVideoClient,
    PlaybackRequest,
    StillsRequest,
    StreamNotFoundError,
)
from kvs_emulator.testing import EmulatorProcess

from .conftest import FAST, MISSING_ARN, aligned_range, blocking, credentials

Sent = dict[str, list[Any]]


@pytest.fixture
async def traced(
    emulator: EmulatorProcess,
) -> Any:
    """Our client on a session that records every request body by path."""
    sent: Sent = {}

    async def on_chunk(
        _: Any, __: Any, params: aiohttp.TraceRequestChunkSentParams
    ) -> None:
        sent.setdefault(params.url.path.rsplit("/", 1)[-1], []).append(
            json.loads(params.chunk)
        )

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_chunk)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield KinesisVideoClient(session, credentials(emulator), retry=FAST), sent


class Boto:
    """boto3's clients (control plane, and archived media per endpoint), recording."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator
        self.sent: Sent = {}
        self.control = self._traced(
            boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        )

    def _traced(self, client: Any) -> Any:
        def record(request: Any, **_: Any) -> None:
            path = request.url.rsplit("/", 1)[-1]
            self.sent.setdefault(path, []).append(json.loads(request.body))

        client.meta.events.register("before-send", record)
        return client

    def media(self, arn: str, api: str) -> Any:
        endpoint = self.control.get_data_endpoint(StreamARN=arn, APIName=api)
        kwargs = {
            **self.emulator.boto3_kwargs(),
            "endpoint_url": endpoint["DataEndpoint"],
        }
        return self._traced(boto3.client("kinesis-video-archived-media", **kwargs))


def whole_seconds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A range on whole seconds, odd ones (off the emulator's 2 s grid).

    botocore before 1.43 sends timestamps as whole seconds (it drops the
    fraction); later ones and this client send the fraction. On whole seconds
    both send the same instants, whichever botocore the leg installs.
    """
    second = timedelta(seconds=1)
    return start.replace(microsecond=0) + second, end.replace(microsecond=0) + second


def selector(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "FragmentSelectorType": "SERVER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
    }


async def test_same_requests_and_answers(
    traced: tuple[KinesisVideoClient, Sent], emulator: EmulatorProcess, tmp_path: Path
) -> None:
    client, ours = traced
    boto = Boto(emulator)
    streams = await client.list_streams()
    theirs = (await blocking(lambda: boto.control.list_streams(MaxResults=1000)))[
        "StreamInfoList"
    ]
    assert [(s.name, s.arn, s.status, s.created) for s in streams] == [
        (
            i["StreamName"],
            i["StreamARN"],
            i["Status"],
            i["CreationTime"].astimezone(UTC),
        )
        for i in theirs
    ]
    arn = streams[0].arn
    info = await client.describe_stream(arn)
    described = (await blocking(lambda: boto.control.describe_stream(StreamARN=arn)))[
        "StreamInfo"
    ]
    assert (info.version, info.retention_hours) == (
        described["Version"],
        described["DataRetentionInHours"],
    )

    start, end = whole_seconds(*aligned_range(40))
    fragments, _ = await client.list_fragments(arn, start, end)
    media = await blocking(boto.media, arn, "LIST_FRAGMENTS")
    pages = await blocking(
        lambda: list(
            media.get_paginator("list_fragments").paginate(
                StreamARN=arn,
                FragmentSelector=selector(start, end),
                PaginationConfig={"PageSize": 1000},
            )
        )
    )
    reference = sorted(
        (f for page in pages for f in page["Fragments"]),
        key=lambda f: f["ServerTimestamp"],
    )
    assert [
        (f.number, f.server_timestamp, f.size, f.duration_ms) for f in fragments
    ] == [
        (
            f["FragmentNumber"],
            f["ServerTimestamp"].astimezone(UTC),
            f["FragmentSizeInBytes"],
            f["FragmentLengthInMilliseconds"],
        )
        for f in reference
    ]
    assert ours["listFragments"][0] == boto.sent["listFragments"][0]

    still, _ = whole_seconds(*aligned_range(0))
    images = await client.get_images(
        arn, still, still + timedelta(seconds=2), StillsRequest(width=160)
    )
    media = await blocking(boto.media, arn, "GET_IMAGES")
    answer = await blocking(
        lambda: media.get_images(
            StreamARN=arn,
            ImageSelectorType="SERVER_TIMESTAMP",
            StartTimestamp=still,
            EndTimestamp=still + timedelta(seconds=2),
            SamplingInterval=1000,
            Format="JPEG",
            WidthPixels=160,
        )
    )
    assert [i.content for i in images] == [
        base64.b64decode(i["ImageContent"]) for i in answer["Images"]
    ]
    assert ours["getImages"] == boto.sent["getImages"]

    clip_start, clip_end = whole_seconds(
        datetime.now(UTC) - timedelta(minutes=5, seconds=10),
        datetime.now(UTC) - timedelta(minutes=5),
    )
    path = tmp_path / "ours.mp4"
    await client.get_clip_to_file(arn, clip_start, clip_end, path)
    media = await blocking(boto.media, arn, "GET_CLIP")

    def clip() -> bytes:
        answer = media.get_clip(
            StreamARN=arn, ClipFragmentSelector=selector(clip_start, clip_end)
        )
        return bytes(answer["Payload"].read())

    await asyncio.sleep(GET_CLIP_INTERVAL_S)  # GetClip's 1 TPS, for boto3 too
    body = await blocking(clip)
    assert await blocking(path.read_bytes) == body
    assert ours["getClip"] == boto.sent["getClip"]

    numbers = fragments.numbers[:5]
    mkv = tmp_path / "ours.mkv"
    await client.get_media_for_fragments_to_file(arn, numbers, mkv)
    media = await blocking(boto.media, arn, "GET_MEDIA_FOR_FRAGMENT_LIST")

    def fragment_media() -> bytes:
        answer = media.get_media_for_fragment_list(StreamARN=arn, Fragments=numbers)
        return bytes(answer["Payload"].read())

    body = await blocking(fragment_media)
    assert await blocking(mkv.read_bytes) == body

    session = await client.get_hls_url(
        arn, PlaybackRequest(expires=600, display_timestamp="ALWAYS")
    )
    media = await blocking(boto.media, arn, "GET_HLS_STREAMING_SESSION_URL")
    url = await blocking(
        lambda: media.get_hls_streaming_session_url(
            StreamARN=arn,
            PlaybackMode="LIVE",
            HLSFragmentSelector={"FragmentSelectorType": "SERVER_TIMESTAMP"},
            ContainerFormat="FRAGMENTED_MP4",
            Expires=600,
            DisplayFragmentTimestamp="ALWAYS",
        )["HLSStreamingSessionURL"]
    )
    assert session.url.split("?")[0] == url.split("?")[0]
    assert ours["getHLSStreamingSessionURL"] == boto.sent["getHLSStreamingSessionURL"]
    assert ours["getDataEndpoint"][0] == boto.sent["getDataEndpoint"][0]


async def test_same_errors(
    traced: tuple[KinesisVideoClient, Sent], emulator: EmulatorProcess
) -> None:
    client, _ = traced
    boto = Boto(emulator)
    with pytest.raises(StreamNotFoundError) as ours:
        await client.describe_stream(MISSING_ARN)
    with pytest.raises(ClientError) as theirs:
        await blocking(lambda: boto.control.describe_stream(StreamARN=MISSING_ARN))
    assert ours.value.aws_code == theirs.value.response["Error"]["Code"]
    assert theirs.value.response["Error"]["Message"] in str(ours.value)

    arn = (await client.list_streams())[0].arn
    start, _ = aligned_range(0)
    with pytest.raises(InvalidArgumentError) as ours_invalid:
        await client.get_images(arn, start, start + timedelta(minutes=10))
    media = await blocking(boto.media, arn, "GET_IMAGES")
    with pytest.raises(ClientError) as theirs:
        await blocking(
            lambda: media.get_images(
                StreamARN=arn,
                ImageSelectorType="SERVER_TIMESTAMP",
                StartTimestamp=start,
                EndTimestamp=start + timedelta(minutes=10),
                SamplingInterval=1000,
                Format="JPEG",
            )
        )
    assert ours_invalid.value.aws_code == theirs.value.response["Error"]["Code"]
