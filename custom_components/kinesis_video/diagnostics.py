"""Diagnostics: entry settings and stream status, with secrets redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_ACCESS_KEY_ID, CONF_ENDPOINT_URL, CONF_SECRET_ACCESS_KEY
from .coordinator import KinesisVideoConfigEntry

TO_REDACT = {CONF_ACCESS_KEY_ID, CONF_SECRET_ACCESS_KEY, CONF_ENDPOINT_URL}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry
) -> dict[str, Any]:
    """What support needs to see; never keys or session URLs."""
    coordinator = entry.runtime_data.coordinator
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
    }
