"""Media browser: account -> stream -> day -> hour -> continuous spans (and clips).

Identifiers (stable strings, times in Home Assistant's time zone for days/hours):
``<entry_id>``, ``<entry_id>/<stream>``, ``<entry_id>/<stream>/<YYYY-MM-DD>``,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>`` and, playable,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>/<start_ms>-<end_ms>`` (epoch ms).
Saved clips sit under ``<entry_id>/<stream>/clips`` and play through the local
media source.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, cast

from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .api import (
    ContainerFormat,
    Fragment,
    KinesisVideoClient,
    KinesisVideoError,
    StreamInfo,
    TimestampType,
    parse_stream_arn,
)
from .clip import fragment_end
from .const import (
    CONF_HLS_CONTAINER,
    CONF_STREAMS,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    DEFAULT_HLS_CONTAINER,
    DEFAULT_TIMESTAMP_TYPE,
    DEFAULT_URL_LIFETIME,
    DOMAIN,
)
from .coordinator import KinesisVideoConfigEntry
from .recordings import (
    GAP_TOLERANCE,
    HOUR,
    MAX_FRAGMENT_DURATION,
    MAX_PLAYLIST_FRAGMENTS,
    RecordingIndex,
    Span,
    merge_spans,
)
from .services import MEDIA_FOLDER, media_folder

# The stream level probes at most this many recent days (one small call each).
MAX_DAYS: Final = 31
CLIPS: Final = "clips"
CLIP_DIR: Final = MEDIA_FOLDER  # save_clip's default folder, per stream
HLS_MIME: Final = "application/x-mpegURL"
_HOUR_ID: Final = "%H%z"
_ONE_MS: Final = timedelta(milliseconds=1)
MEDIA_SOURCE_DOMAIN: Final = "media_source"


async def async_get_media_source(hass: HomeAssistant) -> KinesisVideoMediaSource:
    """Set up the Kinesis Video Streams media source."""
    return KinesisVideoMediaSource(hass)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _clock(value: datetime) -> str:
    return dt_util.as_local(value).strftime("%H:%M:%S")


def _length(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day as UTC [start, end) (23 or 25 h on DST changes)."""
    start = dt_util.start_of_local_day(day)
    end = dt_util.start_of_local_day(day + timedelta(days=1))
    return dt_util.as_utc(start), dt_util.as_utc(end)


def _hour_id(hour: datetime) -> str:
    return dt_util.as_local(hour).strftime(_HOUR_ID)


@dataclass(frozen=True, slots=True)
class _Stream:
    entry: KinesisVideoConfigEntry
    arn: str
    name: str
    info: StreamInfo | None
    index: RecordingIndex

    @property
    def timestamp_type(self) -> TimestampType:
        return cast(
            "TimestampType",
            self.entry.options.get(CONF_TIMESTAMP_TYPE, DEFAULT_TIMESTAMP_TYPE),
        )

    def window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """Where recordings may be: the retention period up to now."""
        if self.info is None or self.info.retention_hours == 0:
            return None
        return now - timedelta(hours=self.info.retention_hours), now


