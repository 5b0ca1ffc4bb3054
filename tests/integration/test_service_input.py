"""Malformed action data through Home Assistant's REST API: a 400 that says why.

A schema error alone would be a bare "400: Bad Request" there; the actions
answer every bad input with a message naming the field and what to change,
and none of them reaches AWS or a 500.
"""

# Small checks of files the test made under tmp_path; not code under test.

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from aiohttp import ClientSession
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.services import REST_ANSWERS_VALIDATION_ERRORS
from kvs_emulator.testing import EmulatorProcess

from .conftest import calls, setup_entry

CAMERA = "camera.front_door"
# Calls that read media or open a session: none may be made for bad input.
MEDIA_OPERATIONS = {
    "GetClip",
    "GetMediaForFragmentList",
    "GetImages",
    "GetHLSStreamingSessionURL",
    "GetDASHStreamingSessionURL",
}
CALENDAR = "too close to the ends of the calendar"
TOO_LONG = "longer than 24 hours"


@pytest.fixture
async def client(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    tmp_path: Path,
) -> ClientSession:
    """The entry set up, Home Assistant's REST API and a client for it."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    await setup_entry(hass, config_entry)
    assert await async_setup_component(hass, "api", {})
    session: ClientSession = await hass_client()
    return session


async def _post(
    client: ClientSession, action: str, data: dict[str, Any]
) -> tuple[int, str]:
    """POST an action as a REST caller does; (status, message or body)."""
    response = await client.post(
        f"/api/services/{DOMAIN}/{action}?return_response",
        json={"entity_id": CAMERA, **data},
    )
    text = await response.text()
    if response.content_type == "application/json":
        body = await response.json()
        if isinstance(body, dict) and "message" in body:
            return response.status, str(body["message"])
    return response.status, text


async def _refused(
    hass: HomeAssistant, client: ClientSession, action: str, data: dict[str, Any]
) -> str:
    """The message bad input is refused with.

    Through the REST API (a 400) where Home Assistant answers a validation
    error with its message; older ones (2025.x) answer a bare 400 or a 500
    whatever the action says, so there the action is called directly.
    """
    if REST_ANSWERS_VALIDATION_ERRORS:
        status, text = await _post(client, action, data)
        assert status == 400, text[:500]
        return text
    with pytest.raises((vol.Invalid, ServiceValidationError)) as err:
        await hass.services.async_call(
            DOMAIN,
            action,
            {"entity_id": CAMERA, **data},
            blocking=True,
            return_response=True,
        )
    return str(err.value)


async def _media_calls(hass: HomeAssistant, emulator: EmulatorProcess) -> set[str]:
    return MEDIA_OPERATIONS & set(await calls(hass, emulator))


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        # The start alone skipped the range's guard: OverflowError, a 500.
        (
            "get_playback_url",
            {"mode": "live_replay", "start": "0001-01-01T00:00:00+14:00"},
            CALENDAR,
        ),
        (
            "get_playback_url",
            {"mode": "live_replay", "start": "9999-12-31T23:59:59-14:00"},
            CALENDAR,
        ),
        # Home Assistant's duration validator overflowed: a 500.
        ("save_clip", {"duration": 1e20}, TOO_LONG),
        ("save_clip", {"duration": {"days": 1e10}}, TOO_LONG),
        ("list_fragments", {"duration": "99999999999:00:00"}, TOO_LONG),
        ("save_images", {"duration": {"days": 1e10}}, TOO_LONG),
        ("get_playback_url", {"mode": "on_demand", "duration": 1e20}, TOO_LONG),
        # A trailing line break passed the fragment-number pattern ("$").
        ("save_fragments", {"fragments": ["123\n"]}, "1 to 128 digits"),
        # A target of the wrong type failed inside Home Assistant's validator.
        ("save_clip", {"entity_id": 5, "duration": 10}, "wrong type"),
    ],
)
async def test_reported_inputs(  # noqa: PLR0917 - fixtures and parameters
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    client: ClientSession,
    action: str,
    data: dict[str, Any],
    message: str,
) -> None:
    """Each input that answered 500: now a 400 whose message says what is wrong."""
    assert message in await _refused(hass, client, action, data)
    assert await _media_calls(hass, emulator) == set()


async def test_long_path_is_refused_without_echo(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    client: ClientSession,
    tmp_path: Path,
) -> None:
    """A 10 KB name of short parts: refused before any call, not echoed back."""
    name = "a/" * 5000 + "clip.mp4"
    text = await _refused(hass, client, "save_clip", {"duration": 10, "filename": name})
    assert "path is too long" in text
    assert "4095 bytes" in text
    assert len(text) < 300
    assert await _media_calls(hass, emulator) == set()
    assert not (tmp_path / "media" / "a").exists()
    # save_images takes its folder the same way.
    text = await _refused(hass, client, "save_images", {"duration": 2, "folder": name})
    assert "path is too long" in text
    assert await _media_calls(hass, emulator) == set()


# A few of the fuzzed payloads (wrong types, huge and negative numbers, empty,
# long and odd strings) for every action: each a 400 with a message naming the
# field, at most a few hundred characters, with no call to AWS.
FUZZ: list[tuple[str, dict[str, Any], str]] = [
    ("save_clip", {"duration": -10}, "duration"),
    ("save_clip", {"duration": ""}, "duration"),
    ("save_clip", {"duration": [1, 2]}, "duration"),
    ("save_clip", {"start": "x" * 10_000, "duration": 10}, "start"),
    ("save_clip", {"duration": 10, "filename": {"a": 1}}, "filename"),
    ("save_clip", {"duration": 10, "filename": "{start.year}"}, "placeholders"),
    ("save_clip", {"duration": 10, "timestamp_type": "🎥"}, "timestamp_type"),
    ("list_fragments", {"duration": 10, "limit": 10**30}, "limit"),
    ("list_fragments", {"duration": 10, "limit": "1e999"}, "limit"),
    ("list_fragments", {"duration": 10, "limit": -1}, "limit"),
    ("list_fragments", {"start": 1e308, "duration": 10}, "start"),
    ("get_playback_url", {"mode": "sideways"}, "mode"),
    (
        "get_playback_url",
        {"mode": "live_replay", "start": "9999-12-31T00:00:00+00:00"},
        CALENDAR,
    ),
    ("get_playback_url", {"mode": "live", "expires": 10**30}, "expires"),
    ("get_playback_url", {"mode": "live", "protocol": ""}, "protocol"),
    ("get_playback_url", {"mode": "live", "duration": 60}, "Live mode"),
    ("save_fragments", {"fragments": []}, "fragments"),
    ("save_fragments", {"fragments": ["1" * 129]}, "fragments"),
    ("save_fragments", {"fragments": ["1", "-2"]}, "fragments"),
    ("save_fragments", {"fragments": [{"a": 1}]}, "fragments"),
    ("save_images", {"duration": 10, "interval": "inf"}, "interval"),
    ("save_images", {"duration": 10, "interval": 0}, "interval"),
    ("save_images", {"duration": 10, "width": 10**30}, "width"),
    ("save_images", {"duration": 10, "format": "gif"}, "format"),
    ("save_images", {"duration": 10, "folder": "../x"}, ".."),
    ("save_images", {"duration": 10, "unknown": 1}, "unknown"),
]


@pytest.mark.parametrize(("action", "data", "names"), FUZZ)
async def test_fuzzed_inputs(  # noqa: PLR0917 - fixtures and parameters
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    client: ClientSession,
    action: str,
    data: dict[str, Any],
    names: str,
) -> None:
    """Bad input: a 400 with a short message that names what to change."""
    text = await _refused(hass, client, action, data)
    assert names in text
    if REST_ANSWERS_VALIDATION_ERRORS:  # else Home Assistant's own text
        assert len(text) <= 400
    assert await _media_calls(hass, emulator) == set()


async def test_nan_duration(
    hass: HomeAssistant, emulator: EmulatorProcess, client: ClientSession
) -> None:
    """NaN cannot come as JSON, but can from a template: a validation error."""
    with pytest.raises((vol.Invalid, ServiceValidationError)) as err:
        await hass.services.async_call(
            DOMAIN,
            "save_clip",
            {"duration": {"days": math.nan}},
            target={"entity_id": CAMERA},
            blocking=True,
            return_response=True,
        )
    assert "expected a positive duration" in str(err.value)
    assert await _media_calls(hass, emulator) == set()
