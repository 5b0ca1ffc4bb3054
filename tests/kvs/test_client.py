"""The async client against the KVS emulator (a child process): no mocks.

Ported from tests/test_api.py (the boto3-in-executor client): the same cases and
assertions, on an aiohttp session made by the test. Blocking test helpers (the
emulator's admin API, urllib) run in the default executor.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import aiohttp
import botocore.utils
import pytest

from custom_components.kinesis_video.kvs import (
    AuthenticationError,
    AwsCredentials,
    ClockSkewError,
    FragmentList,
    InvalidArgumentError,
    KinesisVideoClient,
    NoDataRetentionError,
    NoMediaError,
    PermissionDeniedError,
    PlaybackRequest,
    RetryPolicy,
    ServiceError,
    StillsRequest,
    StreamNotFoundError,
    ThrottledError,
    Timeouts,
    TokenBucket,
    models,
    parse_stream_arn,
    wire,
)
from kvs_emulator.testing import EmulatorProcess

from .conftest import (
    FAST,
    MISSING_ARN,
    admin,
    aligned_range,
    blocking,
    counts,
    credentials,
    fault,
)

MakeClient = Callable[..., KinesisVideoClient]


def fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


# -- control plane -------------------------------------------------------------


async def test_list_and_describe(client: KinesisVideoClient) -> None:
    streams = await client.list_streams()
    assert sorted(s.name for s in streams) == ["backyard", "front-door"]
    info = await client.describe_stream(streams[0].arn)
    assert info == streams[0]
    assert info.status == "ACTIVE"
    assert info.media_type == "video/h264"
    assert info.retention_hours == 24
    assert info.region == "us-east-1"
    assert info.account_id == "123456789012"
    assert info.created is not None
    assert info.created.tzinfo is UTC
    assert info.created < datetime.now(UTC)


def test_parse_stream_arn() -> None:
    parsed = parse_stream_arn(MISSING_ARN)
    assert (parsed.partition, parsed.region, parsed.account_id, parsed.name) == (
        "aws",
        "us-east-1",
        "123456789012",
        "nowhere",
    )
    with pytest.raises(ValueError, match="Not a Kinesis"):
        parse_stream_arn("arn:aws:s3:::bucket")


# -- sessions --------------------------------------------------------------------


async def test_hls_url_plays(client: KinesisVideoClient, arns: dict[str, str]) -> None:
    before = datetime.now(UTC)
    session = await client.get_hls_url(arns["front-door"], PlaybackRequest(expires=600))
    assert before + timedelta(seconds=600) <= session.expires_at
    assert session.expires_at <= datetime.now(UTC) + timedelta(seconds=600)
    assert "SessionToken" not in repr(session)
    playlist = await blocking(fetch_text, session.url)
    assert playlist.startswith("#EXTM3U")
    assert "getHLSMediaPlaylist" in playlist


async def test_hls_on_demand_and_options(
    client: KinesisVideoClient, arns: dict[str, str]
) -> None:
    start, end = aligned_range(2)
    session = await client.get_hls_url(
        arns["backyard"],
        PlaybackRequest(
            mode="ON_DEMAND",
            container="MPEG_TS",
            start=start,
            end=end,
            max_results=100,
            discontinuity="NEVER",
            display_timestamp="ALWAYS",
        ),
    )
    playlist = await blocking(fetch_text, session.url)
    assert "getHLSMediaPlaylist" in playlist


async def test_dash_url(client: KinesisVideoClient, arns: dict[str, str]) -> None:
    session = await client.get_dash_url(
        arns["backyard"], PlaybackRequest(display_timestamp="ALWAYS")
    )
    assert "getDASHManifest" in session.url
    manifest = await blocking(fetch_text, session.url)
    assert "<MPD" in manifest


# -- archive ---------------------------------------------------------------------


async def test_list_fragments_sorted_across_pages(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    start, end = aligned_range(40)
    fragments, truncated = await client.list_fragments(arns["front-door"], start, end)
    assert not truncated
    assert len(fragments) == 1200  # two pages: the emulator shuffles across them
    assert (await counts(emulator))["ListFragments"] == 2
    assert len({f.number for f in fragments}) == 1200
    times = [f.server_timestamp for f in fragments]
    assert times == sorted(times)
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(times))
    assert start <= times[0]
    assert times[-1] <= end
    assert [int(f.number) for f in fragments] == sorted(
        int(f.number) for f in fragments
    )
    first = fragments[0]
    assert first.duration_ms == 2000
    assert first.size > 0
    assert first.producer_timestamp.tzinfo is UTC


async def test_list_fragments_limit(
    client: KinesisVideoClient, arns: dict[str, str]
) -> None:
    start, end = aligned_range(10)
    everything, truncated = await client.list_fragments(
        arns["backyard"], start, end, timestamp_type="PRODUCER_TIMESTAMP"
    )
    assert not truncated
    first, truncated = await client.list_fragments(
        arns["backyard"], start, end, timestamp_type="PRODUCER_TIMESTAMP", limit=10
    )
    assert truncated
    assert first == everything[:10]
    exact, truncated = await client.list_fragments(
        arns["backyard"], start, end, limit=len(everything)
    )
    assert not truncated
    assert exact == everything


async def test_list_fragments_empty_range(
    client: KinesisVideoClient, arns: dict[str, str]
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    result = await client.list_fragments(
        arns["backyard"], long_ago, long_ago + timedelta(minutes=5)
    )
    assert result == ([], False)


async def test_get_images(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    start, _ = aligned_range(0)
    images = await client.get_images(
        arns["front-door"],
        start,
        start + timedelta(seconds=30),
        StillsRequest(width=160),
    )
    assert len(images) == 31  # both ends inclusive; 25 per page = two pages
    assert (await counts(emulator))["GetImages"] == 2
    assert [i.timestamp for i in images] == sorted(i.timestamp for i in images)
    assert images[1].timestamp - images[0].timestamp == timedelta(seconds=1)
    assert all(i.content is not None and i.content[:2] == b"\xff\xd8" for i in images)
    assert all(i.error is None for i in images)


async def test_get_images_png_and_no_media(
    client: KinesisVideoClient, arns: dict[str, str]
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    images = await client.get_images(
        arns["backyard"],
        long_ago,
        long_ago + timedelta(seconds=4),
        StillsRequest(sampling_ms=2000, image_format="PNG"),
    )
    assert [(i.content, i.error) for i in images] == [(None, "NO_MEDIA")] * 3
    start, _ = aligned_range(0)
    (image,) = await client.get_images(
        arns["backyard"], start, start, StillsRequest(image_format="PNG", height=90)
    )
    assert image.content is not None
    assert image.content.startswith(b"\x89PNG")


async def test_latest_image(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    image = await client.latest_image(arns["front-door"])
    assert image is not None
    assert image.startswith(b"\xff\xd8")
    log = await blocking(emulator.calls)
    assert log["counts"]["GetImages"] == 1  # one page: at most three timestamps


async def test_latest_image_none_when_camera_offline(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    # latest_image reads our clock, not the emulator's: cut media around "now".
    now = datetime.now(UTC).timestamp()
    await admin(emulator, "POST", "streams/backyard", {"gaps": [[now - 30, now + 30]]})
    assert await client.latest_image(arns["backyard"]) is None


# -- errors ----------------------------------------------------------------------


async def test_wrong_secret(emulator: EmulatorProcess, make_client: MakeClient) -> None:
    kvs = make_client(credentials=credentials(emulator, secret_access_key="wrong"))
    with pytest.raises(AuthenticationError) as caught:
        await kvs.list_streams()
    assert caught.value.code == "authentication"
    assert caught.value.aws_code == "InvalidSignatureException"
    assert "wrong" not in str(caught.value)
    assert (await counts(emulator))["ListStreams"] == 1  # not retried
    await kvs.close()


async def test_unknown_key(emulator: EmulatorProcess, make_client: MakeClient) -> None:
    kvs = make_client(
        credentials=credentials(emulator, access_key_id="AKIANOBODY0000000000")
    )
    with pytest.raises(AuthenticationError):
        await kvs.list_streams()
    await kvs.close()


async def test_denied_key(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await admin(
        emulator,
        "POST",
        "credentials",
        {"access_key": emulator.access_key, "denied": True},
    )
    # The key is valid, its policy says no: not an authentication error (new
    # keys would not help), so nothing re-authenticates in a loop.
    with pytest.raises(PermissionDeniedError) as caught:
        await client.describe_stream(arns["backyard"])
    assert caught.value.aws_code == "NotAuthorizedException"
    assert caught.value.code == "permission_denied"
    assert not isinstance(caught.value, AuthenticationError)


async def test_clock_skew_is_not_an_authentication_error(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    """A request signed an hour off is refused for its time, not its key."""
    await admin(emulator, "POST", "config", {"max_skew_s": 300})
    wrong = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    # botocore takes the signing time from this function; the emulator checks
    # it against its own clock, as AWS does.
    with (
        patch("botocore.auth.get_current_datetime", return_value=wrong),
        pytest.raises(ClockSkewError) as caught,
    ):
        await client.describe_stream(arns["backyard"])
    assert caught.value.code == "clock_skew"
    assert not isinstance(caught.value, AuthenticationError)
    assert (await counts(emulator))["DescribeStream"] == 1  # not retried


async def test_unknown_stream(client: KinesisVideoClient) -> None:
    with pytest.raises(StreamNotFoundError) as caught:
        await client.describe_stream(MISSING_ARN)
    assert caught.value.code == "stream_not_found"
    with pytest.raises(StreamNotFoundError):  # from GetDataEndpoint
        await client.get_hls_url(MISSING_ARN)


async def test_no_data_retention(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await admin(emulator, "POST", "streams/front-door", {"retention_hours": 0})
    with pytest.raises(NoDataRetentionError):
        await client.get_hls_url(arns["front-door"])


async def test_no_media_in_range(
    client: KinesisVideoClient, arns: dict[str, str]
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    with pytest.raises(NoMediaError) as caught:
        await client.get_dash_url(
            arns["backyard"],
            PlaybackRequest(
                mode="ON_DEMAND", start=long_ago, end=long_ago + timedelta(minutes=10)
            ),
        )
    assert caught.value.code == "no_media"


async def test_live_without_recent_fragment(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await admin(emulator, "POST", "streams/backyard", {"online": False})
    await admin(emulator, "POST", "clock", {"advance": 60})
    with pytest.raises(NoMediaError):
        await client.get_hls_url(arns["backyard"])
    # The stream itself is fine: a no-media answer must not turn into "gone".
    assert (await client.describe_stream(arns["backyard"])).status == "ACTIVE"


async def test_invalid_arguments(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    start, _ = aligned_range(0)
    with pytest.raises(InvalidArgumentError) as caught:  # the service says so
        await client.get_images(arns["backyard"], start, start + timedelta(minutes=10))
    assert caught.value.aws_code == "InvalidArgumentException"
    with pytest.raises(InvalidArgumentError):  # the model's bounds, checked here
        await client.get_hls_url(arns["backyard"], PlaybackRequest(expires=10))
    for hls_only in (
        PlaybackRequest(container="MPEG_TS"),
        PlaybackRequest(discontinuity="ALWAYS"),
    ):
        with pytest.raises(InvalidArgumentError, match="DASH"):  # refused here
            await client.get_dash_url(arns["backyard"], hls_only)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidArgumentError, match="timezone"):
        await client.list_fragments(arns["backyard"], naive, naive)
    assert "GetHLSStreamingSessionURL" not in await counts(emulator)
    assert "GetDASHStreamingSessionURL" not in await counts(emulator)


async def test_unsupported_media_type(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await admin(emulator, "POST", "streams/backyard", {"media_type": "audio/aac"})
    with pytest.raises(InvalidArgumentError) as caught:
        await client.get_hls_url(arns["backyard"])
    assert caught.value.aws_code == "UnsupportedStreamMediaTypeException"


# -- retries ---------------------------------------------------------------------


async def test_throttling_retried(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await fault(
        emulator,
        operation="GetHLSStreamingSessionURL",
        error="ClientLimitExceededException",
        count=2,
    )
    await client.get_hls_url(arns["backyard"])
    assert (await counts(emulator))["GetHLSStreamingSessionURL"] == 3


async def test_throttling_exhausted(
    emulator: EmulatorProcess, arns: dict[str, str], make_client: MakeClient
) -> None:
    kvs = make_client(retry=RetryPolicy(retries=3, base_s=0.01, cap_s=0.02))
    await fault(
        emulator,
        operation="ListFragments",
        error="ClientLimitExceededException",
        count=10,
    )
    start, end = aligned_range(1)
    with pytest.raises(ThrottledError) as caught:
        await kvs.list_fragments(arns["backyard"], start, end)
    assert caught.value.code == "throttled"
    assert (await counts(emulator))["ListFragments"] == 4  # 1 + 3 retries
    await kvs.close()


async def test_real_rate_limit_absorbed(
    emulator: EmulatorProcess, arns: dict[str, str], make_client: MakeClient
) -> None:
    """HLS allows 5 calls in a burst, then 1 per second: back-off rides it out."""
    kvs = make_client(retry=RetryPolicy(retries=6, base_s=0.2, cap_s=1))
    for _ in range(7):
        await kvs.get_hls_url(arns["front-door"])
    calls = (await blocking(emulator.calls))["calls"]
    errors = {
        c["error"] for c in calls if c["operation"] == "GetHLSStreamingSessionURL"
    }
    assert "ClientLimitExceededException" in errors
    await kvs.close()


async def test_server_error_retried(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await fault(
        emulator,
        operation="ListFragments",
        error="InternalFailure",
        status=500,
        count=2,
    )
    start, end = aligned_range(1)
    fragments, _ = await client.list_fragments(arns["backyard"], start, end)
    assert len(fragments) == 30
    assert (await counts(emulator))["ListFragments"] == 3


async def test_server_error_exhausted(
    client: KinesisVideoClient, emulator: EmulatorProcess
) -> None:
    await fault(
        emulator, operation="ListStreams", error="ServiceUnavailableException", count=-1
    )
    with pytest.raises(ServiceError) as caught:
        await client.list_streams()
    assert caught.value.code == "service"
    assert (await counts(emulator))["ListStreams"] == 5


# -- data endpoints ------------------------------------------------------------


async def test_endpoint_cached(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await client.get_hls_url(arns["backyard"])
    await client.get_hls_url(arns["backyard"])
    assert (await counts(emulator))["GetDataEndpoint"] == 1
    await client.get_dash_url(arns["backyard"])  # another API: its own endpoint
    await client.get_hls_url(arns["front-door"])  # another stream
    assert (await counts(emulator))["GetDataEndpoint"] == 3


async def test_endpoint_moved(
    client: KinesisVideoClient, arns: dict[str, str], emulator: EmulatorProcess
) -> None:
    await client.get_hls_url(arns["backyard"])
    await admin(emulator, "POST", "endpoints/rotate", {})
    session = await client.get_hls_url(arns["backyard"])
    assert "getHLSMasterPlaylist" in session.url
    log = await blocking(emulator.calls)
    assert log["counts"]["GetDataEndpoint"] == 2
    hls = [c for c in log["calls"] if c["operation"] == "GetHLSStreamingSessionURL"]
    assert [c["error"] for c in hls] == [None, "UnknownOperationException", None]


async def test_timeout_refreshes_endpoint(
    emulator: EmulatorProcess, arns: dict[str, str], make_client: MakeClient
) -> None:
    kvs = make_client(timeouts=Timeouts(read=0.5))
    await fault(emulator, operation="GetImages", latency_s=2, count=1)
    start, _ = aligned_range(0)
    images = await kvs.get_images(arns["backyard"], start, start)
    assert images[0].content is not None
    assert (await counts(emulator))["GetDataEndpoint"] == 2
    await kvs.close()


async def test_connection_refused(
    socket_enabled: None, http: aiohttp.ClientSession
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kvs = KinesisVideoClient(
        http,
        AwsCredentials(
            "AKIAEXAMPLE", "s3cret", "us-east-1", f"http://127.0.0.1:{port}"
        ),
        retry=FAST,
    )
    with pytest.raises(ServiceError) as caught:
        await kvs.describe_stream(MISSING_ARN)
    assert caught.value.code == "service"
    assert "s3cret" not in str(caught.value)
    await kvs.close()


# -- hygiene ---------------------------------------------------------------------


async def test_repr_hides_secret(
    client: KinesisVideoClient, emulator: EmulatorProcess
) -> None:
    creds = credentials(emulator)
    for text in (repr(creds), str(creds), repr(client), str(client)):
        assert emulator.secret_key not in text
    assert emulator.access_key in repr(client)


async def test_no_request_from_the_executor(
    emulator: EmulatorProcess, http: aiohttp.ClientSession
) -> None:
    """Every request goes through the given session, from the loop's thread.

    (The old client sent from executor threads; this one holds none while it
    waits on the network.) The executor only decodes the stills here.
    """
    loop_thread = threading.current_thread()
    senders: set[threading.Thread] = set()
    jobs: list[str] = []

    async def on_request_start(*_: Any) -> None:
        senders.add(threading.current_thread())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    session = aiohttp.ClientSession(trace_configs=[trace])

    def run[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> asyncio.Future[T]:
        jobs.append(getattr(func, "__name__", "?"))
        return asyncio.get_running_loop().run_in_executor(None, func, *args)

    kvs = KinesisVideoClient(
        session, credentials(emulator), run_in_executor=run, retry=FAST
    )
    arn = (await kvs.list_streams())[0].arn
    await asyncio.gather(
        kvs.get_hls_url(arn),
        kvs.latest_image(arn),
        kvs.list_fragments(arn, *aligned_range(1)),
    )
    await kvs.close()
    await session.close()
    assert senders == {loop_thread}
    assert jobs == ["images"]
    assert (await counts(emulator))["ListStreams"] == 1


async def test_pacer_counts_start_to_start() -> None:
    """Starts are spaced, not the gaps after calls; concurrent callers queue.

    A fake clock and sleep: the spacing is asserted exactly, not timed.
    """
    now = 100.0
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    bucket = TokenBucket(1 / 1.1, 1, clock=lambda: now, sleep=sleep)
    await bucket.take()
    now += 2.0  # a 2 s download: the next one may start at once
    await bucket.take()
    assert slept == []
    now += 0.5
    await asyncio.gather(*(bucket.take() for _ in range(3)))
    assert slept == pytest.approx([0.6, 1.7, 2.8])
    now += 2.8  # the last booked start: the next one comes 1.1 s after it
    await bucket.take()
    assert slept[-1] == pytest.approx(1.1)


async def test_list_fragments_builds_no_fragment_objects(
    client: KinesisVideoClient,
    arns: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing fills columns; a Fragment is built only when an item is read.

    How many objects a listing makes is invisible to the emulator, so the
    Fragment class is spied on here.
    """
    built = 0
    real_fragment = models.Fragment

    def fragment(*fields: Any) -> models.Fragment:
        nonlocal built
        built += 1
        return real_fragment(*fields)

    monkeypatch.setattr(models, "Fragment", fragment)
    start, end = aligned_range(10)
    fragments, _ = await client.list_fragments(arns["front-door"], start, end)
    assert isinstance(fragments, FragmentList)
    assert len(fragments) == 300
    assert built == 0
    assert {f.server_timestamp.tzinfo for f in fragments} == {UTC}
    assert {f.producer_timestamp.tzinfo for f in fragments} == {UTC}
    assert built == 600  # two passes over 300, one object per item read
    assert fragments.server_ms[0] == round(
        fragments[0].server_timestamp.timestamp() * 1000
    )


def test_timestamp_parser_matches_botocore() -> None:
    """The same instants as botocore's parser, always in UTC."""
    for value in (1796092734, 1796092734.123, "2026-12-01T02:34:19.5Z"):
        ours = wire.answer_time(value)
        assert ours.tzinfo is UTC or ours.utcoffset() == timedelta(0)
        assert ours == botocore.utils.parse_timestamp(value)
