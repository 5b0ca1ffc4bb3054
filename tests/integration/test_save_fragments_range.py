"""save_fragments of a time range: past, or with an end still to come (real time).

The emulator's clock runs here (not frozen), so its live video grows while the
action waits, as a camera's would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from aiohttp import ClientSession
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.services import REST_ANSWERS_VALIDATION_ERRORS
from kvs_emulator.testing import EmulatorProcess
from tests.emulator.helpers import (
    FRAGMENT_S,
    FRAMES_PER_FRAGMENT,
    assert_continuous,
    decode_frames,
)

from .conftest import admin, boto_fragments, calls, files_in

CAMERA = "camera.front_door"
# Calls that read media: none may be made for bad input. (ListFragments is
# also the health poll's.)
MEDIA_OPERATIONS = {"GetMediaForFragmentList", "GetClip"}


async def _save(hass: HomeAssistant, data: dict[str, Any]) -> Any:
    response = await hass.services.async_call(
        DOMAIN,
        "save_fragments",
        data,
        target={"entity_id": CAMERA},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return response[CAMERA]


def _boto_numbers(
    emulator: EmulatorProcess, start: datetime, end: datetime
) -> list[str]:
    """Fragments starting in [start, end] by plain boto3: numbers, in time order."""
    return [f["FragmentNumber"] for f in boto_fragments(emulator, start, end)]


async def _media_calls(hass: HomeAssistant, emulator: EmulatorProcess) -> set[str]:
    return MEDIA_OPERATIONS & set(await calls(hass, emulator))


async def test_past_range(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    running: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A past range: its fragments in one Matroska file, what it covers, no GetClip."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(seconds=70), now - timedelta(seconds=40)
    answer = await _save(hass, {"start": start.isoformat(), "end": end.isoformat()})
    expected = await hass.async_add_executor_job(_boto_numbers, emulator, start, end)
    assert answer["fragments"] == len(expected) >= 30 // FRAGMENT_S
    assert answer["gaps"] == []
    covered = datetime.fromisoformat(answer["end"]) - datetime.fromisoformat(
        answer["start"]
    )
    assert abs(covered - (end - start)) <= timedelta(seconds=FRAGMENT_S)
    path = Path(answer["path"])
    # The default name carries the range's start (not the time of the call).
    local = dt_util.as_local(start)
    assert path == (
        tmp_path
        / "media"
        / "kinesis_video"
        / "front-door"
        / f"front-door_{local:%Y%m%d_%H%M%S%z}_fragments.mkv"
    )
    indices, _ = await hass.async_add_executor_job(decode_frames, str(path), "matroska")
    assert len(assert_continuous(indices)) == len(expected) * FRAMES_PER_FRAGMENT
    assert answer["size"] == (await hass.async_add_executor_job(path.stat)).st_size
    counts = await calls(hass, emulator)
    assert counts["GetMediaForFragmentList"] == 1
    assert "GetClip" not in counts


async def test_long_range_in_batches(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    running: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """More than 1000 fragments: two GetMediaForFragmentList calls, one file."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(seconds=1010 * FRAGMENT_S)
    answer = await _save(
        hass,
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "filename": str(tmp_path / "{stream}.mkv"),
        },
    )
    expected = await hass.async_add_executor_job(_boto_numbers, emulator, start, end)
    assert answer["fragments"] == len(expected) > 1000
    assert answer["path"] == str(tmp_path / "front-door.mkv")
    assert (await calls(hass, emulator))["GetMediaForFragmentList"] == 2
    size = (await hass.async_add_executor_job(Path(answer["path"]).stat)).st_size
    assert answer["size"] == size


async def test_future_end_is_waited_for(
    hass: HomeAssistant, emulator: EmulatorProcess, running: MockConfigEntry
) -> None:
    """4 s before to 4 s after "now": the action waits, then saves all 8 s."""
    # Whole seconds: boto3 sends timestamps without their fraction.
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(seconds=4), now + timedelta(seconds=4)
    answer = await _save(hass, {"start": start.isoformat(), "duration": 8})
    assert datetime.now(UTC) >= end
    covered = datetime.fromisoformat(answer["end"]) - datetime.fromisoformat(
        answer["start"]
    )
    assert abs(covered - (end - start)) <= timedelta(seconds=FRAGMENT_S)
    assert answer["gaps"] == []
    expected = await hass.async_add_executor_job(_boto_numbers, emulator, start, end)
    assert answer["fragments"] == len(expected)
    indices, _ = await hass.async_add_executor_job(
        decode_frames, answer["path"], "matroska"
    )
    assert len(assert_continuous(indices)) == len(expected) * FRAMES_PER_FRAGMENT


