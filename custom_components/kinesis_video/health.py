"""Stream health: one coordinator per stream asks what arrived in the last minute."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    KinesisVideoClient,
    KinesisVideoError,
    NoDataRetentionError,
    StreamNotFoundError,
    parse_stream_arn,
)
from .const import DOMAIN, HEALTH_POLL_INTERVAL, HEALTH_WINDOW
from .coordinator import KinesisVideoConfigEntry, KinesisVideoCoordinator
from .entity import KinesisVideoEntity

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """What the last poll saw (server time: when AWS received the video)."""

    receiving: bool
    last_fragment: datetime | None


class StreamHealthCoordinator(DataUpdateCoordinator[StreamHealth]):
    """ListFragments over the last minute, every 30 s: 2 calls a minute per stream.

    That is far below the 5 TPS per stream the service allows, and the API layer
    paces it together with the media browser's listings of the same stream.
    """

    config_entry: KinesisVideoConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: KinesisVideoConfigEntry,
        client: KinesisVideoClient,
        status: KinesisVideoCoordinator,
        arn: str,
    ) -> None:
        """Poll one stream; ``status`` is the entry's DescribeStream poll."""
        self.stream_arn = arn
        self.stream_name = parse_stream_arn(arn).name
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} health {self.stream_name}",
            update_interval=HEALTH_POLL_INTERVAL,
        )
        self.client = client
        self.status = status

    async def _async_update_data(self) -> StreamHealth:
        """Receiving if a fragment started within the window; keep the last one."""
        previous = self.data.last_fragment if self.data is not None else None
        info = self.status.data.get(self.stream_arn) if self.status.data else None
        if info is not None and info.retention_hours == 0:
            # Nothing is archived, so nothing can be listed: no call (the
            # entities are unavailable and a repair issue says why).
            return StreamHealth(receiving=False, last_fragment=previous)
        now = dt_util.utcnow()
        try:
            fragments, _ = await self.client.list_fragments(
                self.stream_arn, now - HEALTH_WINDOW, now
            )
        except (StreamNotFoundError, NoDataRetentionError):
            # Deleted, or retention set to 0 since the last status poll: let
            # the status poll see it now rather than in up to 5 minutes.
            await self.status.async_request_refresh()
            return StreamHealth(receiving=False, last_fragment=previous)
        except AuthenticationError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except KinesisVideoError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="health_update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        if not fragments:
            return StreamHealth(receiving=False, last_fragment=previous)
        newest = fragments[-1]
        end = newest.server_timestamp + timedelta(milliseconds=newest.duration_ms)
        return StreamHealth(receiving=True, last_fragment=end)


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
