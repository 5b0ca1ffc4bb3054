"""The camera's local playlists (live_proxy): what FFmpeg reads instead of KVS's.

Through Home Assistant's real HTTP server and the emulator's HLS, without a
login (FFmpeg has none), and against the real stream worker for early expiry.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import replace
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import pytest
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.components.http import ApiConfig
from homeassistant.components.stream import HLS_PROVIDER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kinesis_video.camera import KinesisVideoCamera
from custom_components.kinesis_video.kvs import SessionUrl
from custom_components.kinesis_video.live_proxy import (
    SEQUENCES_KEPT,
    _local_master,
    _MediaPlaylist,
    local_base_url,
)
from kvs_emulator.framecode import read_frame_index
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, emulator_key, setup_entry
from .live_http import require_client_certificates, serve_home_assistant

# The emulator's media: 10 frames per second, frame codes repeat every 600.
FPS = 10
CODE_CYCLE = 600


def _camera(hass: HomeAssistant) -> KinesisVideoCamera:
    camera = hass.data[DATA_COMPONENT].get_entity("camera.front_door")
    assert isinstance(camera, KinesisVideoCamera)
    return camera


def _local(camera: KinesisVideoCamera, name: str) -> str:
    return camera._proxy.path.replace("master.m3u8", name)


def _numbered(playlist: str) -> dict[str, int]:
    """Each segment's fragment number -> its media sequence number."""
    lines = playlist.splitlines()
    number = next(
        int(x.split(":")[1]) for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")
    )
    segments = [x for x in lines if x and x[0] != "#"]
    return {
        parse_qs(urlsplit(uri).query)["FragmentNumber"][0]: number + position
        for position, uri in enumerate(segments)
    }


async def _kvs(hass: HomeAssistant, url: str) -> bytes:
    async with async_get_clientsession(hass).get(url) as response:
        assert response.status == 200
        return await response.read()


# -- the playlists, through Home Assistant's server ---------------------------


@pytest.fixture
async def served(
    hass: HomeAssistant, hass_client_no_auth: Any, config_entry: MockConfigEntry
) -> tuple[Any, KinesisVideoCamera]:
    """The entry set up, Home Assistant's HTTP server up, and the camera."""
    await setup_entry(hass, config_entry)
    client = await serve_home_assistant(hass, hass_client_no_auth)
    return client, _camera(hass)


async def test_local_playlists_read_the_session(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
) -> None:
    """Master and media playlists and the init section, without a login.

    Segments stay at KVS (the video does not pass through Home Assistant),
    the media sequence is KVS's own on the first playlist, the init section is
    KVS's bytes, and nothing of the session token is in the master.
    """
    client, camera = served
    assert await camera.stream_source() == camera._proxy.url()
    session = camera._live.session
    assert session is not None
    kvs = "{0.scheme}://{0.netloc}".format(urlsplit(session.url))

    response = await client.get(camera._proxy.path)
    assert response.status == 200
    assert response.content_type == "application/vnd.apple.mpegurl"
    master = await response.text()
    assert "media/0.m3u8" in master
    assert "SessionToken" not in master

    kvs_media = session.url.replace("Master", "Media") + "&TrackNumber=1"
    theirs = _numbered((await _kvs(hass, kvs_media)).decode())
    response = await client.get(_local(camera, "media/0.m3u8"))
    assert response.status == 200
    media = await response.text()
    segments = [line for line in media.splitlines() if line and line[0] != "#"]
    assert segments
    assert all(s.startswith(f"{kvs}/hls/v1/getMP4MediaFragment.mp4?") for s in segments)
    assert '#EXT-X-MAP:URI="0.0.mp4"' in media
    # The same number for each segment as KVS's (a new one may have come).
    ours = _numbered(media)
    assert set(ours) & set(theirs)
    assert all(ours[key] == theirs[key] for key in set(ours) & set(theirs))

    response = await client.get(_local(camera, "media/0.0.mp4"))
    assert response.status == 200
    assert response.content_type == "video/mp4"
    init = await response.read()
    assert init[4:8] == b"ftyp"
    assert init == await _kvs(
        hass,
        session.url.replace("getHLSMasterPlaylist.m3u8", "getMP4InitFragment.mp4")
        + "&TrackNumber=1",
    )
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 1


@pytest.mark.parametrize("name", ["master.m3u8", "media/0.m3u8", "media/0.0.mp4"])
async def test_refused_session_replaced_at_once(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
    name: str,
) -> None:
    """KVS closed the session early: the same request answers from a new one."""
    client, camera = served
    await camera.stream_source()
    first = camera._live.session
    assert (await client.get(_local(camera, "media/0.m3u8"))).status == 200
    await admin(hass, emulator, "POST", "sessions/expire", {})
    response = await client.get(_local(camera, name))
    assert response.status == 200
    assert camera._live.session is not None
    assert camera._live.session is not first
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 2
    # Refused once, by the old session; never answered 401/403 here.
    log = await hass.async_add_executor_job(emulator.calls)
    assert [c["status"] for c in log["calls"] if c["status"] != 200] == [403]


