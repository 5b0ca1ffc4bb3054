"""Diagnostics of a stream's device and of the entry, against the emulator."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from homeassistant.components.camera import async_get_stream_source
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video.const import DOMAIN
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, setup_entry


async def _live_urls(hass: HomeAssistant) -> list[str]:
    """The camera's stream source (the local playlist, with its secret) and the
    KVS session URL behind it (a bearer token): neither may leak."""
    source = await async_get_stream_source(hass, "camera.front_door")
    assert source
    camera = hass.data[DATA_COMPONENT].get_entity("camera.front_door")
    session = camera._live.session
    assert session is not None
    assert "SessionToken=" in session.url
    return [source, session.url]


def _assert_no_secrets(text: str, emulator: EmulatorProcess, urls: list[str]) -> None:
    """No key, endpoint, or session URL or token anywhere in ``text``."""
    assert emulator.secret_key not in text
    assert emulator.access_key not in text
    assert emulator.url not in text
    for url in urls:
        assert url not in text
        parts = urlsplit(url)
        secrets = [p for p in parts.path.split("/") if len(p) >= 16]
        for values in parse_qs(parts.query).values():
            secrets += values
        for value in secrets:
            if len(value) >= 16:  # tokens, signatures; not short flags
                assert value not in text
    assert "SessionToken" not in text


async def test_device_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """A stream's device: its status, health and settings; nothing secret."""
    await setup_entry(hass, config_entry)
    urls = await _live_urls(hass)
    arn = stream_arns["front-door"]
    # By the entry's devices: async_get_device is deprecated in newer versions
    # and its replacements do not exist in the oldest one supported.
    registry = dr.async_get(hass)
    (device,) = (
        d
        for d in dr.async_entries_for_config_entry(registry, config_entry.entry_id)
        if (DOMAIN, arn) in d.identifiers
    )

    result = await get_diagnostics_for_device(hass, hass_client, config_entry, device)

    _assert_no_secrets(str(result), emulator, urls)
    assert result["stream_arn"] == arn
    assert result["configured"] is True
    stream = result["status"]["stream"]
    assert stream["name"] == "front-door"
    assert stream["status"] == "ACTIVE"
    assert stream["retention_hours"] > 0
    assert result["status"]["last_update_success"] is True
    health = result["health"]
    assert health["last_update_success"] is True
    assert health["receiving"] is True  # the emulator's cameras send live video
    assert health["last_fragment"] is not None
    assert result["settings"] == {
        "hls_container": "FRAGMENTED_MP4",
        "url_lifetime": 3600,
        "timestamp_type": "SERVER_TIMESTAMP",
    }
    assert result["entry"]["region"] == emulator.region
    assert result["entry"]["endpoint_url"] == "**REDACTED**"
    assert "access_key_id" not in result["entry"]
    # Only this stream: the other one's ARN is not there.
    assert stream_arns["backyard"] not in str(result)


async def test_entry_diagnostics_show_health(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """The entry's diagnostics carry each stream's health too, nothing secret."""
    await setup_entry(hass, config_entry)
    urls = await _live_urls(hass)

    result = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)

    _assert_no_secrets(str(result), emulator, urls)
    assert set(result["health"]) == set(stream_arns.values())
    for health in result["health"].values():
        assert health["last_update_success"] is True
        assert health["receiving"] is True


async def test_device_diagnostics_of_unconfigured_stream(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
) -> None:
    """A device left from a stream no longer shown: said so, no status or health."""
    await setup_entry(hass, config_entry)
    arn = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/gone/1700000000000"
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=config_entry.entry_id, identifiers={(DOMAIN, arn)}
    )

    result = await get_diagnostics_for_device(hass, hass_client, config_entry, device)

    assert result["stream_arn"] == arn
    assert result["configured"] is False
    assert result["status"]["stream"] is None
    assert result["health"] is None


async def test_device_diagnostics_when_health_poll_fails(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """A failed health poll shows as such, with nothing seen yet."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "ListFragments", "error": "InternalFailure", "count": -1},
    )
    await setup_entry(hass, config_entry)
    arn = stream_arns["front-door"]
    registry = dr.async_get(hass)
    (device,) = (
        d
        for d in dr.async_entries_for_config_entry(registry, config_entry.entry_id)
        if (DOMAIN, arn) in d.identifiers
    )

    result = await get_diagnostics_for_device(hass, hass_client, config_entry, device)

    assert result["status"]["stream"]["status"] == "ACTIVE"
    assert result["health"] == {
        "last_update_success": False,
        "receiving": None,
        "last_fragment": None,
    }
