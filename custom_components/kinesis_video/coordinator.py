"""The entry's polls: stream status (DescribeStream) and health (ListFragments)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from weakref import WeakSet

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import (
    CONF_STREAMS,
    DOMAIN,
    HEALTH_POLL_INTERVAL,
    HEALTH_WINDOW,
    STATUS_POLL_INTERVAL,
)
from .kvs import (
    KinesisVideoClient,
    KinesisVideoError,
    NoDataRetentionError,
    PermissionDeniedError,
    ServiceError,
    StreamInfo,
    StreamNotFoundError,
    parse_stream_arn,
)
from .options import EntryOptions
from .timeline import from_ms
from .translated_errors import ServiceOutageError, update_error

_LOGGER = logging.getLogger(__name__)

# While the status poll fails, it tries again this often: the entities come
# back within a minute of an outage's end, not at the next 5-minute poll.
STATUS_RETRY_INTERVAL = timedelta(seconds=30)


class _Polls(Protocol):
    # Read-only: Home Assistant 2025.4 types the exception as Exception.
    @property
    def last_update_success(self) -> bool: ...
    @property
    def last_exception(self) -> BaseException | None: ...


# Every running poll of the integration (all entries): what the log filter reads.
_POLLS: WeakSet[_Polls] = WeakSet()


def _outage_once(record: logging.LogRecord, polls: Iterable[_Polls] = _POLLS) -> bool:
    """One warning per AWS outage, however many polls see it.

    Home Assistant logs a failed poll (once per coordinator, until it
    recovers) at error. The user can do nothing about an AWS outage, and the
    status poll and every stream's health poll see the same one: the first
    such line is a warning, the others while another poll is still failing
    for an outage are debug. Read from the polls themselves, not remembered:
    Home Assistant logs before it marks the logging poll failed, and a poll
    that is unloaded mid-outage leaves nothing behind. Recoveries stay (info).
    """
    args = record.args if isinstance(record.args, tuple) else ()
    if record.levelno != logging.ERROR or not any(
        isinstance(arg, ServiceOutageError) for arg in args
    ):
        return True
    first = not any(
        not poll.last_update_success
        and isinstance(poll.last_exception, ServiceOutageError)
        for poll in list(polls)
    )
    level = logging.WARNING if first else logging.DEBUG
    record.levelno = level
    record.levelname = logging.getLevelName(level)
    return first or _LOGGER.isEnabledFor(logging.DEBUG)


_LOGGER.addFilter(_outage_once)

# Options: follow every stream of the account (streams created later are added,
# deleted ones removed); off, a new stream raises a fixable repair issue instead.
CONF_FOLLOW_ALL = "follow_all_streams"
# Options: creation time (AWS's clock, ISO 8601) of the newest stream the user
# has been shown; only streams created after it are "new". Set at the first
# listing when missing (entries from before this option).
CONF_KNOWN_UNTIL = "streams_known_until"


@dataclass
class KinesisVideoData:
    """What a loaded config entry holds."""

    client: KinesisVideoClient
    coordinator: KinesisVideoCoordinator
    # Read once at setup: changing them reloads the entry.
    options: EntryOptions
    # Stream ARN -> its health coordinator (ListFragments over the last minute).
    health: dict[str, StreamHealthCoordinator] = field(default_factory=dict)

    def health_for(self, arn: str) -> StreamHealthCoordinator:
        """The stream's health poll; one added while running starts polling now."""
        if (poll := self.health.get(arn)) is None:
            status = self.coordinator
            entry = status.config_entry
            poll = StreamHealthCoordinator(status.hass, entry, self.client, status, arn)
            self.health[arn] = poll
            entry.async_create_background_task(
                status.hass, poll.async_refresh(), f"{DOMAIN} first health poll"
            )
        return poll


type KinesisVideoConfigEntry = ConfigEntry[KinesisVideoData]


def retention_issue_id(entry_id: str, stream: str) -> str:
    """The repair issue of a stream without retention (per entry: names repeat)."""
    return f"no_data_retention_{entry_id}_{stream}"


def new_stream_issue_id(entry_id: str, stream: str) -> str:
    """The repair issue of a stream created in the account, not shown yet."""
    return f"new_stream_{entry_id}_{stream}"


