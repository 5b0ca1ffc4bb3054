"""Camera entities: live URLs, refresh across expiry, stills, availability."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from typing import Any

import av
import boto3
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.components.stream import HLS_PROVIDER
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kinesis_video.camera import KinesisVideoCamera
from custom_components.kinesis_video.const import (
    DOMAIN,
    SESSION_CHECK_INTERVAL,
    STATUS_POLL_INTERVAL,
    URL_REFRESH_MARGIN,
    URL_RETRY_MIN,
)
from kvs_emulator.framecode import read_frame_index
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, emulator_key, setup_entry
from .live_http import require_client_certificates, serve_home_assistant


def _camera(hass: HomeAssistant, entity_id: str) -> KinesisVideoCamera:
    camera = hass.data[DATA_COMPONENT].get_entity(entity_id)
    assert isinstance(camera, KinesisVideoCamera)
    return camera


async def test_entities_and_devices(
    hass: HomeAssistant, config_entry: MockConfigEntry, stream_arns: dict[str, str]
) -> None:
    """One device and one camera per stream, keyed by ARN."""
    await setup_entry(hass, config_entry)
    entity = er.async_get(hass).async_get("camera.front_door")
    assert entity is not None
    assert entity.unique_id == stream_arns["front-door"]
    device = dr.async_get(hass).async_get(entity.device_id or "")
    assert device is not None
    assert device.name == "front-door"
    assert device.identifiers == {(DOMAIN, stream_arns["front-door"])}
    assert hass.states.get("camera.front_door").state == "idle"
    assert hass.states.get("camera.backyard").state == "idle"


async def test_live_url_is_reused(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """One GetHLSStreamingSessionURL serves every view until near expiry.

    The stream source is the camera's local playlist, which reads that session.
    """
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    first = await async_get_stream_source(hass, "camera.front_door")
    second = await async_get_stream_source(hass, "camera.front_door")
    assert first == second
    assert first is not None
    assert (
        first
        == f"http://127.0.0.1:8123/api/kinesis_video/live/{camera._proxy.secret}/master.m3u8"
    )
    session = camera._live.session
    assert session is not None
    assert "getHLSMasterPlaylist.m3u8?SessionToken=" in session.url
    assert (await calls(hass, emulator)).get("GetHLSStreamingSessionURL") == 1


async def test_expiring_url_replaced_and_idle_refresh_fetches_nothing(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Near expiry a view gets a new URL; with nobody watching no call is made."""
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    source = await async_get_stream_source(hass, "camera.front_door")
    first = camera._live.session
    assert first is not None
    # The refresh alarm fires with no stream running: it only forgets the URL.
    freezer.tick(timedelta(seconds=3600) - URL_REFRESH_MARGIN + timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (await calls(hass, emulator)).get("GetHLSStreamingSessionURL") == 1
    assert camera._live.session is None
    # The same local source, on a new session.
    assert await async_get_stream_source(hass, "camera.front_door") == source
    second = camera._live.session
    assert second is not None
    assert second.url != first.url
    assert (await calls(hass, emulator)).get("GetHLSStreamingSessionURL") == 2


async def test_no_recent_video_gives_no_url(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A camera offline for more than 30 s has no live URL (LIVE is refused)."""
    await setup_entry(hass, config_entry)
    await admin(hass, emulator, "POST", "streams/front-door", {"online": False})
    await admin(hass, emulator, "POST", "clock", {"advance": 40})
    assert await async_get_stream_source(hass, "camera.front_door") is None


async def test_refused_keys_start_reauth(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A key AWS no longer knows, met on the live URL call, starts reauth."""
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, remove=True)
    assert await async_get_stream_source(hass, "camera.front_door") is None
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_policy_without_live_view_warns_without_reauth(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A policy lacking GetHLSStreamingSessionURL: a warning, no reauth loop."""
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, denied=["GetHLSStreamingSessionURL"])
    assert await async_get_stream_source(hass, "camera.front_door") is None
    await hass.async_block_till_done()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    assert "No live view of front-door" in caplog.text
    assert "kinesisvideo:GetHLSStreamingSessionURL" in caplog.text


async def _segments_after(stream_output: object, count: int, wait: float = 30) -> int:
    """Wait (real time: the worker reads live video) until ``count`` more segments."""
    start = stream_output.last_sequence  # type: ignore[attr-defined]
    async with asyncio.timeout(wait):
        while stream_output.last_sequence < start + count:  # type: ignore[attr-defined]
            await stream_output.recv()  # type: ignore[attr-defined]
    return int(stream_output.last_sequence)  # type: ignore[attr-defined]


def _decode_segment(init: bytes, data: bytes) -> list[int | None]:
    """Decode one HLS segment made by Home Assistant; frame codes of its frames."""
    with av.open(io.BytesIO(init + data)) as container:
        return [
            read_frame_index(frame.to_ndarray(format="rgb24"))
            for frame in container.decode(video=0)
        ]


@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_playback_continues_across_url_expiries(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
) -> None:
    """Home Assistant's stream keeps producing segments across two expiries.

    Each time, the camera's refresh (the job its timer runs at expiry minus the
    margin) takes a new session, which the stream's local playlists read from
    then on; then the emulator expires the old session (403 from then on), so
    the worker can only go on with the fresh one. The job is called directly:
    firing Home Assistant's clock an hour ahead would also fire the stream's
    own idle timer and stop it.
    """
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    await serve_home_assistant(hass, hass_client_no_auth)
    camera = _camera(hass, "camera.front_door")
    stream = await camera.async_create_stream()
    assert stream is not None
    stream.add_provider(HLS_PROVIDER)
    await stream.start()
    output = stream.outputs()[HLS_PROVIDER]
    try:
        await _segments_after(output, 2)
        for _ in range(2):
            session = camera._live.session
            assert session is not None
            await camera._live._async_refresh(session.expires_at - URL_REFRESH_MARGIN)
            assert camera._live.session is not session
            assert stream.source == camera._proxy.url()
            # As in real use (refresh 60 s early), the old URL expires only after
            # the worker has moved on to the new one.
            await _segments_after(output, 2)
            await admin(hass, emulator, "POST", "sessions/expire", {"keep_newest": 1})
            await _segments_after(output, 2)
            # The newest segment may still be growing: take the newest whole one.
            segment = next(s for s in reversed(output.get_segments()) if s.complete)
            codes = await hass.async_add_executor_job(
                _decode_segment, segment.init, b"".join(p.data for p in segment.parts)
            )
            assert len(codes) >= 10
            assert None not in codes
        assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 3
        # The worker had moved on before each old session expired: no request
        # of the stream was refused, so no 403 (and no error log) on the way.
        log = await hass.async_add_executor_job(emulator.calls)
        refused = [
            (c["operation"], c["status"]) for c in log["calls"] if c["status"] != 200
        ]
        assert refused == []
    finally:
        await stream.stop()
        output.cleanup()  # its idle timer outlives a stopped stream


async def test_still_at_requested_size_and_cached(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Stills come from GetImages at the asked size, reused for a while."""
    await setup_entry(hass, config_entry)
    image = await async_get_image(hass, "camera.front_door", width=640, height=360)
    assert image.content_type == "image/jpeg"
    with av.open(io.BytesIO(image.content)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    before = (await calls(hass, emulator))["GetImages"]
    again = await async_get_image(hass, "camera.front_door", width=640, height=360)
    assert again.content == image.content
    assert (await calls(hass, emulator))["GetImages"] == before


async def test_still_failure_keeps_last_image(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A failed GetImages after the cache expired serves the last good still."""
    await setup_entry(hass, config_entry)
    image = await async_get_image(hass, "camera.backyard")
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetImages", "error": "InvalidArgumentException", "count": 5},
    )
    freezer.tick(timedelta(seconds=31))
    again = await async_get_image(hass, "camera.backyard")
    assert again.content == image.content


async def test_unavailable_and_back(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not ACTIVE, deleted or unreachable: unavailable; logged once each way."""
    caplog.set_level(logging.INFO, logger="custom_components.kinesis_video")
    # Six polls of every stream pass within a fraction of a real second, and the
    # emulator meters TPS on real time (as AWS does): it would throttle a burst
    # that never happens. Its immediate retries (no delay in tests) then drain
    # the client's ListFragments pacer, whose wait on the frozen loop clock
    # never ends: the test hung. This test is not about rate limits.
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    await setup_entry(hass, config_entry)

    async def poll() -> None:
        freezer.tick(STATUS_POLL_INTERVAL)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)

    await admin(hass, emulator, "POST", "streams/front-door", {"status": "UPDATING"})
    await poll()
    assert hass.states.get("camera.front_door").state == STATE_UNAVAILABLE
    assert hass.states.get("camera.backyard").state == "idle"
    await poll()
    assert caplog.text.count("Stream front-door is unavailable: status UPDATING") == 1
    await admin(hass, emulator, "POST", "streams/front-door", {"status": "ACTIVE"})
    await poll()
    assert hass.states.get("camera.front_door").state == "idle"
    assert caplog.text.count("Stream front-door is available again") == 1

    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "DescribeStream", "error": "InternalFailure", "count": -1},
    )
    await poll()
    assert hass.states.get("camera.front_door").state == STATE_UNAVAILABLE
    assert hass.states.get("camera.backyard").state == STATE_UNAVAILABLE
    assert "Could not read the stream status" in caplog.text
    await admin(hass, emulator, "DELETE", "faults")
    await poll()
    assert hass.states.get("camera.backyard").state == "idle"
    log = await hass.async_add_executor_job(emulator.calls)
    assert [
        c for c in log["calls"] if c["error"] == "ClientLimitExceededException"
    ] == []


