"""Base entity: one device per Kinesis video stream."""

from __future__ import annotations

import logging

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import StreamInfo, parse_stream_arn
from .const import DOMAIN
from .coordinator import KinesisVideoCoordinator

_LOGGER = logging.getLogger(__name__)


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
        self._was_available = True

    @property
    def stream_info(self) -> StreamInfo | None:
        """Latest DescribeStream answer, None if the stream is gone."""
        return self.coordinator.data.get(self.stream_arn)

    @property
    def available(self) -> bool:
        """Unavailable when the stream is gone, not ACTIVE, or unreachable."""
        info = self.stream_info
        return super().available and info is not None and info.status == "ACTIVE"

    async def async_added_to_hass(self) -> None:
        """Remember the starting availability, to log only changes."""
        await super().async_added_to_hass()
        self._was_available = self.available

    @callback
    def _handle_coordinator_update(self) -> None:
        """Log once when the stream goes away and once when it returns."""
        available = self.available
        if available != self._was_available:
            if available:
                _LOGGER.info("Stream %s is available again", self.stream_name)
            else:
                info = self.stream_info
                _LOGGER.info(
                    "Stream %s is unavailable: %s",
                    self.stream_name,
                    "unreachable"
                    if not self.coordinator.last_update_success
                    else "deleted"
                    if info is None
                    else f"status {info.status}",
                )
        self._was_available = available
        super()._handle_coordinator_update()
