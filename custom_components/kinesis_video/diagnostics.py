"""Diagnostics of the entry and of each stream's device, with secrets redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntry

from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_ENDPOINT_URL,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STREAMS,
    DOMAIN,
)
from .coordinator import (
    CONF_FOLLOW_ALL,
    CONF_KNOWN_UNTIL,
    KinesisVideoConfigEntry,
    StreamHealthCoordinator,
)

TO_REDACT = {CONF_ACCESS_KEY_ID, CONF_SECRET_ACCESS_KEY, CONF_ENDPOINT_URL}


def _health(poll: StreamHealthCoordinator | None) -> dict[str, Any] | None:
    """What the stream's last health poll saw."""
    if poll is None:
        return None
    data = poll.data
    return {
        "last_update_success": poll.last_update_success,
        "receiving": None if data is None else data.receiving,
        "last_fragment": None if data is None else data.last_fragment,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry
) -> dict[str, Any]:
    """What support needs to see; never keys or session URLs."""
    data = entry.runtime_data
    coordinator = data.coordinator
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "last_update_success": coordinator.last_update_success,
        "streams": {
            arn: None if info is None else asdict(info)
            for arn, info in (coordinator.data or {}).items()
        },
        "health": {arn: _health(poll) for arn, poll in data.health.items()},
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """One stream: its status, its health, and the settings it plays with."""
    data = entry.runtime_data
    arn = next((ident for domain, ident in device.identifiers if domain == DOMAIN), "")
    info = (data.coordinator.data or {}).get(arn)
    return {
        "stream_arn": arn,
        "configured": arn in entry.options.get(CONF_STREAMS, []),
        # Where the entry connects; the keys are left out, the endpoint redacted.
        "entry": async_redact_data(
            {
                CONF_REGION: entry.data.get(CONF_REGION),
                CONF_ENDPOINT_URL: entry.data.get(CONF_ENDPOINT_URL),
            },
            TO_REDACT,
        ),
        # How it plays; which streams the entry follows is the entry's business.
        "settings": {
            k: v
            for k, v in entry.options.items()
            if k not in (CONF_STREAMS, CONF_FOLLOW_ALL, CONF_KNOWN_UNTIL)
        },
        "status": {
            "last_update_success": data.coordinator.last_update_success,
            "stream": None if info is None else asdict(info),
        },
        "health": _health(data.health.get(arn)),
    }
