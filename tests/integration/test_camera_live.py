"""Camera: stills at every size the frontend asks, streaming state, early expiry."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import replace
from typing import Any
from unittest.mock import patch

import av
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.components.stream import HLS_PROVIDER, Stream
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kinesis_video.camera import NO_IMAGE, KinesisVideoCamera
from custom_components.kinesis_video.const import SESSION_CHECK_INTERVAL
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, setup_entry
from .live_http import require_client_certificates, serve_home_assistant

JPEG = b"\xff\xd8"


def _camera(hass: HomeAssistant, entity_id: str) -> KinesisVideoCamera:
    camera = hass.data[DATA_COMPONENT].get_entity(entity_id)
    assert isinstance(camera, KinesisVideoCamera)
    return camera


@pytest.mark.parametrize(
    "query",
    [
        "width=1014&height=0",  # the more-info dialog
        "width=0&height=0",
        "width=0",
        "height=0",
        "width=0&height=361",
        "width=641",
        "width=1&height=1",
        "width=99999&height=99999",  # beyond GetImages' 3840 x 2160
        "width=-5",
        "",
    ],
)
async def test_still_at_every_size_the_frontend_asks(
    hass: HomeAssistant,
    hass_client: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    query: str,
) -> None:
    """Through Home Assistant's camera proxy: a JPEG for every size, never a 500.

    0 means "keep the aspect ratio"; GetImages refuses 0 (its minimum is 1) and
    sizes above 3840 x 2160, so those never reach it.
    """
    await setup_entry(hass, config_entry)
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/camera.front_door?{query}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert (await response.read()).startswith(JPEG)
    log = await hass.async_add_executor_job(emulator.calls)
    assert [c for c in log["calls"] if c["status"] != 200] == []


@pytest.mark.parametrize("cause", ["GetImages fails", "no media"])
@pytest.mark.parametrize("query", ["", "width=1014&height=0", "width=320"])
async def test_no_still_is_the_placeholder_not_a_500(
    hass: HomeAssistant,
    hass_client: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    *,
    cause: str,
    query: str,
) -> None:
    """No still and none cached: the "No image" JPEG through the camera proxy.

    Home Assistant's view answers 500 when a camera gives None. Sizes that
    would make it scale a JPEG (both width and height given) are not asked:
    it would scale the placeholder too.
    """
    await setup_entry(hass, config_entry)
    if cause == "no media":
        # A gap around now: GetImages answers NO_MEDIA for every moment.
        now = time.time()
        gap = {"gaps": [[now - 120, now + 120]]}
        await admin(hass, emulator, "POST", "streams/front-door", gap)
    else:
        await admin(
            hass,
            emulator,
            "POST",
            "faults",
            {"operation": "GetImages", "error": "InternalFailure", "count": -1},
        )
    placeholder = await hass.async_add_executor_job(NO_IMAGE.read_bytes)
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/camera.front_door?{query}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == placeholder
    assert (await calls(hass, emulator))["GetImages"] >= 1


async def test_placeholder_is_a_small_jpeg(hass: HomeAssistant) -> None:
    """The shipped placeholder decodes as a 640 x 360 JPEG of a few KB."""
    data = await hass.async_add_executor_job(NO_IMAGE.read_bytes)
    assert data.startswith(JPEG)
    assert len(data) < 8192
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)


async def test_still_failures_logged_once_and_recovery(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage of GetImages: one warning, no error, the placeholder; then info.

    Each request at a new size: none is served from the cache.
    """
    caplog.set_level(logging.INFO, logger="custom_components.kinesis_video")
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetImages", "error": "InternalFailure", "count": -1},
    )
    placeholder = await hass.async_add_executor_job(NO_IMAGE.read_bytes)
    for width in (320, 640, 480):
        assert await camera.async_camera_image(width) == placeholder
    ours = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert [r.levelno for r in ours if r.msg.startswith("No still")] == [
        logging.WARNING
    ]
    assert [r for r in ours if r.levelno >= logging.ERROR] == []
    await admin(hass, emulator, "DELETE", "faults")
    assert (await camera.async_camera_image(800) or b"").startswith(JPEG)
    assert caplog.text.count("Stills of front-door work again") == 1


