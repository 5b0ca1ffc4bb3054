"""Stream health entities: receiving video, last fragment, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import boto3
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, EntityCategory
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)

from custom_components.kinesis_video.const import DOMAIN, HEALTH_POLL_INTERVAL
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, emulator_key, setup_entry

RECEIVING = "binary_sensor.front_door_receiving_video"
LAST = "sensor.front_door_last_fragment"
RETENTION = "sensor.front_door_data_retention"


@pytest.fixture(autouse=True)
def enable_last_fragment(
    hass: HomeAssistant, config_entry: MockConfigEntry, stream_arns: dict[str, str]
) -> None:
    """Enable front-door's last-fragment sensor (disabled by default)."""
    er.async_get(hass).async_get_or_create(
        "sensor",
        DOMAIN,
        f"{stream_arns['front-door']}_last_fragment",
        suggested_object_id="front_door_last_fragment",
    )


async def _sync_clock(hass: HomeAssistant, emulator: EmulatorProcess) -> None:
    """Freeze the emulator's clock at Home Assistant's (frozen) time.

    The emulator meters its TPS limits on real time, while these tests move time
    by minutes in milliseconds: that rate limit cannot apply here (the client's own
    pacing runs on the loop's clock, which follows the frozen time).
    """
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    now = dt_util.utcnow().timestamp()
    await admin(hass, emulator, "POST", "clock", {"set": now, "freeze": True})


async def _advance(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    freezer: FrozenDateTimeFactory,
    seconds: float,
) -> None:
    """Move both clocks, poll by poll."""
    step = HEALTH_POLL_INTERVAL.total_seconds()
    while seconds > 0:
        tick = min(step, seconds)
        await admin(hass, emulator, "POST", "clock", {"advance": tick})
        freezer.tick(timedelta(seconds=tick))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        seconds -= tick


