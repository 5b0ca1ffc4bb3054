"""AWS calls per hour, counted on the emulator: viewing and an idle dashboard.

An hour is simulated with Home Assistant's clock (freezegun) while the emulator
counts every request. The counts are bounded by design (URL reuse, still cache,
poll intervals), so they are asserted exactly enough to catch a regression that
would turn a view or a dashboard refresh into extra billed calls.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import async_get_image
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.components.stream import HLS_PROVIDER
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kinesis_video.const import CONF_STREAMS
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin

API_CALLS = {
    "DescribeStream",
    "GetDataEndpoint",
    "GetHLSStreamingSessionURL",
    "GetImages",
    "ListFragments",
}


async def _hour(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    freezer: FrozenDateTimeFactory,
    step: timedelta,
    each: object,
) -> None:
    """Advance both clocks one hour in ``step``s, awaiting ``each()`` every step."""
    # The hour passes in a few seconds of real time, and the emulator meters TPS
    # on real time (as AWS does): its limits would see a burst that never happens.
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    await admin(hass, emulator, "POST", "clock", {"freeze": True})
    elapsed = timedelta()
    while elapsed < timedelta(hours=1):
        freezer.tick(step)
        await admin(hass, emulator, "POST", "clock", {"advance": step.total_seconds()})
        elapsed += step
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        await each()  # type: ignore[operator]


async def _counts(hass: HomeAssistant, emulator: EmulatorProcess) -> dict[str, int]:
    log = await hass.async_add_executor_job(emulator.calls)
    return {op: n for op, n in log["counts"].items() if op in API_CALLS}


async def test_calls_per_camera_hour_of_viewing(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One camera watched for an hour: one URL per lifetime, no per-view calls."""
    options = dict(config_entry.options)
    options[CONF_STREAMS] = options[CONF_STREAMS][:1]
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options=options)
    assert await async_setup_component(hass, "stream", {})
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    camera = hass.data[DATA_COMPONENT].get_entity("camera.front_door")
    assert camera is not None
    await admin(hass, emulator, "DELETE", "calls")
    # Someone is watching (the stream has its HLS output) but the worker is not
    # started: the count is about the integration's calls, not the player's
    # segment requests.
    stream = await camera.async_create_stream()
    assert stream is not None
    stream.add_provider(HLS_PROVIDER)

    async def nothing() -> None:
        return None

    await _hour(hass, emulator, freezer, timedelta(seconds=30), nothing)
    counts = await _counts(hass, emulator)
    print(f"AWS calls per camera-hour of viewing: {counts}")
    # The first URL plus one refresh before it expires (lifetime 3600 s).
    assert counts["GetHLSStreamingSessionURL"] == 2
    assert counts["GetDataEndpoint"] <= 1
    assert counts["DescribeStream"] == 12
    # Stream health: one ListFragments per 30 s poll.
    assert counts["ListFragments"] <= 120
    assert counts.get("GetImages", 0) == 0


async def test_calls_per_hour_of_idle_dashboard(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A dashboard refreshing a camera's still every 10 s for an hour."""
    options = dict(config_entry.options)
    options[CONF_STREAMS] = options[CONF_STREAMS][:1]
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options=options)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await admin(hass, emulator, "DELETE", "calls")

    async def refresh_card() -> None:
        await async_get_image(hass, "camera.front_door", width=640)

    await _hour(hass, emulator, freezer, timedelta(seconds=10), refresh_card)
    counts = await _counts(hass, emulator)
    print(f"AWS calls per hour of an idle dashboard: {counts}")
    # 360 card refreshes, one GetImages per 30 s still-cache period.
    assert counts["GetImages"] <= 120
    assert counts.get("GetHLSStreamingSessionURL", 0) == 0
    assert counts["DescribeStream"] == 12
    assert counts["ListFragments"] <= 120
