"""The entry's polls: stream status (DescribeStream) and health (ListFragments)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    ClockSkewError,
    KinesisVideoClient,
    KinesisVideoError,
    NoDataRetentionError,
    PermissionDeniedError,
    StreamInfo,
    StreamNotFoundError,
    parse_stream_arn,
)
from .const import (
    CONF_STREAMS,
    DOMAIN,
    HEALTH_POLL_INTERVAL,
    HEALTH_WINDOW,
    STATUS_POLL_INTERVAL,
)

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


def _update_error(
    err: KinesisVideoError, failed_key: str
) -> ConfigEntryAuthFailed | UpdateFailed:
    """What a coordinator raises for an API failure.

    A refused key asks for a new one; a wrong clock says so (new keys would not
    help, so no reauth); anything else fails the update with ``failed_key``.
    """
    if isinstance(err, AuthenticationError):
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="auth_failed"
        )
    if isinstance(err, ClockSkewError):
        return UpdateFailed(translation_domain=DOMAIN, translation_key="clock_skew")
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key=failed_key,
        translation_placeholders={"error": str(err)},
    )


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
            except PermissionDeniedError as err:
                # The key works but its policy lacks DescribeStream: new keys
                # would not help, so no re-authentication (it would loop).
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="permission_denied_status",
                    translation_placeholders={"error": str(err)},
                ) from err
            except KinesisVideoError as err:
                raise _update_error(err, "update_failed") from err
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
        except KinesisVideoError as err:
            raise _update_error(err, "health_update_failed") from err
        if not fragments:
            return StreamHealth(receiving=False, last_fragment=previous)
        newest = fragments[-1]
        end = newest.server_timestamp + timedelta(milliseconds=newest.duration_ms)
        return StreamHealth(receiving=True, last_fragment=end)