class KinesisVideoMediaSource(MediaSource):
    """Recordings of the configured Kinesis video streams."""

    name = "Kinesis Video Streams"

    def __init__(self, hass: HomeAssistant) -> None:
        """Remember Home Assistant; listings are cached per config entry."""
        super().__init__(DOMAIN)
        self.hass = hass
        self._indexes: dict[str, tuple[KinesisVideoClient, RecordingIndex]] = {}

    # -- lookup ---------------------------------------------------------------

    def _entry(self, entry_id: str) -> KinesisVideoConfigEntry:
        entry = self.hass.config_entries.async_get_entry(entry_id)
        if (
            entry is None
            or entry.domain != DOMAIN
            or entry.state is not ConfigEntryState.LOADED
        ):
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_unknown",
                translation_placeholders={"identifier": entry_id},
            )
        return cast("KinesisVideoConfigEntry", entry)

    def _index(self, entry: KinesisVideoConfigEntry) -> RecordingIndex:
        client = entry.runtime_data.client
        cached = self._indexes.get(entry.entry_id)
        if cached is None or cached[0] is not client:  # new client after a reload
            cached = (client, RecordingIndex(client))
            self._indexes[entry.entry_id] = cached
        return cached[1]

    def _stream(self, entry_id: str, name: str) -> _Stream:
        entry = self._entry(entry_id)
        for arn in entry.options.get(CONF_STREAMS, []):
            if parse_stream_arn(arn).name == name:
                info = entry.runtime_data.coordinator.data.get(arn)
                return _Stream(entry, arn, name, info, self._index(entry))
        raise Unresolvable(
            translation_domain=DOMAIN,
            translation_key="media_unknown",
            translation_placeholders={"identifier": f"{entry_id}/{name}"},
        )

    def _clip_dir(self, stream: str) -> tuple[str, Path] | None:
        """(media dir id, directory) where save_clip writes this stream's clips."""
        source_id, folder = media_folder(self.hass)
        if source_id is None:
            return None  # not a media folder: nothing to browse or play it by
        return source_id, folder / CLIP_DIR / stream

    # -- resolve --------------------------------------------------------------

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """An ON_DEMAND HLS session for a span (the player keeps its seek bar)."""
        parts = item.identifier.split("/")
        try:
            entry_id, name, _day, _hour, span = parts
            start_ms, end_ms = (int(v) for v in span.split("-"))
        except ValueError:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_unknown",
                translation_placeholders={"identifier": item.identifier},
            ) from None
        stream = self._stream(entry_id, name)
        options = stream.entry.options
        try:
            session = await stream.index.client.get_hls_url(
                stream.arn,
                mode="ON_DEMAND",
                start=_from_ms(start_ms),
                end=_from_ms(end_ms) - _ONE_MS,
                expires=int(options.get(CONF_URL_LIFETIME, DEFAULT_URL_LIFETIME)),
                container=cast(
                    "ContainerFormat",
                    options.get(CONF_HLS_CONTAINER, DEFAULT_HLS_CONTAINER),
                ),
                timestamp_type=stream.timestamp_type,
                max_results=MAX_PLAYLIST_FRAGMENTS,
            )
        except KinesisVideoError as err:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_playback_failed",
                translation_placeholders={"stream": name, "error": str(err)},
            ) from err
        return PlayMedia(session.url, HLS_MIME)

    # -- browse ---------------------------------------------------------------

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Browse one level of the tree."""
        parts = item.identifier.split("/") if item.identifier else []
        match parts:
            case []:
                return self._root()
            case [entry_id]:
                return self._account(entry_id)
            case [entry_id, name]:
                return await self._days(self._stream(entry_id, name))
            case [entry_id, name, "clips"]:
                return await self._clips(self._stream(entry_id, name))
            case [entry_id, name, day]:
                return await self._hours(self._stream(entry_id, name), day)
            case [entry_id, name, day, hour]:
                return await self._spans(self._stream(entry_id, name), day, hour)
        raise Unresolvable(
            translation_domain=DOMAIN,
            translation_key="media_unknown",
            translation_placeholders={"identifier": item.identifier},
        )

    def _folder(
        self,
        identifier: str | None,
        title: str,
        children: list[BrowseMediaSource] | None = None,
        *,
        children_class: MediaClass = MediaClass.DIRECTORY,
    ) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=identifier,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.VIDEO,
            title=title,
            can_play=False,
            can_expand=True,
            children=children,
            children_media_class=children_class,
        )

    def _root(self) -> BrowseMediaSource:
        entries = [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if entry.state is ConfigEntryState.LOADED
        ]
        return self._folder(
            None,
            self.name or DOMAIN,
            [self._folder(entry.entry_id, entry.title) for entry in entries],
        )

    def _account(self, entry_id: str) -> BrowseMediaSource:
        entry = self._entry(entry_id)
        names = [parse_stream_arn(a).name for a in entry.options.get(CONF_STREAMS, [])]
        return self._folder(
            entry_id,
            entry.title,
            [self._folder(f"{entry_id}/{name}", name) for name in names],
        )

    async def _days(self, stream: _Stream) -> BrowseMediaSource:
        """Days (local) of the retention period that hold recordings, newest first."""
        base = f"{stream.entry.entry_id}/{stream.name}"
        children: list[BrowseMediaSource] = []
        if await self._has_clips(stream.name):
            children.append(self._folder(f"{base}/{CLIPS}", "Saved clips"))
        now = dt_util.utcnow()
        if (window := stream.window(now)) is not None:
            first = dt_util.as_local(window[0]).date()
            day = dt_util.as_local(now).date()
            days: list[date] = []
            while day >= first and len(days) < MAX_DAYS:
                days.append(day)
                day -= timedelta(days=1)
            found = await asyncio.gather(
                *(
                    stream.index.has_recordings(
                        stream.arn, *_day_bounds(d), stream.timestamp_type
                    )
                    for d in days
                )
            )
            children.extend(
                self._folder(f"{base}/{d.isoformat()}", d.strftime("%Y-%m-%d (%a)"))
                for d, has in zip(days, found, strict=True)
                if has
            )
        return self._folder(base, stream.name, children)

    def _parse_day(self, stream: _Stream, day: str) -> date:
        try:
            return date.fromisoformat(day)
        except ValueError:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_unknown",
                translation_placeholders={"identifier": f"{stream.name}/{day}"},
            ) from None

    async def _hours(self, stream: _Stream, day: str) -> BrowseMediaSource:
        """Hours of a day that hold recordings, listed in parallel."""
        base = f"{stream.entry.entry_id}/{stream.name}/{day}"
        start, end = _day_bounds(self._parse_day(stream, day))
        hours: list[tuple[datetime, datetime, list[Fragment]]] = []
        if (window := stream.window(dt_util.utcnow())) is not None:
            # Whole hours of the day that overlap the retention period.
            first = max(0, (window[0] - start) // HOUR)
            last = min((end - start) // HOUR, -((start - window[1]) // HOUR))
            if first < last:
                hours = await stream.index.fragments_by_hour(
                    stream.arn,
                    start + first * HOUR,
                    start + last * HOUR,
                    stream.timestamp_type,
                )
        children: list[BrowseMediaSource] = []
        for hour_start, hour_end, fragments in hours:
            if not fragments:
                continue
            spans = merge_spans(fragments, stream.timestamp_type)
            recorded = sum((s.end - s.start for s in spans), timedelta())
            title = (
                f"{dt_util.as_local(hour_start):%H:%M} - "
                f"{dt_util.as_local(hour_end):%H:%M}"
                f" ({_length(recorded)} in {len(spans)}"
                f" span{'s' if len(spans) > 1 else ''})"
            )
            children.append(self._folder(f"{base}/{_hour_id(hour_start)}", title))
        return self._folder(base, f"{stream.name} {day}", children)

    async def _spans(self, stream: _Stream, day: str, hour: str) -> BrowseMediaSource:
        """Playable continuous spans of one hour, with the gaps between them."""
        base = f"{stream.entry.entry_id}/{stream.name}/{day}/{hour}"
        try:
            local = datetime.strptime(f"{day} {hour}", f"%Y-%m-%d {_HOUR_ID}")  # noqa: DTZ007 - %z
        except ValueError:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_unknown",
                translation_placeholders={"identifier": base},
            ) from None
        start = local.astimezone(UTC)
        end = start + HOUR
        fragments = await stream.index.fragments(
            stream.arn, start, end, stream.timestamp_type
        )
        spans = merge_spans(fragments, stream.timestamp_type)
        now = dt_util.utcnow()
        children: list[BrowseMediaSource] = []
        # A fragment that began in the previous hour may run on into this one:
        # where it ends, not the hour's start, is where a gap could begin.
        earlier = await stream.index.fragments(
            stream.arn, start - MAX_FRAGMENT_DURATION, start, stream.timestamp_type
        )
        cursor = max(
            [start, *(fragment_end(f, stream.timestamp_type) for f in earlier)]
        )
        for span in spans:
            if span.start - cursor > GAP_TOLERANCE:
                children.append(self._gap(cursor, span.start))
            children.append(self._span(base, span))
            cursor = span.end
        # The current hour is still being recorded: its end is no gap (yet).
        if spans and end <= now and end - cursor > GAP_TOLERANCE:
            children.append(self._gap(cursor, end))
        title = f"{stream.name} {day} {dt_util.as_local(start):%H:%M}"
        return self._folder(base, title, children, children_class=MediaClass.VIDEO)

    def _span(self, base: str, span: Span) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{base}/{_ms(span.start)}-{_ms(span.end)}",
            media_class=MediaClass.VIDEO,
            media_content_type=MediaType.VIDEO,
            title=(
                f"{_clock(span.start)} - {_clock(span.end)}"
                f" ({_length(span.end - span.start)})"
            ),
            can_play=True,
            can_expand=False,
        )

    def _gap(self, start: datetime, end: datetime) -> BrowseMediaSource:
        """No video here: shown, but neither playable nor expandable."""
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=None,
            media_class=MediaClass.VIDEO,
            media_content_type=MediaType.VIDEO,
            title=(
                f"No video {_clock(start)} - {_clock(end)} ({_length(end - start)})"
            ),
            can_play=False,
            can_expand=False,
        )

    # -- saved clips ----------------------------------------------------------

    def _list_clips(self, directory: Path) -> list[str]:
        """File names of the saved clips, newest first (executor: disk I/O)."""
        if not directory.is_dir():
            return []
        clips = [p for p in directory.iterdir() if p.suffix == ".mp4" and p.is_file()]
        clips.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
        return [p.name for p in clips]

    async def _has_clips(self, stream: str) -> bool:
        if (where := self._clip_dir(stream)) is None:
            return False
        return bool(await self.hass.async_add_executor_job(self._list_clips, where[1]))

    async def _clips(self, stream: _Stream) -> BrowseMediaSource:
        """Clips saved by the save_clip action, played by the local media source."""
        children: list[BrowseMediaSource] = []
        if (where := self._clip_dir(stream.name)) is not None:
            source_id, directory = where
            names = await self.hass.async_add_executor_job(self._list_clips, directory)
            children = [
                BrowseMediaSource(
                    domain=MEDIA_SOURCE_DOMAIN,
                    identifier=f"{source_id}/{CLIP_DIR}/{stream.name}/{name}",
                    media_class=MediaClass.VIDEO,
                    media_content_type="video/mp4",
                    title=name,
                    can_play=True,
                    can_expand=False,
                )
                for name in names
            ]
        base = f"{stream.entry.entry_id}/{stream.name}/{CLIPS}"
        return self._folder(
            base,
            f"{stream.name}: saved clips",
            children,
            children_class=MediaClass.VIDEO,
        )