async def test_unexpected_still_error_is_no_image(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug-like failure of a still: "no image" and one warning, not an error page.

    Mocked: the emulator answers by AWS's protocol, so every failure it can
    produce is a client error; this is about anything else.
    """
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    placeholder = await hass.async_add_executor_job(NO_IMAGE.read_bytes)
    with patch.object(
        camera._client, "latest_image", side_effect=RuntimeError("surprise")
    ):
        assert await camera.async_camera_image(320) == placeholder
        assert await camera.async_camera_image(640) == placeholder
    warnings = [r for r in caplog.records if r.msg.startswith("No still")]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
    assert warnings[0].exc_info is not None


async def _run_stream(camera: KinesisVideoCamera) -> tuple[Stream, Any]:
    stream = await camera.async_create_stream()
    assert stream is not None
    output = stream.add_provider(HLS_PROVIDER)
    await stream.start()
    return stream, output


async def _segments_after(
    stream: Stream, output: Any, count: int, wait: float = 30
) -> None:
    """Wait (real time) for ``count`` more segments of ``output``, still attached."""
    start = output.last_sequence
    async with asyncio.timeout(wait):
        while output.last_sequence < start + count:
            # A removed output answers at once: fail rather than spin.
            assert stream.outputs().get(HLS_PROVIDER) is output, "stream stopped"
            await output.recv()
            await asyncio.sleep(0)


@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_state_streaming_while_a_stream_runs(
    hass: HomeAssistant,
    hass_ws_client: Any,
    hass_client_no_auth: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    *,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The frontend opens the live view: "streaming"; once its output left: idle."""
    assert await async_setup_component(hass, "stream", {})
    # Before the server starts: it takes no new views once it runs.
    assert await async_setup_component(hass, "websocket_api", {})
    await setup_entry(hass, config_entry)
    await serve_home_assistant(hass, hass_client_no_auth)
    camera = _camera(hass, "camera.front_door")
    assert hass.states.get("camera.front_door").state == "idle"
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "camera/stream", "entity_id": "camera.front_door"}
    )
    answer = await client.receive_json()
    assert answer["success"], answer
    stream = camera.stream
    assert stream is not None
    try:
        await _segments_after(stream, stream.outputs()[HLS_PROVIDER], 1)
        assert hass.states.get("camera.front_door").state == "streaming"
        assert hass.states.get("camera.backyard").state == "idle"
        # A still now comes from the running stream's keyframe, not GetImages.
        before = (await calls(hass, emulator)).get("GetImages", 0)
        image = await camera.async_camera_image(320, 0)
        assert image is not None
        assert image.startswith(JPEG)
        assert (await calls(hass, emulator)).get("GetImages", 0) == before
    finally:
        output = stream.outputs()[HLS_PROVIDER]
        await stream.remove_provider(output)  # what its idle timer does
        output.cleanup()
    freezer.tick(SESSION_CHECK_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("camera.front_door").state == "idle"


@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.parametrize(
    ("source", "refresh_after"),
    [
        ("local", None),  # only what the camera notices itself
        ("local", 2.0),  # the refresh timer fires soon after
        ("local", 8.0),  # ... later
        # The session URL itself (the server asks clients for a certificate):
        ("direct", None),  # the camera checks when the worker fails
        ("direct", 2.0),  # the refresh comes during the worker's back-off
    ],
)
async def test_live_view_survives_an_early_expiry(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    *,
    source: str,
    refresh_after: float | None,
) -> None:
    """KVS ends the session early: the same stream goes on with a new session.

    Against Home Assistant's real stream worker and the emulator's HLS. Given
    the session URL itself, the worker failed within a moment of the expiry and
    waited before retrying; a new URL given with ``update_source`` during that
    wait used to stop the stream for good (the viewer's playlist answered 404).
    The worker now reads the camera's local playlists, which take a new session
    at the first 403 ("direct": it still plays the session URL, and the
    camera hands it a new one without stopping it). The viewer here polls Home
    Assistant's playlist as a player does; it must never get a 404, and
    segments must come again from the same output.
    """
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    client = await serve_home_assistant(hass, hass_client_no_auth)
    if source == "direct":
        require_client_certificates(hass)
    camera = _camera(hass, "camera.front_door")
    stream, output = await _run_stream(camera)
    playlist = stream.endpoint_url(HLS_PROVIDER).replace("master_playlist", "playlist")
    statuses: list[int] = []

    async def viewer() -> None:
        while True:
            async with client.get(playlist) as response:
                statuses.append(response.status)
            await asyncio.sleep(1)

    watching: asyncio.Task[None] | None = None
    try:
        await _segments_after(stream, output, 2)
        watching = asyncio.create_task(viewer())
        first = camera._live.session
        await admin(hass, emulator, "POST", "sessions/expire", {})
        if refresh_after is not None:
            await asyncio.sleep(refresh_after)
            await camera._live._async_refresh(dt_util.utcnow())
        # What the worker did, for a failure's message.
        diagnostics = stream._diagnostics.as_dict
        try:
            await _segments_after(stream, output, 2, wait=45)
        except TimeoutError:
            pytest.fail(f"no segments in 45 s: {statuses=} {diagnostics()=}")
        assert camera._live.session is not first
        assert stream.source == (
            camera._proxy.url() if source == "local" else camera._live.session.url
        )
        assert 404 not in statuses, (statuses, diagnostics())
        assert statuses
        # One new session at the first refused playlist; the refresh adds one
        # (or is the one, when it came before the next playlist request).
        counts = await calls(hass, emulator)
        assert counts["GetHLSStreamingSessionURL"] in (
            {2} if refresh_after is None else {2, 3}
        ), (counts, diagnostics())
    finally:
        if watching is not None:
            watching.cancel()
        await stream.stop()
        output.cleanup()


async def test_no_stream_without_recent_video(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A camera offline for more than 30 s: no stream is created."""
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    await admin(hass, emulator, "POST", "streams/front-door", {"online": False})
    await admin(hass, emulator, "POST", "clock", {"advance": 40})
    camera = _camera(hass, "camera.front_door")
    assert await camera.async_create_stream() is None
    assert camera.stream is None


async def test_unreachable_check_changes_nothing(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """The periodic check cannot reach KVS (network down): the URL is kept.

    The check is for a stream that plays the session URL itself, as when Home
    Assistant's server asks clients for a certificate (no local playlists).
    """
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    require_client_certificates(hass)
    camera = _camera(hass, "camera.front_door")
    stream = await camera.async_create_stream()
    assert stream is not None
    stream.add_provider(HLS_PROVIDER)  # someone watches (worker not started)
    session = camera._live.session
    assert session is not None
    # A port nothing listens on: the network error a real outage gives.
    camera._live.session = replace(session, url="http://127.0.0.1:9/playlist.m3u8")
    await camera._live._async_check(dt_util.utcnow())
    assert camera._live.session.url == "http://127.0.0.1:9/playlist.m3u8"
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 1
