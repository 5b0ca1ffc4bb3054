"""A service outage (503 on every call): how fast entities follow it, what is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kinesis_video.const import STATUS_POLL_INTERVAL
from custom_components.kinesis_video.coordinator import _outage_once
from custom_components.kinesis_video.kvs import TokenBucket
from custom_components.kinesis_video.translated_errors import ServiceOutageError
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, setup_entry

CAMERA = "camera.front_door"
RECEIVING = "binary_sensor.front_door_receiving_video"
RETENTION = "sensor.front_door_data_retention"
ENTITIES = (CAMERA, RECEIVING, RETENTION)
OUTAGE = {
    "operation": "*",
    "count": -1,
    "error": "ServiceUnavailableException",
    "message": "Service is unavailable.",
}
STEP = 5  # seconds of simulated time between checks


@pytest.fixture(autouse=True)
def no_pacing_waits() -> Iterator[None]:
    """Let paced calls start at once.

    Every call of an outage is retried at once here (conftest's no_retry_delay),
    so a health poll spends its ListFragments burst and the pacer then sleeps on
    the loop's clock, which the frozen time never moves: the test would hang.
    Pacing itself is tested in tests/kvs/test_client.py.
    """
    with patch.object(TokenBucket, "take", return_value=None):
        yield


async def _sync_clock(hass: HomeAssistant, emulator: EmulatorProcess) -> None:
    """Freeze the emulator's clock at Home Assistant's (frozen) time."""
    now = dt_util.utcnow().timestamp()
    await admin(hass, emulator, "POST", "clock", {"set": now, "freeze": True})


async def _tick(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    freezer: FrozenDateTimeFactory,
    seconds: float,
) -> None:
    """Move both clocks by ``seconds`` and run what came due."""
    await admin(hass, emulator, "POST", "clock", {"advance": seconds})
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def _unavailable(hass: HomeAssistant) -> set[str]:
    return {
        entity_id
        for entity_id in ENTITIES
        if (state := hass.states.get(entity_id)) is None
        or state.state == STATE_UNAVAILABLE
    }


async def _until(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    freezer: FrozenDateTimeFactory,
    *,
    unavailable: bool,
    limit: float,
) -> float:
    """Seconds until every entity is (un)available; fails after ``limit`` s."""
    waited = 0.0
    while True:
        gone = _unavailable(hass)
        if (gone == set(ENTITIES)) if unavailable else not gone:
            return waited
        left = set(ENTITIES) - gone if unavailable else gone
        assert waited < limit, f"{sorted(left)} unchanged after {waited} s"
        await _tick(hass, emulator, freezer, STEP)
        waited += STEP


@pytest.mark.parametrize(
    # When the outage starts, relative to the status poll (every 5 minutes).
    "offset",
    [10, 150, STATUS_POLL_INTERVAL.total_seconds() - 10],
)
async def test_outage_and_recovery(  # noqa: PLR0917 - fixtures and a parameter
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    offset: float,
) -> None:
    """Unavailable within about a minute of the outage; back within 90 s of its end.

    Also what is logged: the outage once at warning (however many polls see
    it), the recoveries at info, nothing at error (the user cannot do anything
    about an AWS outage).
    """
    await _sync_clock(hass, emulator)
    await setup_entry(hass, config_entry)
    assert _unavailable(hass) == set()
    await _tick(hass, emulator, freezer, offset)
    caplog.clear()

    await admin(hass, emulator, "POST", "faults", OUTAGE)
    assert await _until(hass, emulator, freezer, unavailable=True, limit=65) <= 65
    # Long enough for the status poll to have failed too, whatever the offset.
    await _tick(hass, emulator, freezer, STATUS_POLL_INTERVAL.total_seconds())
    assert _unavailable(hass) == set(ENTITIES)

    await admin(hass, emulator, "DELETE", "faults")
    assert await _until(hass, emulator, freezer, unavailable=False, limit=90) <= 90

    records = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert [r for r in records if r.levelno >= logging.ERROR] == []
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    # One line, though the status poll and each stream's health poll saw it.
    assert len(warnings) == 1, warnings
    assert all("503" in w or "unavailable" in w.lower() for w in warnings), warnings
    recovered = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any("recovered" in line for line in recovered), recovered


def test_one_warning_per_outage_across_polls() -> None:
    """The filter behind the outage lines reads the other polls' state.

    Polls here are plain objects with the two attributes the filter reads:
    the integration test above runs the real coordinators; this one walks
    the order of events of two outages without waiting for polls.
    """

    @dataclass
    class Poll:
        last_update_success: bool = True
        last_exception: Exception | None = None

    def record(*args: object) -> logging.LogRecord:
        return logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "Error fetching %s data: %s", args, None
        )

    outage = ServiceOutageError("503 Service Unavailable")
    status, health = Poll(), Poll()
    polls = [status, health]
    first = record("status", outage)
    assert _outage_once(first, polls)
    assert first.levelno == logging.WARNING
    status.last_update_success, status.last_exception = False, outage
    second = record("health front-door", outage)
    assert not _outage_once(second, polls)  # debug, and debug is off here
    assert second.levelno == logging.DEBUG
    # Not an outage: left at error.
    other = record("health backyard", ValueError("bad"))
    assert _outage_once(other, polls)
    assert other.levelno == logging.ERROR
    # Both recovered: the next outage is a warning again.
    status.last_update_success = True
    again = record("status", outage)
    assert _outage_once(again, polls)
    assert again.levelno == logging.WARNING