async def test_policy_without_describe_stream_no_reauth(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DescribeStream denied by the policy: unavailable and logged, no reauth."""
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, denied=["DescribeStream"])
    freezer.tick(STATUS_POLL_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("camera.front_door").state == STATE_UNAVAILABLE
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    assert "The access key may not read the stream status" in caplog.text


async def test_deleted_stream_unavailable(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    stream_arns: dict[str, str],
) -> None:
    """A stream deleted in AWS makes its camera unavailable."""
    await setup_entry(hass, config_entry)

    def delete() -> None:
        client = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        client.delete_stream(StreamARN=stream_arns["backyard"])

    await hass.async_add_executor_job(delete)
    freezer.tick(STATUS_POLL_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("camera.backyard").state == STATE_UNAVAILABLE


async def test_no_retention_repair_issue(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """0 h retention raises a repair issue; fixing it in AWS clears it."""
    await admin(hass, emulator, "POST", "streams/backyard", {"retention_hours": 0})
    await setup_entry(hass, config_entry)
    issues = ir.async_get(hass)
    issue_id = f"no_data_retention_{config_entry.entry_id}_backyard"
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"stream": "backyard"}
    await admin(hass, emulator, "POST", "streams/backyard", {"retention_hours": 24})
    freezer.tick(STATUS_POLL_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_repair_issues_belong_to_their_entry(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Removing a stream, or the whole entry, removes its issue (and no other's).

    Another entry's issue for a stream of the same name is made up here: the
    emulator serves one account, so a second entry of its own cannot exist.
    """
    await admin(hass, emulator, "POST", "streams/backyard", {"retention_hours": 0})
    await setup_entry(hass, config_entry)
    issues = ir.async_get(hass)
    mine = f"no_data_retention_{config_entry.entry_id}_backyard"
    other = "no_data_retention_other-entry_backyard"
    ir.async_create_issue(
        hass,
        DOMAIN,
        other,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="no_data_retention",
        translation_placeholders={"stream": "backyard"},
    )
    assert issues.async_get_issue(DOMAIN, mine) is not None
    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, mine) is None
    assert issues.async_get_issue(DOMAIN, other) is not None


