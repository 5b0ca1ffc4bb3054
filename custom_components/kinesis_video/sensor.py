"""Sensors: when each stream last received video, and how long it keeps it."""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import (
    KinesisVideoConfigEntry,
    KinesisVideoCoordinator,
    async_add_stream_entities,
)
from .entity import KinesisVideoEntity, KinesisVideoHealthEntity

# Coordinators do the polling; entities only read their data.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KinesisVideoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A last-fragment and a retention sensor per stream, also for later ones."""
    data = entry.runtime_data

    def make(arn: str) -> list[Entity]:
        health = data.health_for(arn)
        return [
            LastFragmentSensor(data.coordinator, health, "last_fragment"),
            RetentionSensor(data.coordinator, arn),
        ]

    async_add_stream_entities(entry, async_add_entities, make)


class LastFragmentSensor(KinesisVideoHealthEntity, RestoreSensor):
    """When the newest fragment seen ended (server time).

    Disabled by default: while video arrives it changes at every poll (twice a
    minute), which the recorder would store; "Receiving video" says the same for
    automations. Restored across restarts: for a camera that is offline when
    Home Assistant starts, when it last sent video is what matters.
    """

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_entity_registry_enabled_default = False
    _restored: datetime | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the health poll; remember the value from before a restart."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_sensor_data()) is not None and (
            isinstance(last.native_value, datetime)
        ):
            self._restored = last.native_value

    @property
    def native_value(self) -> datetime | None:
        """End of the newest fragment seen (since before the last restart)."""
        data = self.health.data
        seen = None if data is None else data.last_fragment
        return max((v for v in (seen, self._restored) if v is not None), default=None)


class RetentionSensor(KinesisVideoEntity, SensorEntity):
    """The stream's data retention period, from DescribeStream."""

    _attr_device_class = SensorDeviceClass.DURATION
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_native_unit_of_measurement = UnitOfTime.HOURS
    _attr_translation_key = "retention"

    def __init__(self, coordinator: KinesisVideoCoordinator, arn: str) -> None:
        """Tie the sensor to its stream."""
        super().__init__(coordinator, arn)
        self._attr_unique_id = f"{arn}_retention"

    @property
    def native_value(self) -> int | None:
        """Hours of video the stream keeps (0: none)."""
        info = self.stream_info
        return None if info is None else info.retention_hours