def known_until(streams: list[StreamInfo]) -> str:
    """The ``CONF_KNOWN_UNTIL`` of a listing the user has seen."""
    created = [s.created for s in streams if s.created is not None]
    return max(created, default=datetime.min.replace(tzinfo=UTC)).isoformat()


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
        _POLLS.add(self)
        self.client = client
        # Last known "usable" state per stream, to log changes once (the
        # coordinator itself logs once when the service is unreachable).
        self._usable: dict[str, bool] = {}
        # False once ListStreams was refused: the key's policy will not change
        # until the entry is reloaded (new keys reload it).
        self._can_list = True

    @property
    def stream_arns(self) -> list[str]:
        """The streams this entry shows, by ARN."""
        return list(self.config_entry.options.get(CONF_STREAMS, []))

    @property
    def follow_all(self) -> bool:
        """Whether every stream of the account is shown, new ones included."""
        return bool(self.config_entry.options.get(CONF_FOLLOW_ALL, False))

    async def async_shutdown(self) -> None:
        """Stop polling (entry unloaded): no longer an outage the log counts."""
        _POLLS.discard(self)
        await super().async_shutdown()

    async def _async_update_data(self) -> dict[str, StreamInfo | None]:
        """Describe every configured stream."""
        # Until this poll succeeds, the next one comes soon.
        self.update_interval = STATUS_RETRY_INTERVAL
        result: dict[str, StreamInfo | None] = {}
        for arn in self.stream_arns:
            try:
                result[arn] = await self.client.describe_stream(arn)
            except StreamNotFoundError:
                result[arn] = None
            except KinesisVideoError as err:
                # A key whose policy lacks DescribeStream says so: new keys
                # would not help, so no re-authentication (it would loop).
                raise update_error(
                    err, "update_failed", permission_denied="permission_denied_status"
                ) from err
        self.update_interval = STATUS_POLL_INTERVAL
        self._update_retention_issues(result)
        self._log_changes(result)
        if self.follow_all:
            self._drop_deleted(result)
        if (listed := await self._async_list_streams()) is not None:
            self._follow_account(result, listed)
        return result

    async def _async_list_streams(self) -> list[StreamInfo] | None:
        """The account's streams (one ListStreams per poll); None if unknown.

        A failed listing does not fail the status poll: the configured
        streams were described fine, only new ones wait for the next poll.
        """
        if not self._can_list:
            return None
        try:
            return await self.client.list_streams()
        except PermissionDeniedError:
            _LOGGER.info(
                "The key may not list streams (kinesisvideo:ListStreams): "
                "streams created later are not noticed"
            )
            self._can_list = False
        except KinesisVideoError as err:
            # A refused key also fails DescribeStream, which asks for a new one.
            _LOGGER.debug("Listing the account's streams failed: %s", err)
        return None

    def _drop_deleted(self, streams: dict[str, StreamInfo | None]) -> None:
        """Following the account: a stream deleted in AWS goes with its device."""
        gone = [arn for arn, info in streams.items() if info is None]
        if not gone:
            return
        data: KinesisVideoData | None = getattr(self.config_entry, "runtime_data", None)
        for arn in gone:
            del streams[arn]
            self._usable.pop(arn, None)
            if data is not None:
                data.health.pop(arn, None)
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(
            registry, self.config_entry.entry_id
        ):
            if any(ident in gone for _, ident in device.identifiers):
                # One entry per account and region: the device is this entry's only.
                registry.async_remove_device(device.id)
        self._set_options(streams=list(streams))

    def _follow_account(
        self, streams: dict[str, StreamInfo | None], listed: list[StreamInfo]
    ) -> None:
        """Add the account's new streams, or raise a repair issue for each."""
        entry = self.config_entry
        new = [
            s
            for s in listed
            if s.arn not in streams and s.status != "DELETING"  # going anyway
        ]
        raised: set[str] = set()
        if self.follow_all:
            if new:
                _LOGGER.info(
                    "Adding streams created in the account: %s",
                    ", ".join(s.name for s in new),
                )
                streams.update((s.arn, s) for s in new)
                self._set_options(streams=list(streams))
        elif CONF_KNOWN_UNTIL not in entry.options:
            # An entry from before the option: what exists now is not new.
            self._set_options(known=known_until(listed))
        else:
            since = datetime.fromisoformat(entry.options[CONF_KNOWN_UNTIL])
            for info in new:
                if info.created is None or info.created <= since:
                    continue
                issue_id = new_stream_issue_id(entry.entry_id, info.name)
                raised.add(issue_id)
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    issue_id,
                    is_fixable=True,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="new_stream",
                    translation_placeholders={"stream": info.name},
                    data={"entry_id": entry.entry_id, "arn": info.arn},
                )
        remove_new_stream_issues(self.hass, entry.entry_id, keep=raised)

    def _set_options(
        self, streams: list[str] | None = None, known: str | None = None
    ) -> None:
        """Store what the poll learned; no listener reloads the entry for it."""
        options = dict(self.config_entry.options)
        if streams is not None:
            options[CONF_STREAMS] = streams
        if known is not None:
            options[CONF_KNOWN_UNTIL] = known
        self.hass.config_entries.async_update_entry(self.config_entry, options=options)

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


@callback
def async_add_stream_entities(
    entry: KinesisVideoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[str], Iterable[Entity]],
) -> None:
    """Add ``make(arn)``'s entities for each stream, now and as streams are added.

    The status poll holds every stream the entry shows; a stream added while
    running (new in the account, or by a repair) gets its entities at once.
    """
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def _add_new() -> None:
        new = [arn for arn in coordinator.data if arn not in known]
        # A stream that left (deleted, its device with it) may come back.
        known.intersection_update(coordinator.data)
        known.update(new)
        if new:
            async_add_entities([e for arn in new for e in make(arn)])

    _add_new()
    entry.async_on_unload(coordinator.async_add_listener(_add_new))


def remove_new_stream_issues(
    hass: HomeAssistant, entry_id: str, keep: frozenset[str] | set[str] = frozenset()
) -> None:
    """Delete the entry's new-stream repair issues, except ``keep``."""
    prefix = new_stream_issue_id(entry_id, "")
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.startswith(prefix) and issue_id not in keep:
            ir.async_delete_issue(hass, DOMAIN, issue_id)


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
        _POLLS.add(self)
        self.client = client
        self.status = status

    async def async_shutdown(self) -> None:
        """Stop polling (entry unloaded): no longer an outage the log counts."""
        _POLLS.discard(self)
        await super().async_shutdown()

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
            if isinstance(err, ServiceError) and self.status.last_update_success:
                # Likely AWS itself: the camera should say so now, not at the
                # next status poll.
                await self.status.async_request_refresh()
            raise update_error(err, "health_update_failed") from err
        if not self.status.last_update_success:
            # AWS answers again: so may the status poll, now.
            await self.status.async_request_refresh()
        if not fragments:
            return StreamHealth(receiving=False, last_fragment=previous)
        # The newest one's end, from the columns (no Fragment object).
        end = fragments.start_ms("SERVER_TIMESTAMP")[-1] + fragments.durations_ms[-1]
        return StreamHealth(receiving=True, last_fragment=from_ms(end))