async def test_unload(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    """Unloading removes the cameras' state."""
    await setup_entry(hass, config_entry)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("camera.front_door").state == STATE_UNAVAILABLE


async def test_setup_retries_when_unreachable(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """The service failing at start-up: setup retried later, not failed."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "DescribeStream", "error": "InternalFailure", "count": -1},
    )
    await setup_entry(hass, config_entry)
    assert config_entry.state.name == "SETUP_RETRY"
    await admin(hass, emulator, "DELETE", "faults")


async def test_diagnostics_redacts_secrets(
    hass: HomeAssistant,
    hass_client: object,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
) -> None:
    """Keys and endpoint are redacted; stream status is there."""
    from pytest_homeassistant_custom_component.components.diagnostics import (
        get_diagnostics_for_config_entry,
    )

    await setup_entry(hass, config_entry)
    await async_get_stream_source(hass, "camera.front_door")
    result = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)
    text = str(result)
    assert emulator.secret_key not in text
    assert emulator.access_key not in text
    assert "SessionToken" not in text
    assert result["entry"]["data"]["secret_access_key"] == "**REDACTED**"
    assert len(result["streams"]) == 2


@pytest.mark.parametrize("source", ["local", "direct"])
async def test_revoked_session_replaced(
    hass: HomeAssistant,
    hass_client_no_auth: Any,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    *,
    freezer: FrozenDateTimeFactory,
    source: str,
) -> None:
    """A session KVS closed early (the 11th session revokes the oldest) is replaced.

    The stream's source is the camera's local playlist: its next request (the
    worker reloads it every segment) meets the 403 and answers from a new
    session at once. The periodic check is for a stream playing the session
    URL itself ("direct", when Home Assistant's server asks clients for a
    certificate): FFmpeg keeps retrying a refused playlist without reporting
    it, so while someone watches the camera checks the URL every 30 s and swaps
    in a new one on 403. The stream is created but not started: what is tested is the
    camera's side, not FFmpeg's retry loop.
    """
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    client = await serve_home_assistant(hass, hass_client_no_auth)
    if source == "direct":
        require_client_certificates(hass)
    camera = _camera(hass, "camera.front_door")
    stream = await camera.async_create_stream()
    assert stream is not None
    stream.add_provider(HLS_PROVIDER)  # someone watches (worker not started)
    first = camera._live.session
    assert first is not None
    assert stream.source == (camera._proxy.url() if source == "local" else first.url)

    async def tick() -> None:
        freezer.tick(SESSION_CHECK_INTERVAL)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)

    await tick()  # the URL still works: nothing changes
    assert camera._live.session is first

    def open_ten_sessions() -> None:
        client = boto3.client("kinesis-video-archived-media", **emulator.boto3_kwargs())
        for _ in range(10):
            client.get_hls_streaming_session_url(
                StreamName="front-door", PlaybackMode="LIVE"
            )

    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    await hass.async_add_executor_job(open_ten_sessions)
    await tick()
    if source == "local":
        assert camera._live.session is first  # no check: the playlist sees it
        media = camera._proxy.path.replace("master.m3u8", "media/0.m3u8")
        response = await client.get(media)
        assert response.status == 200
        assert "#EXTINF" in await response.text()
    assert camera._live.session is not first
    assert stream.source == (
        camera._proxy.url() if source == "local" else camera._live.session.url
    )
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == 12


async def test_nobody_watching_costs_no_live_video(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Once the last viewer left, stills and refreshes stop touching live video.

    Home Assistant keeps the Stream after its HLS output went idle; a still must
    then come from GetImages (asking the idle stream would start its worker and
    pull live video), the URL is let go at its refresh time, and a returning
    viewer gets a fresh URL in the reused stream.
    """
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    stream = await camera.async_create_stream()
    assert stream is not None
    output = stream.add_provider(HLS_PROVIDER)
    first = camera._live.session
    assert first is not None
    await stream.remove_provider(output)  # what the output's idle timer does
    before = await calls(hass, emulator)

    image = await async_get_image(hass, "camera.front_door", width=320)
    assert image.content.startswith(b"\xff\xd8")
    assert stream.outputs() == {}  # the worker was not asked for a keyframe
    freezer.tick(timedelta(seconds=3600) - URL_REFRESH_MARGIN + timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    after = await calls(hass, emulator)
    assert after["GetImages"] == before.get("GetImages", 0) + 1
    assert after["GetHLSStreamingSessionURL"] == before["GetHLSStreamingSessionURL"]
    assert camera._live.session is None

    assert await camera.async_create_stream() is stream
    assert camera._live.session is not None
    assert camera._live.session is not first
    assert stream.source == camera._proxy.url()
    assert (await calls(hass, emulator))["GetHLSStreamingSessionURL"] == (
        before["GetHLSStreamingSessionURL"] + 1
    )


async def test_returning_viewers_of_a_refused_key_share_one_call(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """20 viewers back at a kept stream while the key is refused: one call."""
    assert await async_setup_component(hass, "stream", {})
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    stream = await camera.async_create_stream()
    assert stream is not None
    camera._live.session = None  # let go while nobody watched
    await emulator_key(hass, emulator, denied=["GetHLSStreamingSessionURL"])
    await admin(hass, emulator, "DELETE", "calls")
    streams = await asyncio.gather(*(camera.async_create_stream() for _ in range(20)))
    assert all(s is stream for s in streams)
    log = await hass.async_add_executor_job(emulator.calls)
    assert len([c for c in log["calls"] if c["status"] != 200]) == 1
    warnings = [
        r
        for r in caplog.records
        if r.name.endswith(".live_session") and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1


async def test_still_cancelled_before_it_ran(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A still request cancelled before it started (shutdown) blocks nothing."""
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    # Started eagerly: it registers the shared fetch, which has not run yet.
    first = hass.async_create_task(camera.async_camera_image(320), eager_start=True)
    camera._still_tasks[(320, None)].cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert camera._still_tasks == {}
    image = await camera.async_camera_image(320)
    assert image is not None
    assert image.startswith(b"\xff\xd8")


async def test_remove_device_only_when_unconfigured(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Users may delete a device only once its stream is no longer configured."""
    from custom_components.kinesis_video import async_remove_config_entry_device

    await setup_entry(hass, config_entry)
    entity = er.async_get(hass).async_get("camera.front_door")
    assert entity is not None
    device = dr.async_get(hass).async_get(entity.device_id or "")
    assert device is not None
    assert not await async_remove_config_entry_device(hass, config_entry, device)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "streams": []}
    )
    assert await async_remove_config_entry_device(hass, config_entry, device)
    await hass.async_block_till_done()  # the reload the options change started


async def test_device_of_a_stream_deleted_in_aws_can_be_removed(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    stream_arns: dict[str, str],
) -> None:
    """A stream gone from AWS: its device may be deleted, and leaves the options."""
    from custom_components.kinesis_video import async_remove_config_entry_device

    await setup_entry(hass, config_entry)
    kvs = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    await hass.async_add_executor_job(
        lambda: kvs.delete_stream(StreamARN=stream_arns["backyard"])
    )
    freezer.tick(STATUS_POLL_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("camera.backyard").state == STATE_UNAVAILABLE
    registry = er.async_get(hass)
    devices = dr.async_get(hass)
    front = devices.async_get(registry.async_get("camera.front_door").device_id)
    back = devices.async_get(registry.async_get("camera.backyard").device_id)
    assert front is not None
    assert back is not None
    # front-door still exists in AWS: it is unticked in the options, not here.
    assert not await async_remove_config_entry_device(hass, config_entry, front)
    assert await async_remove_config_entry_device(hass, config_entry, back)
    assert config_entry.options["streams"] == [stream_arns["front-door"]]
    await hass.async_block_till_done()  # the reload it scheduled
    assert hass.states.get("camera.front_door").state == "idle"


async def test_concurrent_stills_share_one_call(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Ten dashboards asking at once for the same size: one GetImages (billed)."""
    await setup_entry(hass, config_entry)
    before = (await calls(hass, emulator)).get("GetImages", 0)
    images = await asyncio.gather(
        *(async_get_image(hass, "camera.front_door", width=320) for _ in range(10))
    )
    assert len({image.content for image in images}) == 1
    assert images[0].content.startswith(b"\xff\xd8")
    assert (await calls(hass, emulator))["GetImages"] == before + 1


async def test_cancelled_still_request_does_not_cancel_the_others(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """The first requester goes away; the one waiting with it still gets the still."""
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    await camera.async_camera_image(160)  # the data endpoint is known from now on
    first = asyncio.create_task(camera.async_camera_image(320))
    second = asyncio.create_task(camera.async_camera_image(320))
    await asyncio.sleep(0)  # both are waiting for GetImages now
    first.cancel()
    image = await second
    assert image is not None
    assert image.startswith(b"\xff\xd8")
    assert first.cancelled()
    await hass.async_block_till_done()
    assert (await calls(hass, emulator))["GetImages"] == 2


async def test_still_cache_is_bounded(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Stills at many sizes: only the few most recently used sizes are kept."""
    # Nine GetImages in a row: not about rate limits (metered on real time).
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    await setup_entry(hass, config_entry)
    camera = _camera(hass, "camera.front_door")
    widths = [160 * n for n in range(1, 10)]
    for width in widths:
        assert await camera.async_camera_image(width) is not None
    # Reading a cached size makes it the most recently used.
    assert await camera.async_camera_image(widths[-4]) is not None
    assert list(camera._stills) == [
        (width, None) for width in [*widths[-3:], widths[-4]]
    ]
    assert (await calls(hass, emulator))["GetImages"] == len(widths)


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"remove": True}, "Credentials were refused for stream front-door"),
        ({"denied": ["GetHLSStreamingSessionURL"]}, "No live view of front-door"),
    ],
)
async def test_refused_live_view_backs_off_and_warns_once(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    *,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, object],
    warning: str,
) -> None:
    """20 viewers of a camera whose key is refused: one call and one warning.

    Until the back-off has passed, viewers get no URL without a call; after it,
    one call again, refused without a second warning. Once the key works again,
    the next viewer gets a URL and the recovery is logged.
    """
    caplog.set_level(logging.INFO, logger="custom_components.kinesis_video")
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, **change)
    await admin(hass, emulator, "DELETE", "calls")
    sources = await asyncio.gather(
        *(async_get_stream_source(hass, "camera.front_door") for _ in range(20))
    )
    assert sources == [None] * 20
    freezer.tick(timedelta(seconds=5))
    assert await async_get_stream_source(hass, "camera.front_door") is None
    # One request refused (a removed key already at GetDataEndpoint).
    log = await hass.async_add_executor_job(emulator.calls)
    assert len([c for c in log["calls"] if c["status"] != 200]) == 1
    assert caplog.text.count(warning) == 1
    freezer.tick(URL_RETRY_MIN)
    assert await async_get_stream_source(hass, "camera.front_door") is None
    log = await hass.async_add_executor_job(emulator.calls)
    assert len([c for c in log["calls"] if c["status"] != 200]) == 2
    assert caplog.text.count(warning) == 1
    await hass.async_block_till_done()

    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {
            "access_key": emulator.access_key,
            "secret_key": emulator.secret_key,
            "denied": False,
        },
    )
    freezer.tick(URL_RETRY_MIN * 2)
    assert await async_get_stream_source(hass, "camera.front_door") is not None
    assert "Live view of front-door works again" in caplog.text
    assert caplog.text.count(warning) == 1
