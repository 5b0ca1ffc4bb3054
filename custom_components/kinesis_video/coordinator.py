"""Stream status for a config entry: one DescribeStream per stream per poll."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    AuthenticationError,
    KinesisVideoClient,
    KinesisVideoError,
    PermissionDeniedError,
    StreamInfo,
    StreamNotFoundError,
)
from .const import CONF_STREAMS, DOMAIN, STATUS_POLL_INTERVAL

if TYPE_CHECKING:
    from .health import StreamHealthCoordinator

_LOGGER = logging.getLogger(__name__)


@dataclass
class KinesisVideoData:
    """What a loaded config entry holds."""

    client: KinesisVideoClient
    coordinator: KinesisVideoCoordinator
    # Stream ARN -> its health coordinator (ListFragments over the last minute).
    health: dict[str, StreamHealthCoordinator] = field(default_factory=dict)


type KinesisVideoConfigEntry = ConfigEntry[KinesisVideoData]


def retention_issue_id(entry_id: str, stream: str) -> str:
    """The repair issue of a stream without retention (per entry: names repeat)."""
    return f"no_data_retention_{entry_id}_{stream}"


class KinesisVideoCoordinator(DataUpdateCoordinator[dict[str, StreamInfo | None]]):
    """Polls the configured streams' status; ``None`` means the stream is gone."""

    config_entry: KinesisVideoConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: KinesisVideoConfigEntry,
        client: KinesisVideoClient,
    ) -> None:
        """Poll every few minutes: status rarely changes."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=STATUS_POLL_INTERVAL,
        )
        self.client = client
        # Last known "usable" state per stream, to log changes once (the
        # coordinator itself logs once when the service is unreachable).
        self._usable: dict[str, bool] = {}

    @property
    def stream_arns(self) -> list[str]:
        """The streams this entry shows, by ARN."""
        return list(self.config_entry.options.get(CONF_STREAMS, []))

    async def _async_update_data(self) -> dict[str, StreamInfo | None]:
        """Describe every configured stream."""
        result: dict[str, StreamInfo | None] = {}
        for arn in self.stream_arns:
            try:
                result[arn] = await self.client.describe_stream(arn)
            except StreamNotFoundError:
                result[arn] = None
            except AuthenticationError as err:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN, translation_key="auth_failed"
                ) from err
            except PermissionDeniedError as err:
                # The key works but its policy lacks DescribeStream: new keys
                # would not help, so no re-authentication (it would loop).
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="permission_denied_status",
                    translation_placeholders={"error": str(err)},
                ) from err
            except KinesisVideoError as err:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="update_failed",
                    translation_placeholders={"error": str(err)},
                ) from err
        self._update_retention_issues(result)
        self._log_changes(result)
        return result

    def _log_changes(self, streams: dict[str, StreamInfo | None]) -> None:
        """Log once when a stream goes away or stops being ACTIVE, once when back."""
        for arn, info in streams.items():
            usable = info is not None and info.status == "ACTIVE"
            before = self._usable.get(arn, True)
            name = arn.split("/")[1]
            if before and not usable:
                why = "deleted" if info is None else f"status {info.status}"
                _LOGGER.info("Stream %s is unavailable: %s", name, why)
            elif usable and not before:
                _LOGGER.info("Stream %s is available again", name)
            self._usable[arn] = usable

    def _update_retention_issues(self, streams: dict[str, StreamInfo | None]) -> None:
        """Raise a repair issue for each stream that keeps no archive."""
        for arn, info in streams.items():
            name = arn.split("/")[1]
            issue_id = retention_issue_id(self.config_entry.entry_id, name)
            if info is not None and info.retention_hours == 0:
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    issue_id,
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="no_data_retention",
                    translation_placeholders={"stream": name},
                    learn_more_url="https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/how-data.html",
                )
            else:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
