"""Base entities: one device per Kinesis video stream."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import KinesisVideoCoordinator, StreamHealthCoordinator
from .kvs import StreamInfo, parse_stream_arn


class KinesisVideoEntity(CoordinatorEntity[KinesisVideoCoordinator]):
    """An entity of one stream, available while the stream is ACTIVE."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: KinesisVideoCoordinator, arn: str) -> None:
        """Tie the entity to the stream's device."""
        super().__init__(coordinator)
        self.stream_arn = arn
        parsed = parse_stream_arn(arn)
        self.stream_name = parsed.name
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, arn)},
            name=parsed.name,
            manufacturer="Amazon Web Services",
            model="Kinesis video stream",
            configuration_url=(
                f"https://{parsed.region}.console.aws.amazon.com/kinesisvideo/home"
                f"?region={parsed.region}#/streams/streamName/{parsed.name}"
            ),
        )

    @property
    def stream_info(self) -> StreamInfo | None:
        """Latest DescribeStream answer, None if the stream is gone."""
        return self.coordinator.data.get(self.stream_arn)

    @property
    def available(self) -> bool:
        """Unavailable when the stream is gone, not ACTIVE, or unreachable."""
        info = self.stream_info
        return super().available and info is not None and info.status == "ACTIVE"


class KinesisVideoHealthEntity(KinesisVideoEntity):
    """A stream entity that also follows the stream's health coordinator."""

    def __init__(
        self,
        coordinator: KinesisVideoCoordinator,
        health: StreamHealthCoordinator,
        key: str,
    ) -> None:
        """Tie the entity to its stream's device and health poll."""
        super().__init__(coordinator, health.stream_arn)
        self.health = health
        self._attr_translation_key = key
        self._attr_unique_id = f"{health.stream_arn}_{key}"

    @property
    def available(self) -> bool:
        """As the base entity, for a stream that keeps video, polled fine."""
        info = self.stream_info
        return (
            super().available
            and info is not None
            and info.retention_hours > 0  # nothing to list without an archive
            and self.health.last_update_success
            and self.health.data is not None
        )

    async def async_added_to_hass(self) -> None:
        """Listen to the health poll too (it runs while someone listens)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.health.async_add_listener(self._handle_coordinator_update)
        )
