"""Event clips: save_clip and save_images with an end still to come (real time).

The emulator's clock runs here (not frozen), so its live video grows while the
action waits, as a camera's would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kinesis_video.const import DOMAIN
from kvs_emulator.testing import EmulatorProcess
from tests.emulator.helpers import FRAGMENT_S

from .conftest import calls, files_in

CAMERA = "camera.front_door"


async def _save(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        service,
        data,
        target={"entity_id": CAMERA},
        blocking=True,
        return_response=True,
    )


async def test_doorbell_clip_from_before_to_after_now(
    hass: HomeAssistant, emulator: EmulatorProcess, running: MockConfigEntry
) -> None:
    """4 s before to 4 s after "now": one action, a clip of the whole 8 s."""
    now = datetime.now(UTC)
    start, end = now - timedelta(seconds=4), now + timedelta(seconds=4)
    answer = (
        await _save(
            hass, "save_clip", {"start": start.isoformat(), "end": end.isoformat()}
        )
    )[CAMERA]
    assert datetime.now(UTC) >= end
    covered = datetime.fromisoformat(answer["end"]) - datetime.fromisoformat(
        answer["start"]
    )
    asked = end - start
    # What was recorded of the range, within one fragment at either edge.
    assert abs(covered - asked) <= timedelta(seconds=FRAGMENT_S)
    assert answer["gaps"] == []
    size = await hass.async_add_executor_job(
        lambda: Path(answer["path"]).stat().st_size
    )
    assert size == answer["size"]
    assert (await calls(hass, emulator))["GetClip"] == 1


async def test_end_too_far_ahead_is_refused(
    hass: HomeAssistant, emulator: EmulatorProcess, running: MockConfigEntry
) -> None:
    """More than 10 minutes ahead: refused at once, nothing asked of AWS."""
    before = await calls(hass, emulator)
    end = datetime.now(UTC) + timedelta(minutes=11)
    for service in ("save_clip", "save_images"):
        with pytest.raises(ServiceValidationError) as info:
            await _save(hass, service, {"end": end.isoformat(), "duration": 20})
        assert info.value.translation_key == "end_too_far_ahead"
    assert await calls(hass, emulator) == before


async def test_cancelled_wait_leaves_no_file(
    hass: HomeAssistant, running: MockConfigEntry, tmp_path: Path
) -> None:
    """Stopping the automation while the action waits: no file, no part."""
    end = datetime.now(UTC) + timedelta(minutes=5)
    task = hass.async_create_task(
        _save(hass, "save_clip", {"end": end.isoformat(), "duration": 30})
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await hass.async_add_executor_job(files_in, tmp_path / "media") == []


async def test_unloading_the_entry_ends_the_wait(
    hass: HomeAssistant, running: MockConfigEntry, tmp_path: Path
) -> None:
    """An entry unloaded while an action waits for its end: the action stops."""
    end = datetime.now(UTC) + timedelta(minutes=5)
    task = hass.async_create_task(
        _save(hass, "save_images", {"end": end.isoformat(), "duration": 10})
    )
    await asyncio.sleep(0.2)
    assert await hass.config_entries.async_unload(running.entry_id)
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done
    assert task.cancelled()
    assert await hass.async_add_executor_job(files_in, tmp_path / "media") == []
