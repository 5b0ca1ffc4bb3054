"""Media browser: account -> stream -> day -> hour -> continuous spans (and clips).

Identifiers (stable strings, times in Home Assistant's time zone for days/hours):
``<entry_id>``, ``<entry_id>/<stream>``, ``<entry_id>/<stream>/<YYYY-MM-DD>``,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>`` and, playable,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>/<start_ms>-<end_ms>`` (epoch ms).
Gaps between spans are ``.../<HH+zzzz>/gap-<start_ms>-<end_ms>``: listed, but
resolving one only says that there is no video.
Saved clips sit under ``<entry_id>/<stream>/clips`` and play through the local
media source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, cast

from homeassistant.components.media_player import MediaClass, MediaType
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
    MAX_PLAYLIST_RANGE,
    RecordingIndex,
    Span,
    gather_or_cancel,
    merge_hours,
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
# A span or gap: epoch ms, ASCII digits only (int() would take "1_000" or " 1").
_SPAN_ID: Final = re.compile(r"(gap-)?([0-9]{1,15})-([0-9]{1,15})", re.ASCII)
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


def _unknown(identifier: str) -> Unresolvable:
    return Unresolvable(
        translation_domain=DOMAIN,
        translation_key="media_unknown",
        translation_placeholders={"identifier": identifier},
    )


def _span_range(identifier: str, span: str) -> tuple[datetime, datetime, bool]:
    """(start, end, is a gap) of a span's or gap's last identifier part."""
    if (match := _SPAN_ID.fullmatch(span)) is None:
        raise _unknown(identifier)
    try:
        start, end = _from_ms(int(match[2])), _from_ms(int(match[3]))
    except (OverflowError, ValueError, OSError):  # beyond what datetime holds
        raise _unknown(identifier) from None
    if not timedelta() < end - start <= MAX_PLAYLIST_RANGE:
        raise _unknown(identifier)
    return start, end, match[1] is not None


def _hour_spans(
    fragments: Sequence[Fragment],
    earlier: Sequence[Fragment],
    timestamp_type: TimestampType,
) -> tuple[list[Span], datetime | None]:
    """Spans of an hour and where the fragments before it end (executor: CPU)."""
    last = max((fragment_end(f, timestamp_type) for f in earlier), default=None)
    return merge_spans(fragments, timestamp_type), last


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
        # Dropped when the entry unloads: a reload brings a new client.
        self._indexes: dict[str, RecordingIndex] = {}

    # -- lookup ---------------------------------------------------------------

    def _entry(self, entry_id: str) -> KinesisVideoConfigEntry:
        entry = self.hass.config_entries.async_get_entry(entry_id)
        if (
            entry is None
            or entry.domain != DOMAIN
            or entry.state is not ConfigEntryState.LOADED
        ):
            raise _unknown(entry_id)
        return cast("KinesisVideoConfigEntry", entry)

    def _index(self, entry: KinesisVideoConfigEntry) -> RecordingIndex:
        if (index := self._indexes.get(entry.entry_id)) is None:
            index = RecordingIndex(entry.runtime_data.client)
            self._indexes[entry.entry_id] = index
            entry.async_on_unload(lambda: self._forget(entry.entry_id))
        return index

    def _forget(self, entry_id: str) -> None:
        """Drop an unloaded entry's listings (and its closed client)."""
        del self._indexes[entry_id]

    def _stream(self, entry_id: str, name: str) -> _Stream:
        entry = self._entry(entry_id)
        for arn in entry.options.get(CONF_STREAMS, []):
            if parse_stream_arn(arn).name == name:
                info = entry.runtime_data.coordinator.data.get(arn)
                return _Stream(entry, arn, name, info, self._index(entry))
        raise _unknown(f"{entry_id}/{name}")

    def _clip_dir(self, stream: str) -> tuple[str, Path] | None:
        """(media dir id, directory) where save_clip writes this stream's clips."""
        source_id, folder = media_folder(self.hass)
        if source_id is None:
            return None  # not a media folder: nothing to browse or play it by
        return source_id, folder / CLIP_DIR / stream

    # -- resolve --------------------------------------------------------------

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """An ON_DEMAND HLS session for a span (the player keeps its seek bar)."""
        identifier = item.identifier or ""
        match identifier.split("/"):
            case [entry_id, name, _day, _hour, span]:
                start, end, gap = _span_range(identifier, span)
            case _:
                raise _unknown(identifier)
        stream = self._stream(entry_id, name)
        if gap:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_no_video",
                translation_placeholders={"start": _clock(start), "end": _clock(end)},
            )
        options = stream.entry.options
        try:
            session = await stream.index.client.get_hls_url(
                stream.arn,
                mode="ON_DEMAND",
                start=start,
                end=end - _ONE_MS,
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
        if not item.identifier:
            return self._root()
        entry_id, *rest = item.identifier.split("/")
        if not rest:
            return self._account(entry_id)
        name, *parts = rest
        return await self._browse_stream(self._stream(entry_id, name), parts)

    async def _browse_stream(
        self, stream: _Stream, parts: list[str]
    ) -> BrowseMediaSource:
        """A stream's days, clips, hours or spans; AWS errors said clearly."""
        try:
            match parts:
                case []:
                    return await self._days(stream)
                case ["clips"]:
                    return await self._clips(stream)
                case [day]:
                    return await self._hours(stream, day)
                case [day, hour]:
                    return await self._spans(stream, day, hour)
                case _:
                    raise _unknown(
                        "/".join([stream.entry.entry_id, stream.name, *parts])
                    )
        except KinesisVideoError as err:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_browse_failed",
                translation_placeholders={"stream": stream.name, "error": str(err)},
            ) from err

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
            found = await gather_or_cancel(
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

    async def _hours(self, stream: _Stream, day: str) -> BrowseMediaSource:
        """Hours of a day that hold recordings, listed in parallel."""
        base = f"{stream.entry.entry_id}/{stream.name}/{day}"
        try:
            start, end = _day_bounds(date.fromisoformat(day))
        except (ValueError, OverflowError):  # not a day, or year 1 / 9999
            raise _unknown(base) from None
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
        # A day holds up to 43,200 fragments: merged in one executor job.
        merged = await self.hass.async_add_executor_job(
            merge_hours, hours, stream.timestamp_type
        )
        for hour_start, hour_end, spans in merged:
            if not spans:
                continue
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
            start = local.astimezone(UTC)
            end = start + HOUR
            before = start - MAX_FRAGMENT_DURATION
        except (ValueError, OverflowError):  # not an hour, or year 1 / 9999
            raise _unknown(base) from None
        fragments = await stream.index.fragments(
            stream.arn, start, end, stream.timestamp_type
        )
        # A fragment that began in the previous hour may run on into this one:
        # where it ends, not the hour's start, is where a gap could begin.
        earlier = await stream.index.fragments(
            stream.arn, before, start, stream.timestamp_type
        )
        spans, last = await self.hass.async_add_executor_job(
            _hour_spans, fragments, earlier, stream.timestamp_type
        )
        now = dt_util.utcnow()
        children: list[BrowseMediaSource] = []
        cursor = start if last is None else max(start, last)
        for span in spans:
            if span.start - cursor > GAP_TOLERANCE:
                children.append(self._gap(base, cursor, span.start))
            children.append(self._span(base, span))
            cursor = span.end
        # The current hour is still being recorded: its end is no gap (yet).
        if spans and end <= now and end - cursor > GAP_TOLERANCE:
            children.append(self._gap(base, cursor, end))
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

    def _gap(self, base: str, start: datetime, end: datetime) -> BrowseMediaSource:
        """No video here: shown, but neither playable nor expandable."""
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{base}/gap-{_ms(start)}-{_ms(end)}",
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