async def test_concurrent_readers_share_one_new_session(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
) -> None:
    """Several requests meet the same refusal: one new session for all."""
    client, camera = served
    await camera.stream_source()
    await admin(hass, emulator, "POST", "sessions/expire", {})
    responses = await asyncio.gather(
        *(client.get(_local(camera, "media/0.m3u8")) for _ in range(5))
    )
    assert [r.status for r in responses] == [200] * 5
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 2


async def test_unknown_paths_are_not_found(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
) -> None:
    """A wrong secret, a media playlist or init section KVS does not list: 404.

    Never 401 or 403: Home Assistant's ban filter could count those against
    the local address FFmpeg comes from. Unloaded, the camera's paths are gone.
    """
    await setup_entry(hass, config_entry)
    client = await serve_home_assistant(hass, hass_client_no_auth)
    camera = _camera(hass)
    wrong = camera._proxy.path.replace(camera._proxy.secret, "x" * 43)
    assert (await client.get(wrong)).status == 404
    assert (await client.get(_local(camera, "media/1.m3u8"))).status == 404
    assert (await client.get(_local(camera, "media/0.1.mp4"))).status == 404
    assert (await client.get(_local(camera, "media/0.0.mp4"))).status == 200
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert (await client.get(camera._proxy.path)).status == 404


async def test_no_session_is_unavailable(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
) -> None:
    """No session to be had (the camera sent nothing for 30 s): 503."""
    client, camera = served
    await admin(hass, emulator, "POST", "streams/front-door", {"online": False})
    await admin(hass, emulator, "POST", "clock", {"advance": 40})
    assert (await client.get(camera._proxy.path)).status == 503
    assert camera._live.session is None


@pytest.mark.parametrize("then", ["refused again", "no new session"])
async def test_refused_again_is_unavailable(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
    then: str,
) -> None:
    """The new session refused too, or none to be had: 503, and no loop."""
    client, camera = served
    await camera.stream_source()
    if then == "refused again":
        fault = {
            "operation": "GetHLSMasterPlaylist",
            "error": "NotAuthorizedException",
            "status": 403,
            "count": -1,
        }
        await admin(hass, emulator, "POST", "faults", fault)
    else:
        await admin(hass, emulator, "POST", "sessions/expire", {})
        await emulator_key(hass, emulator, denied=["GetHLSStreamingSessionURL"])
    assert (await client.get(camera._proxy.path)).status == 503
    log = await hass.async_add_executor_job(emulator.calls)
    assert log["counts"]["GetHLSStreamingSessionURL"] == 2


async def test_kvs_failure_is_a_bad_gateway(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
) -> None:
    """KVS answering 500, or not reachable: 502, and the session is kept."""
    client, camera = served
    await camera.stream_source()
    session = camera._live.session
    assert session is not None
    fault = {"operation": "GetHLSMediaPlaylist", "error": "InternalFailure", "count": 1}
    await admin(hass, emulator, "POST", "faults", fault)
    assert (await client.get(_local(camera, "media/0.m3u8"))).status == 502
    assert (await client.get(_local(camera, "media/0.m3u8"))).status == 200
    # A port nothing listens on: the network error a real outage gives.
    dead = replace(session, url="http://127.0.0.1:9/hls/v1/getHLSMasterPlaylist.m3u8")
    camera._live.session = dead
    assert (await client.get(camera._proxy.path)).status == 502
    assert camera._live.session is dead


# -- what the stream worker opens ---------------------------------------------


@pytest.mark.parametrize(
    ("host", "ssl", "expected"),
    [
        ("0.0.0.0", False, "http://127.0.0.1:8123"),  # every interface: loopback
        ("::", False, "http://[::1]:8123"),
        ("192.168.1.5", True, "https://192.168.1.5:8123"),  # bound to one address
        ("fd00::5", False, "http://[fd00::5]:8123"),
    ],
)
async def test_local_base_url(
    hass: HomeAssistant, host: str, ssl: bool, expected: str
) -> None:
    """Home Assistant's own socket: loopback, or the one address it binds to."""
    assert await async_setup_component(hass, "http", {})
    hass.config.api = ApiConfig("10.0.0.2", host, 8123, ssl)
    assert local_base_url(hass) == expected


