"""Which cameras of this integration an action's targets name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import service as service_helper

from .action_schemas import ATTR_TIMESTAMP_TYPE, TIMESTAMP_TYPES
from .const import DOMAIN
from .coordinator import KinesisVideoConfigEntry
from .export import Source
from .kvs import KinesisVideoClient, TimestampType, parse_stream_arn
from .options import EntryOptions
from .translated_errors import invalid


@dataclass(frozen=True, slots=True)
class Target:
    """A camera of this integration and what an action needs of it."""

    entity_id: str
    arn: str
    stream: str
    entry: KinesisVideoConfigEntry

    @property
    def client(self) -> KinesisVideoClient:
        """The entry's client."""
        return self.entry.runtime_data.client

    @property
    def options(self) -> EntryOptions:
        """The entry's options."""
        return self.entry.runtime_data.options

    def timestamp_type(self, call: ServiceCall) -> TimestampType:
        """The type asked for, else the entry's option."""
        if (asked := call.data.get(ATTR_TIMESTAMP_TYPE)) is not None:
            return cast("TimestampType", TIMESTAMP_TYPES[asked])
        return self.options.timestamp_type

    def source(self, hass: HomeAssistant, call: ServiceCall) -> Source:
        """What an export reads from this camera's stream."""
        return Source(
            self.client,
            self.arn,
            hass.async_add_executor_job,
            self.timestamp_type(call),
        )


def _referenced(hass: HomeAssistant, call: ServiceCall) -> tuple[set[str], set[str]]:
    """Entity ids the call names, and those it reaches by device, area or label."""
    try:
        from homeassistant.helpers.target import (  # noqa: PLC0415
            TargetSelection,
            async_extract_referenced_entity_ids,
        )
    except ImportError:  # older Home Assistant (2025.4) has it in helpers.service
        extract: Callable[..., Any] = vars(service_helper)[
            "async_extract_referenced_entity_ids"
        ]
        selected = extract(hass, call)
    else:
        selected = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
    return set(selected.referenced), set(selected.indirectly_referenced)


def targets(hass: HomeAssistant, call: ServiceCall) -> list[Target]:
    """This integration's cameras among the call's targets.

    A device or area brings its sensors along: those are skipped. An entity
    named explicitly that is not such a camera is refused.
    """
    registry = er.async_get(hass)
    named, reached = _referenced(hass, call)
    found: list[Target] = []
    for entity_id in sorted(named | reached):
        entry = registry.async_get(entity_id)
        if entry is None or entry.platform != DOMAIN or entry.domain != "camera":
            if entity_id in named:
                raise invalid("not_a_camera", entity_id=entity_id)
            continue
        config_entry = (
            hass.config_entries.async_get_entry(entry.config_entry_id)
            if entry.config_entry_id
            else None
        )
        if config_entry is None or config_entry.state is not ConfigEntryState.LOADED:
            if entity_id in named:
                raise invalid("entry_not_loaded", entity_id=entity_id)
            # As Home Assistant's entity actions do: a camera an area or device
            # reaches is skipped while it cannot work.
            continue
        found.append(
            Target(
                entity_id=entity_id,
                arn=entry.unique_id,
                stream=parse_stream_arn(entry.unique_id).name,
                entry=cast("KinesisVideoConfigEntry", config_entry),
            )
        )
    if not found:
        raise invalid("no_target")
    return found