async def test_entities(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    stream_arns: dict[str, str],
) -> None:
    """Three entities per stream, with categories, classes and translated names."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    registry = er.async_get(hass)
    receiving = registry.async_get(RECEIVING)
    assert receiving is not None
    assert receiving.unique_id == f"{stream_arns['front-door']}_receiving_video"
    assert receiving.translation_key == "receiving_video"
    assert receiving.entity_category is None
    last = registry.async_get(LAST)
    assert last is not None
    assert last.entity_category is EntityCategory.DIAGNOSTIC
    retention = registry.async_get(RETENTION)
    assert retention is not None
    assert retention.entity_category is EntityCategory.DIAGNOSTIC
    state = hass.states.get(RECEIVING)
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes["device_class"] == "connectivity"
    assert state.attributes["friendly_name"] == "front-door Receiving video"
    retention_state = hass.states.get(RETENTION)
    assert retention_state is not None
    assert retention_state.state == "24"
    assert retention_state.attributes["unit_of_measurement"] == "h"
    assert hass.states.get("binary_sensor.backyard_receiving_video") is not None
    # The last fragment changes at every poll: disabled unless asked for.
    other = registry.async_get("sensor.backyard_last_fragment")
    assert other is not None
    assert other.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get("sensor.backyard_last_fragment") is None
    # One ListFragments per stream at setup.
    assert (await calls(hass, emulator)).get("ListFragments") == 2


async def test_follows_camera_offline_and_back(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Off about a minute after the camera stops; on again once it sends."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    state = hass.states.get(LAST)
    assert state is not None
    seen = datetime.fromisoformat(state.state)
    assert dt_util.utcnow() - seen <= timedelta(seconds=4)

    await admin(hass, emulator, "POST", "streams/front-door", {"online": False})
    await _advance(hass, emulator, freezer, 30)
    assert hass.states.get(RECEIVING).state == STATE_ON  # still within the minute
    seen = datetime.fromisoformat(hass.states.get(LAST).state)
    await _advance(hass, emulator, freezer, 60)
    assert hass.states.get(RECEIVING).state == STATE_OFF
    # The last fragment stays what it was, not unknown.
    assert datetime.fromisoformat(hass.states.get(LAST).state) == seen
    assert hass.states.get("binary_sensor.backyard_receiving_video").state == STATE_ON

    await admin(hass, emulator, "POST", "streams/front-door", {"online": True})
    await _advance(hass, emulator, freezer, 30)
    assert hass.states.get(RECEIVING).state == STATE_ON
    assert datetime.fromisoformat(hass.states.get(LAST).state) > seen


async def test_poll_rate(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Two ListFragments a minute per stream, one coordinator for its entities."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    await admin(hass, emulator, "DELETE", "calls")
    await _advance(hass, emulator, freezer, 300)
    log = await hass.async_add_executor_job(emulator.calls)
    per_stream: dict[str | None, int] = {}
    for call in log["calls"]:
        if call["operation"] == "ListFragments":
            per_stream[call["stream"]] = per_stream.get(call["stream"], 0) + 1
    assert per_stream == {"front-door": 10, "backyard": 10}


async def test_failures(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed poll makes the health entities unavailable, not the retention."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {
            "operation": "ListFragments",
            "count": 2,
            "error": "InvalidArgumentException",
            "stream": "front-door",
        },
    )
    await _advance(hass, emulator, freezer, 30)
    assert hass.states.get(RECEIVING).state == STATE_UNAVAILABLE
    assert hass.states.get(LAST).state == STATE_UNAVAILABLE
    assert hass.states.get(RETENTION).state == "24"
    assert "Could not check whether the stream is receiving video" in caplog.text
    await _advance(hass, emulator, freezer, 60)
    assert hass.states.get(RECEIVING).state == STATE_ON


async def test_refused_key_starts_reauth(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused key on ListFragments asks for a new key; a policy without
    ListFragments only makes the health entities unavailable (no reauth loop)."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, denied=["ListFragments"])
    await _advance(hass, emulator, freezer, 30)
    assert hass.states.get(RECEIVING).state == STATE_UNAVAILABLE
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    assert "not authorized to perform kinesisvideo:ListFragments" in caplog.text

    await emulator_key(hass, emulator, remove=True)
    await _advance(hass, emulator, freezer, 30)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_clock_skew_does_not_start_reauth(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """AWS refusing the signing time says so; a new key would not help."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    await admin(hass, emulator, "POST", "config", {"max_skew_s": 300})
    # Requests signed an hour behind (botocore takes its signing time from this
    # function); the emulator checks it against the real time, as AWS does.
    wrong = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with patch("botocore.auth.get_current_datetime", return_value=wrong):
        freezer.tick(timedelta(seconds=30))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(RECEIVING).state == STATE_UNAVAILABLE
    assert "check Home Assistant's clock" in caplog.text
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_deleted_stream_receives_nothing(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    stream_arns: dict[str, str],
) -> None:
    """A stream deleted behind our back: not receiving, and the status says gone."""
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    client = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    await hass.async_add_executor_job(
        lambda: client.delete_stream(StreamARN=stream_arns["backyard"])
    )
    await _advance(hass, emulator, freezer, 30)
    health = config_entry.runtime_data.health[stream_arns["backyard"]]
    assert health.last_update_success
    assert health.data is not None
    assert not health.data.receiving
    assert health.data.last_fragment is not None
    # The health poll told the status poll at once: unavailable within 30 s,
    # not at the next 5-minute DescribeStream.
    assert hass.states.get("binary_sensor.backyard_receiving_video").state == (
        STATE_UNAVAILABLE
    )
    assert hass.states.get("camera.backyard").state == STATE_UNAVAILABLE
    # Unload releases everything.
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await asyncio.sleep(0)


async def test_stream_without_retention_is_not_polled(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """0 h retention: nothing can be listed, so no calls and no made-up "off"."""
    await _sync_clock(hass, emulator)
    await admin(hass, emulator, "POST", "streams/front-door", {"retention_hours": 0})
    await setup_entry(hass, config_entry)
    await _advance(hass, emulator, freezer, 120)
    assert hass.states.get(RECEIVING).state == STATE_UNAVAILABLE
    assert hass.states.get(LAST).state == STATE_UNAVAILABLE
    assert hass.states.get(RETENTION).state == "0"
    log = await hass.async_add_executor_job(emulator.calls)
    listed = {c["stream"] for c in log["calls"] if c["operation"] == "ListFragments"}
    assert listed == {"backyard"}
    assert hass.states.get("binary_sensor.backyard_receiving_video").state == STATE_ON


async def test_last_fragment_restored_while_camera_is_offline(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After a restart with the camera offline, the sensor keeps its last value."""
    before = (dt_util.utcnow() - timedelta(hours=3)).replace(microsecond=0)
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(LAST, before.isoformat()),
                {"native_value": before, "native_unit_of_measurement": None},
            )
        ],
    )
    await _sync_clock(hass, emulator)
    await admin(hass, emulator, "POST", "streams/front-door", {"online": False})
    await _advance(hass, emulator, freezer, 90)
    await setup_entry(hass, config_entry)
    assert hass.states.get(RECEIVING).state == STATE_OFF
    assert datetime.fromisoformat(hass.states.get(LAST).state) == before
    # Video again: the newer value wins.
    await admin(hass, emulator, "POST", "streams/front-door", {"online": True})
    await _advance(hass, emulator, freezer, 30)
    assert datetime.fromisoformat(hass.states.get(LAST).state) > before
