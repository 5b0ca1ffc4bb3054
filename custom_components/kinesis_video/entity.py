"""Base entity: one device per Kinesis video stream."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import StreamInfo, parse_stream_arn
from .const import DOMAIN
from .coordinator import KinesisVideoCoordinator


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