@pytest.mark.parametrize("why", ["no address", "client certificates"])
async def test_session_url_when_the_worker_cannot_come_in(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    why: str,
) -> None:
    """No address of Home Assistant's own, or it asks for a client certificate.

    The stream worker then plays the session URL itself.
    """
    await setup_entry(hass, config_entry)
    if why == "no address":
        hass.config.api = None
    else:
        require_client_certificates(hass)
    camera = _camera(hass)
    source = await camera.stream_source()
    assert camera._live.session is not None
    assert source == camera._live.session.url


# -- sequence numbers and URIs, across sessions -------------------------------


def _playlist(first: int | None, fragments: list[int], token: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2"]
    if first is not None:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first}")
    lines += [
        f'#EXT-X-MAP:URI="getMP4InitFragment.mp4?SessionToken={token}"',
        '#EXT-X-KEY:METHOD=NONE,URI="key?SessionToken=' + token + '"',
    ]
    for number in fragments:
        lines += [
            "#EXTINF:2.000,",
            f"getMP4MediaFragment.mp4?FragmentNumber={number}&SessionToken={token}",
        ]
    return "\n".join(lines) + "\n"


def _numbers(text: str) -> tuple[int, list[str]]:
    lines = text.splitlines()
    first = next(
        int(x.split(":")[1]) for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")
    )
    return first, [x for x in lines if x and x[0] != "#"]


BASE = "https://kvs.example/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=A"


def _session(token: str) -> SessionUrl:
    return SessionUrl(url=f"{BASE[:-1]}{token}", expires_at=dt_util.utcnow())


def test_sequence_numbers_continue_across_sessions() -> None:
    """A new session that numbers anew keeps each segment's first number.

    KVS's numbering of a new session is not ours to rely on: one that starts
    again from 0 (or jumps) must not move FFmpeg's sequence backwards.
    """
    playlist = _MediaPlaylist(0)
    session_a, session_b = _session("A"), _session("B")
    first, segments = _numbers(
        playlist.rewrite(session_a, _playlist(40, [100, 101, 102], "A"), BASE)
    )
    assert first == 40  # KVS's own, the first time
    assert segments[0] == (
        "https://kvs.example/hls/v1/getMP4MediaFragment.mp4"
        "?FragmentNumber=100&SessionToken=A"
    )
    # A new session, numbered from 0, overlapping: the same numbers go on.
    text = playlist.rewrite(session_b, _playlist(0, [101, 102, 103], "B"), BASE)
    assert _numbers(text)[0] == 41
    assert playlist.session is session_b
    assert playlist.inits == [
        "https://kvs.example/hls/v1/getMP4InitFragment.mp4?SessionToken=B"
    ]
    assert '#EXT-X-MAP:URI="0.0.mp4"' in text
    assert 'URI="https://kvs.example/hls/v1/key?SessionToken=B"' in text
    # No segment in common: on after the last number given.
    text = playlist.rewrite(session_b, _playlist(7, [200, 201], "B"), BASE)
    assert _numbers(text)[0] == 44
    # No EXT-X-MEDIA-SEQUENCE (0 by the spec): ours is added.
    text = playlist.rewrite(session_b, _playlist(None, [202], "B"), BASE)
    assert text.splitlines()[1] == "#EXT-X-MEDIA-SEQUENCE:46"


def test_sequence_numbers_of_an_empty_first_playlist_and_bounded_memory() -> None:
    """No segment yet: KVS's number; segments without FragmentNumber by URI."""
    playlist = _MediaPlaylist(0)
    text = playlist.rewrite(_session("A"), _playlist(None, [], "A"), BASE)
    assert "#EXT-X-MEDIA-SEQUENCE" not in text  # 0: nothing to add
    many = "\n".join(
        ["#EXTM3U", "#EXT-X-MEDIA-SEQUENCE:5"]
        + [f"#EXTINF:1,\nseg{n}.ts" for n in range(SEQUENCES_KEPT + 20)]
    )
    assert _numbers(playlist.rewrite(_session("A"), many, BASE))[0] == 0
    assert len(playlist._numbers) == SEQUENCES_KEPT
    again = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9\n#EXTINF:1,\nseg119.ts\n"
    assert _numbers(playlist.rewrite(_session("A"), again, BASE))[0] == 119


def test_master_names_every_media_playlist() -> None:
    """Variant and rendition playlists become media/<index>.m3u8."""
    master = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",URI="audio.m3u8?T=1"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"\n'
        "\n"
        "getHLSMediaPlaylist.m3u8?SessionToken=A&TrackNumber=1\n"
    )
    local, urls = _local_master(master, "https://kvs.example/hls/v1/master.m3u8")
    assert 'URI="media/0.m3u8"' in local
    assert local.splitlines()[-1] == "media/1.m3u8"
    assert urls == [
        "https://kvs.example/hls/v1/audio.m3u8?T=1",
        "https://kvs.example/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=A&TrackNumber=1",
    ]