async def test_gaps_are_reported(
    hass: HomeAssistant, emulator: EmulatorProcess, running: MockConfigEntry
) -> None:
    """A hole in the recording: the answer says where, the file skips it."""
    now = int(datetime.now(UTC).timestamp())  # whole seconds, as boto3 sends
    await admin(
        hass, emulator, "POST", "streams/front-door", {"gaps": [[now - 50, now - 40]]}
    )
    start = datetime.fromtimestamp(now - 60, UTC)
    answer = await _save(hass, {"start": start.isoformat(), "duration": 30})
    assert len(answer["gaps"]) == 1
    gap = answer["gaps"][0]
    assert 8 <= gap["seconds"] <= 12
    assert (
        start
        < datetime.fromisoformat(gap["start"])
        < datetime.fromisoformat(gap["end"])
    )
    expected = await hass.async_add_executor_job(
        _boto_numbers, emulator, start, start + timedelta(seconds=30)
    )
    assert answer["fragments"] == len(expected)


async def test_range_without_media(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    running: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A range before the stream's history: no_media, and no file."""
    start = datetime.now(UTC) - timedelta(hours=5)
    with pytest.raises(HomeAssistantError) as err:
        await _save(hass, {"start": start.isoformat(), "duration": 60})
    assert err.value.translation_key == "no_media"
    assert await hass.async_add_executor_job(files_in, tmp_path / "media") == []
    assert "GetMediaForFragmentList" not in await calls(hass, emulator)


async def test_end_too_far_ahead_is_refused(
    hass: HomeAssistant, emulator: EmulatorProcess, running: MockConfigEntry
) -> None:
    """More than 10 minutes ahead: refused at once, nothing asked of AWS."""
    end = datetime.now(UTC) + timedelta(minutes=11)
    with pytest.raises(ServiceValidationError) as info:
        await _save(hass, {"end": end.isoformat(), "duration": 20})
    assert info.value.translation_key == "end_too_far_ahead"
    assert await _media_calls(hass, emulator) == set()


async def test_cancelled_wait_leaves_no_file(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    running: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """Stopping the automation while the action waits: no file, no part."""
    end = datetime.now(UTC) + timedelta(minutes=5)
    task = hass.async_create_task(_save(hass, {"end": end.isoformat(), "duration": 30}))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await hass.async_add_executor_job(files_in, tmp_path / "media") == []
    assert "GetMediaForFragmentList" not in await calls(hass, emulator)


async def test_unloading_the_entry_ends_the_wait(
    hass: HomeAssistant, running: MockConfigEntry, tmp_path: Path
) -> None:
    """An entry unloaded while the action waits for its end: the action stops."""
    end = datetime.now(UTC) + timedelta(minutes=5)
    task = hass.async_create_task(_save(hass, {"end": end.isoformat(), "duration": 10}))
    await asyncio.sleep(0.2)
    assert await hass.config_entries.async_unload(running.entry_id)
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done
    assert task.cancelled()
    assert await hass.async_add_executor_job(files_in, tmp_path / "media") == []


# -- fragments or a range: exactly one -------------------------------------------


@pytest.fixture
async def client(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    running: MockConfigEntry,
) -> ClientSession:
    """Home Assistant's REST API and a client for it."""
    assert await async_setup_component(hass, "api", {})
    session: ClientSession = await hass_client()
    return session


async def _refused(
    hass: HomeAssistant, client: ClientSession, data: dict[str, Any]
) -> str:
    """The message bad input is refused with (as tests/.../test_service_input.py).

    Through the REST API (a 400 with the message) where Home Assistant answers a
    validation error with its message; 2025.x answers a bare 400 there, so the
    action is called directly.
    """
    if REST_ANSWERS_VALIDATION_ERRORS:
        response = await client.post(
            f"/api/services/{DOMAIN}/save_fragments?return_response",
            json={"entity_id": CAMERA, **data},
        )
        body = await response.json()
        assert response.status == 400, body
        return str(body["message"])
    with pytest.raises(vol.Invalid) as err:
        await hass.services.async_call(
            DOMAIN,
            "save_fragments",
            {"entity_id": CAMERA, **data},
            blocking=True,
            return_response=True,
        )
    return str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"fragments": ["1"], "start": "2026-01-01T00:00:00Z", "duration": 10},
            "not both",
        ),
        ({"fragments": ["1"], "duration": 10}, "not both"),
        ({}, "fragment numbers or a time range"),
        ({"filename": "x.mkv", "timestamp_type": "server"}, "or a time range"),
    ],
)
async def test_fragments_or_range(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    client: ClientSession,
    data: dict[str, Any],
    message: str,
) -> None:
    """Both or neither: a 400 that names the field and what to give."""
    text = await _refused(hass, client, data)
    assert message in text
    assert "fragments" in text
    assert await _media_calls(hass, emulator) == set()
