"""Binary sensors: whether each stream is receiving video."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import KinesisVideoConfigEntry, async_add_stream_entities
from .entity import KinesisVideoHealthEntity

# Coordinators do the polling; entities only read their data.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KinesisVideoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One "receiving video" sensor per stream, also for streams added later."""
    data = entry.runtime_data
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda arn: [
            ReceivingVideoSensor(
                data.coordinator, data.health_for(arn), "receiving_video"
            )
        ],
    )


class ReceivingVideoSensor(KinesisVideoHealthEntity, BinarySensorEntity):
    """On while fragments arrive: one started within the last minute."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY

    @property
    def is_on(self) -> bool | None:
        """Whether the last poll saw a recent fragment."""
        data = self.health.data
        return None if data is None else data.receiving