# -- early expiry against the real stream worker -------------------------------


def _codes(init: bytes, data: bytes) -> list[int | None]:
    with av.open(io.BytesIO(init + data)) as container:
        return [
            read_frame_index(frame.to_ndarray(format="rgb24"))
            for frame in container.decode(video=0)
        ]


async def _expire_in_a_window(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    camera: KinesisVideoCamera,
    when: str,
) -> None:
    """Expire every session right after the proxy answered a playlist or init.

    The narrow moments between FFmpeg's requests: after the playlist that
    lists a new segment (its init section and segment still to load), or after
    that init section (the segment still to load). The proxy's own methods
    are wrapped to find the moment; what it answers is unchanged.
    """
    proxy = camera._proxy
    fired = asyncio.Event()
    if when == "after_playlist":
        media = proxy.async_media
        seen: list[str] = []

        async def media_then_expire(index: int) -> str:
            text = await media(index)
            newest = [x for x in text.splitlines() if x and x[0] != "#"][-1]
            if seen and newest != seen[-1] and not fired.is_set():
                fired.set()
                await admin(hass, emulator, "POST", "sessions/expire", {})
            seen.append(newest)
            return text

        proxy.async_media = media_then_expire  # type: ignore[method-assign]
    else:
        init = proxy.async_init

        async def init_then_expire(index: int, part: int) -> bytes:
            data = await init(index, part)
            if not fired.is_set():
                fired.set()
                await admin(hass, emulator, "POST", "sessions/expire", {})
            return data

        proxy.async_init = init_then_expire  # type: ignore[method-assign]
    async with asyncio.timeout(30):
        await fired.wait()


@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.parametrize(
    "when",
    [
        0.0,  # seconds after a segment: FFmpeg waits for the next one
        0.7,
        1.4,
        "after_playlist",
        "after_init",
    ],
)
async def test_early_expiry_at_any_moment(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    served: tuple[Any, KinesisVideoCamera],
    when: float | str,
) -> None:
    """KVS ends the session early at several moments of the worker's cycle.

    Prints the seconds from the expiry to the next segment and the seconds of
    video lost (frame codes missing from Home Assistant's segments); asserts
    only that segments come on from the same output and the viewer's playlist
    never answers 404.
    """
    assert await async_setup_component(hass, "stream", {})
    client, camera = served
    stream = await camera.async_create_stream()
    assert stream is not None
    output = stream.add_provider(HLS_PROVIDER)
    await stream.start()
    playlist = stream.endpoint_url(HLS_PROVIDER).replace("master_playlist", "playlist")
    statuses: list[int] = []
    decoded: dict[int, list[int | None]] = {}

    async def viewer() -> None:
        while True:
            async with client.get(playlist) as response:
                statuses.append(response.status)
            await asyncio.sleep(1)

    async def decode_new() -> None:
        for segment in list(output.get_segments()):
            if segment.complete and segment.sequence not in decoded:
                data = b"".join(part.data for part in segment.parts)
                decoded[segment.sequence] = await hass.async_add_executor_job(
                    _codes, segment.init, data
                )

    watching: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(30):
            while output.last_sequence < 2:
                await output.recv()
            await output.recv()
        watching = asyncio.create_task(viewer())
        await decode_new()
        first = camera._live.session
        if isinstance(when, float):
            await asyncio.sleep(when)
            await admin(hass, emulator, "POST", "sessions/expire", {})
        else:
            await _expire_in_a_window(hass, emulator, camera, when)
        expired = time.monotonic()
        start = output.last_sequence
        arrivals: list[float] = []
        async with asyncio.timeout(45):
            while len(arrivals) < 4:
                assert stream.outputs().get(HLS_PROVIDER) is output, "stream stopped"
                await output.recv()
                if output.last_sequence > start + len(arrivals):
                    arrivals.append(time.monotonic() - expired)
                    await decode_new()
        assert camera._live.session is not first
        assert 404 not in statuses
        assert statuses
        codes = [c for sequence in sorted(decoded) for c in decoded[sequence]]
        assert None not in codes
        lost = sum(
            (b - a) % CODE_CYCLE - 1
            for a, b in pairwise(c for c in codes if c is not None)
        )
        print(
            f"\nearly expiry at {when}: next segment after {arrivals[0]:.2f} s,"
            f" {lost / FPS:.1f} s of video lost"
        )
    finally:
        if watching is not None:
            watching.cancel()
        await stream.stop()
        output.cleanup()
