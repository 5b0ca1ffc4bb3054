"""Media browser: account -> stream -> day -> hour -> continuous spans (and clips).

Identifiers (stable strings, times in Home Assistant's time zone for days/hours):
``<entry_id>``, ``<entry_id>/<stream>``, ``<entry_id>/<stream>/<YYYY-MM-DD>``,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>`` and, playable,
``<entry_id>/<stream>/<YYYY-MM-DD>/<HH+zzzz>/<start_ms>-<end_ms>`` (epoch ms).
Gaps between spans are ``.../<HH+zzzz>/gap-<start_ms>-<end_ms>``: listed, but
resolving one only says that there is no video.
Saved clips sit under ``<entry_id>/<stream>/clips`` and play through the local
media source.

Every day, hour and span shows a thumbnail from its own time (see thumbnails.py);
titles are short for the gallery, the detail is in the level below. Past hours'
spans are kept (recordings.ArchiveStore, persisted in ``.storage``), so a day
opened once opens again without a call, across restarts.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import quote

from homeassistant.components import media_player
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
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import (
    CONF_STREAMS,
    DOMAIN,
)
from .coordinator import KinesisVideoConfigEntry
from .folders import MEDIA_FOLDER, cache_folder, media_folder
from .kvs import (
    KinesisVideoError,
    PlaybackRequest,
    StreamInfo,
    TimestampType,
    parse_stream_arn,
)
from .recordings import (
    HOUR,
    MAX_PLAYLIST_FRAGMENTS,
    MAX_PLAYLIST_RANGE,
    ArchiveStore,
    RecordingIndex,
    Span,
    gather_or_cancel,
)
from .thumbnails import URL_PREFIX, DiskCache, Thumbnails, icon_url
from .timeline import from_ms, holes, to_ms
from .translated_errors import media_error

if TYPE_CHECKING:
    from homeassistant.components.media_player import SearchMedia, SearchMediaQuery

# Home Assistant 2025.7+: media sources may be searched (2025.4 has no search).
_SEARCH_MEDIA: type[SearchMedia] | None = getattr(media_player, "SearchMedia", None)
CAN_SEARCH: Final = _SEARCH_MEDIA is not None
# The stream level probes at most this many recent days (one small call each).
MAX_DAYS: Final = 31
CLIPS: Final = "clips"
CLIP_DIR: Final = MEDIA_FOLDER  # save_clip's default folder, per stream
HLS_MIME: Final = "application/x-mpegURL"
# A day opened for the first time answers after this long with the hours listed
# by then (newest first); the others are shown as plain hour tiles (listed when
# opened) and go on being listed for the next look. ListFragments' 5 TPS cannot
# list a busy day faster.
DAY_BUDGET_S: Final = 0.8
# An hour's thumbnail is asked by its start (epoch ms): a multiple of 15 minutes
# (local hours start at :00, :30 or :45 UTC).
_QUARTER_MS: Final = 900_000
# An hour ended this long ago is past: what KVS holds for it no longer changes.
SETTLED: Final = timedelta(minutes=5)
STORE_VERSION: Final = 1
STORE_KEY: Final = f"{DOMAIN}.archive"
STORE_SAVE_DELAY_S: Final = 30
_HOUR_ID: Final = "%H%z"
_DASH: Final = "\u2013"  # en dash, as in 11:00-11:05 printed well
_ONE_MS: Final = timedelta(milliseconds=1)
# A span or gap: epoch ms, ASCII digits only (int() would take "1_000" or " 1").
_SPAN_ID: Final = re.compile(r"(gap-)?([0-9]{1,15})-([0-9]{1,15})", re.ASCII)
_TIME: Final = re.compile(
    r"(?:(?P<word>today|yesterday)|(?P<day>\d{4}-\d{2}-\d{2}))?[ T]*"
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?",
    re.ASCII | re.IGNORECASE,
)
MEDIA_SOURCE_DOMAIN: Final = "media_source"
DATA_ARCHIVE: HassKey[asyncio.Future[Archive]] = HassKey(f"{DOMAIN}_archive")


async def async_get_media_source(hass: HomeAssistant) -> KinesisVideoMediaSource:
    """Set up the Kinesis Video Streams media source."""
    return KinesisVideoMediaSource(hass, await async_get_archive(hass))


async def async_get_archive(hass: HomeAssistant) -> Archive:
    """The listings and thumbnails shared by the media source and its views."""
    if (made := hass.data.get(DATA_ARCHIVE)) is None:
        made = hass.data[DATA_ARCHIVE] = hass.loop.create_future()
        try:
            archive = Archive(hass)
            await archive.async_load()
        except BaseException as err:
            del hass.data[DATA_ARCHIVE]
            made.set_exception(err)
            made.exception()  # retrieved: the caller gets it raised
            raise
        made.set_result(archive)
    return await asyncio.shield(made)


def _clock(value: datetime) -> str:
    return dt_util.as_local(value).strftime("%H:%M:%S")


def _minutes(value: datetime) -> str:
    return dt_util.as_local(value).strftime("%H:%M")


def _range(start: datetime, end: datetime) -> str:
    """A short range for a gallery card (11:00 to 11:05), seconds if shorter."""
    if end - start < timedelta(minutes=1):
        return f"{_clock(start)} ({_length(end - start)})"
    return f"{_minutes(start)}{_DASH}{_minutes(end)}"


def _length(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _recorded(spans: list[Span]) -> timedelta:
    return timedelta(milliseconds=sum(s.end_ms - s.start_ms for s in spans))


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day as UTC [start, end) (23 or 25 h on DST changes)."""
    start = dt_util.start_of_local_day(day)
    end = dt_util.start_of_local_day(day + timedelta(days=1))
    return dt_util.as_utc(start), dt_util.as_utc(end)


def _parse_day(identifier: str, day: str) -> tuple[datetime, datetime]:
    try:
        return _day_bounds(date.fromisoformat(day))
    except (ValueError, OverflowError):  # not a day, or year 1 / 9999
        raise _unknown(identifier) from None


def _parse_hour(
    identifier: str, day: str, hour: str
) -> tuple[datetime, datetime, datetime]:
    """The hour before, the hour's start and its end (UTC), of a day's hour id."""
    try:
        local = datetime.strptime(f"{day} {hour}", f"%Y-%m-%d {_HOUR_ID}")  # noqa: DTZ007 - %z
        start = local.astimezone(UTC)
        return start - HOUR, start, start + HOUR
    except (ValueError, OverflowError):  # not an hour, or year 1 / 9999
        raise _unknown(identifier) from None


def _hour_id(hour: datetime) -> str:
    return dt_util.as_local(hour).strftime(_HOUR_ID)


def _searchable(folder: BrowseMediaSource) -> BrowseMediaSource:
    """``folder``, offering search where Home Assistant has it (2025.7+)."""
    # 2025.4 has no such attribute (nor reads it): typed there as an error.
    folder.can_search = CAN_SEARCH  # type: ignore[attr-defined,unused-ignore]
    return folder


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
        start, end = from_ms(int(match[2])), from_ms(int(match[3]))
    except (OverflowError, ValueError, OSError):  # beyond what datetime holds
        raise _unknown(identifier) from None
    if not timedelta() < end - start <= MAX_PLAYLIST_RANGE:
        raise _unknown(identifier)
    return start, end, match[1] is not None


@dataclass(frozen=True, slots=True)
class _Stream:
    entry: KinesisVideoConfigEntry
    arn: str
    name: str
    info: StreamInfo | None
    index: RecordingIndex

    @property
    def base(self) -> str:
        return f"{self.entry.entry_id}/{self.name}"

    @property
    def timestamp_type(self) -> TimestampType:
        return self.entry.runtime_data.options.timestamp_type

    def window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """Where recordings may be: the retention period up to now."""
        if self.info is None or self.info.retention_hours == 0:
            return None
        return now - timedelta(hours=self.info.retention_hours), now

    def final(self, start: datetime, end: datetime, now: datetime) -> bool:
        """Whether [start, end) is past and wholly kept: its listing is for good."""
        window = self.window(now)
        return window is not None and start >= window[0] and end <= now - SETTLED

    def hours(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Whole hours of [start, end) that overlap the retention period."""
        now = dt_util.utcnow()
        if (window := self.window(now)) is None:
            return []
        first = max(0, (window[0] - start) // HOUR)
        last = min((end - start) // HOUR, -((start - window[1]) // HOUR))
        return [(start + i * HOUR, start + (i + 1) * HOUR) for i in range(first, last)]

    def thumbnail(self, kind: str, value: str) -> str:
        return f"{URL_PREFIX}/{self.base}/{kind}/{value}"

    def span_thumbnail(self, span: Span) -> str:
        return self.thumbnail("span", f"{span.start_ms}-{span.end_ms}")

    def hour_thumbnail(self, start: datetime) -> str:
        """An hour not listed yet: the view finds its first span when asked."""
        return self.thumbnail("hour", str(to_ms(start)))


class Archive:
    """Per Home Assistant: the listings of every account, their store, thumbnails."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing loaded yet: see ``async_load``."""
        self.hass = hass
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, STORE_KEY)
        self.listings = ArchiveStore(on_change=self._save)
        self.thumbnails = Thumbnails(
            DiskCache(cache_folder(hass, "thumbnails")), hass.async_add_executor_job
        )
        # Dropped when the entry unloads: a reload brings a new client.
        self.indexes: dict[str, RecordingIndex] = {}

    async def async_load(self) -> None:
        """Read the listings kept from earlier runs."""
        self.listings.load(await self._store.async_load())

    def _save(self) -> None:
        self._store.async_delay_save(self.listings.dump, STORE_SAVE_DELAY_S)

    # -- lookup ---------------------------------------------------------------

    def entry(self, entry_id: str) -> KinesisVideoConfigEntry:
        """A loaded entry of this integration (Unresolvable if not)."""
        entry = self.hass.config_entries.async_get_entry(entry_id)
        if (
            entry is None
            or entry.domain != DOMAIN
            or entry.state is not ConfigEntryState.LOADED
        ):
            raise _unknown(entry_id)
        return cast("KinesisVideoConfigEntry", entry)

    def _index(self, entry: KinesisVideoConfigEntry) -> RecordingIndex:
        if (index := self.indexes.get(entry.entry_id)) is None:
            index = RecordingIndex(
                entry.runtime_data.client,
                store=self.listings,
                run_in_executor=self.hass.async_add_executor_job,
            )
            self.indexes[entry.entry_id] = index
            entry.async_on_unload(lambda: self._forget(entry.entry_id))
        return index

    def _forget(self, entry_id: str) -> None:
        """Drop an unloaded entry's listings (and its closed client)."""
        self.indexes.pop(entry_id).close()

    def stream(self, entry_id: str, name: str) -> _Stream:
        """A configured stream of a loaded entry (Unresolvable if not)."""
        entry = self.entry(entry_id)
        for arn in entry.options.get(CONF_STREAMS, []):
            if parse_stream_arn(arn).name == name:
                info = entry.runtime_data.coordinator.data.get(arn)
                return _Stream(entry, arn, name, info, self._index(entry))
        raise _unknown(f"{entry_id}/{name}")

    def streams(self, entry_id: str | None) -> list[_Stream]:
        """Every configured stream of one loaded entry, or of all of them."""
        entries = (
            [self.entry(entry_id)]
            if entry_id
            else [
                cast("KinesisVideoConfigEntry", e)
                for e in self.hass.config_entries.async_entries(DOMAIN)
                if e.state is ConfigEntryState.LOADED
            ]
        )
        return [
            self.stream(e.entry_id, parse_stream_arn(arn).name)
            for e in entries
            for arn in e.options.get(CONF_STREAMS, [])
        ]

    def clip_dir(self, stream: str) -> tuple[str, Path] | None:
        """(media dir id, directory) where save_clip writes this stream's clips."""
        source_id, folder = media_folder(self.hass)
        if source_id is None:
            return None  # not a media folder: nothing to browse or play it by
        return source_id, folder / CLIP_DIR / stream

    # -- thumbnails -----------------------------------------------------------

    async def async_thumbnail(
        self, entry_id: str, stream: str, kind: str, value: str
    ) -> bytes | str | None:
        """The picture of a node (or an icon's name); LookupError if no such node."""
        try:
            target = self.stream(entry_id, stream)
        except Unresolvable as err:
            raise LookupError(entry_id) from err
        match kind:
            case "span":
                return await self._span_thumbnail(target, value)
            case "day":
                return await self._day_thumbnail(target, value)
            case "hour":
                return await self._hour_thumbnail(target, value)
            case "clip":
                return await self._clip_thumbnail(target, value)
        raise LookupError(kind)

    async def _span_thumbnail(self, stream: _Stream, value: str) -> bytes | None:
        try:
            start, end, gap = _span_range(value, value)
        except Unresolvable as err:
            raise LookupError(value) from err
        window = stream.window(dt_util.utcnow())
        if gap or window is None or not window[0] <= start <= window[1]:
            raise LookupError(value)  # nothing AWS could show: not billed
        return await self.thumbnails.still(
            stream.index.client,
            stream.arn,
            stream.timestamp_type,
            to_ms(start),
            to_ms(end),
        )

    async def _day_thumbnail(self, stream: _Stream, value: str) -> bytes | None:
        """The still of the day's first span (found with a few calls, once)."""
        try:
            start, end = _parse_day(value, value)
        except Unresolvable as err:
            raise LookupError(value) from err
        if not stream.hours(start, end):
            raise LookupError(value)  # nothing kept on that day: no call
        span = await self.first_span(stream, start, end)
        if span is None:
            return None
        return await self.thumbnails.still(
            stream.index.client,
            stream.arn,
            stream.timestamp_type,
            span.start_ms,
            span.end_ms,
        )

    async def _hour_thumbnail(self, stream: _Stream, value: str) -> bytes | str | None:
        """The still of an hour's first span, listing the hour if need be.

        Its first span's picture (the same one, billed once), as the hour's
        tile shows once the hour is listed; the no-video icon if it has none.
        """
        if not (value.isascii() and value.isdigit() and len(value) <= 15):
            raise LookupError(value)
        if int(value) % _QUARTER_MS:
            raise LookupError(value)
        start = from_ms(int(value))
        end = start + HOUR
        if not stream.hours(start, end):
            raise LookupError(value)  # nothing kept in that hour: no call
        try:
            spans = await stream.index.spans(
                stream.arn,
                start,
                end,
                stream.timestamp_type,
                final=stream.final(start, end, dt_util.utcnow()),
            )
        except KinesisVideoError:
            return None  # not listed now: no picture, asked again next time
        if not spans:
            return "no_video"
        return await self.thumbnails.still(
            stream.index.client,
            stream.arn,
            stream.timestamp_type,
            spans[0].start_ms,
            spans[0].end_ms,
        )

    def known_first(
        self, stream: _Stream, start: datetime, end: datetime
    ) -> Span | None:
        """The first span of [start, end) if the listings kept tell it (no call)."""
        for a, b in stream.hours(start, end):
            known = stream.index.known_spans(stream.arn, a, b, stream.timestamp_type)
            if known is None:
                return None  # not listed: it may hold the first span
            if known:
                return known[0]
        return None

    async def first_span(
        self, stream: _Stream, start: datetime, end: datetime
    ) -> Span | None:
        """The first span of [start, end): kept hours first, then a few probes."""
        if (known_first := self.known_first(stream, start, end)) is not None:
            return known_first
        now = dt_util.utcnow()
        spans = await stream.index.first_spans(
            stream.arn,
            [(a, b, stream.final(a, b, now)) for a, b in stream.hours(start, end)],
            stream.timestamp_type,
        )
        return spans[0] if spans else None

    async def _clip_thumbnail(self, stream: _Stream, value: str) -> bytes | None:
        if (where := self.clip_dir(stream.name)) is None or not _clip_name(value):
            raise LookupError(value)
        path = where[1] / value

        def stat() -> tuple[int, int] | None:
            try:
                found = path.stat()
            except OSError:
                return None
            return (found.st_size, found.st_mtime_ns) if path.is_file() else None

        if (found := await self.hass.async_add_executor_job(stat)) is None:
            raise LookupError(value)
        return await self.thumbnails.clip(path, *found)


def _clip_name(name: str) -> bool:
    """A saved clip's plain file name: no folder, nothing hidden."""
    return (
        name.endswith(".mp4")
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and "\0" not in name
    )


class KinesisVideoMediaSource(MediaSource):
    """Recordings of the configured Kinesis video streams."""

    name = "Kinesis Video Streams"

    def __init__(self, hass: HomeAssistant, archive: Archive) -> None:
        """Remember Home Assistant and the shared archive."""
        super().__init__(DOMAIN)
        self.hass = hass
        self.archive = archive

    # -- resolve --------------------------------------------------------------

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """An ON_DEMAND HLS session for a span (the player keeps its seek bar)."""
        identifier = item.identifier or ""
        match identifier.split("/"):
            case [entry_id, name, _day, _hour, span]:
                start, end, gap = _span_range(identifier, span)
            case _:
                raise _unknown(identifier)
        stream = self.archive.stream(entry_id, name)
        if gap:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="media_no_video",
                translation_placeholders={"start": _clock(start), "end": _clock(end)},
            )
        options = stream.entry.runtime_data.options
        try:
            session = await stream.index.client.get_hls_url(
                stream.arn,
                PlaybackRequest(
                    mode="ON_DEMAND",
                    start=start,
                    end=end - _ONE_MS,
                    expires=options.url_lifetime,
                    container=options.hls_container,
                    timestamp_type=stream.timestamp_type,
                    max_results=MAX_PLAYLIST_FRAGMENTS,
                ),
            )
        except KinesisVideoError as err:
            raise media_error(err, "media_playback_failed", name) from err
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
        return await self._browse_stream(self.archive.stream(entry_id, name), parts)

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
                    raise _unknown("/".join([stream.base, *parts]))
        except KinesisVideoError as err:
            raise media_error(err, "media_browse_failed", stream.name) from err

    def _folder(
        self,
        identifier: str | None,
        title: str,
        children: list[BrowseMediaSource] | None = None,
        *,
        children_class: MediaClass = MediaClass.DIRECTORY,
        thumbnail: str | None = None,
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
            thumbnail=thumbnail,
        )

    def _root(self) -> BrowseMediaSource:
        entries = [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if entry.state is ConfigEntryState.LOADED
        ]
        return _searchable(
            self._folder(
                None,
                self.name or DOMAIN,
                [self._folder(entry.entry_id, entry.title) for entry in entries],
            )
        )

    def _account(self, entry_id: str) -> BrowseMediaSource:
        entry = self.archive.entry(entry_id)
        names = [parse_stream_arn(a).name for a in entry.options.get(CONF_STREAMS, [])]
        return _searchable(
            self._folder(
                entry_id,
                entry.title,
                [self._folder(f"{entry_id}/{name}", name) for name in names],
            )
        )

    async def _still_url(self, stream: _Stream, kind: str, value: str) -> str:
        """A node's thumbnail URL, or the no-image icon for a stream without stills."""
        if await self.archive.thumbnails.stream_has_no_stills(stream.arn):
            return icon_url("no_image")
        return stream.thumbnail(kind, value)

    async def _days(self, stream: _Stream) -> BrowseMediaSource:
        """Days (local) of the retention period that hold recordings, newest first."""
        base = stream.base
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
            bounds = [_day_bounds(d) for d in days]
            found = await gather_or_cancel(
                *(
                    stream.index.has_recordings(
                        stream.arn,
                        *bound,
                        stream.timestamp_type,
                        final=stream.final(*bound, now),
                    )
                    for bound in bounds
                )
            )
            no_stills = await self.archive.thumbnails.stream_has_no_stills(stream.arn)
            for d, bound, has in zip(days, bounds, found, strict=True):
                if not has:
                    continue
                known = self.archive.known_first(stream, *bound)
                thumbnail = (
                    icon_url("no_image")
                    if no_stills
                    else stream.span_thumbnail(known)
                    if known is not None
                    else stream.thumbnail("day", d.isoformat())
                )
                children.append(
                    self._folder(
                        f"{base}/{d.isoformat()}",
                        d.strftime("%Y-%m-%d (%a)"),
                        thumbnail=thumbnail,
                    )
                )
        return _searchable(self._folder(base, stream.name, children))

    async def _hours(self, stream: _Stream, day: str) -> BrowseMediaSource:
        """Hours of a day that may hold recordings, listed concurrently, kept.

        Hours listed within the budget show their first span's picture; hours
        not listed yet are shown too (their tile finds its picture, opening one
        lists it), and hours known to hold nothing are left out. Never
        ``not_shown``: the frontend says "incompatible items are hidden".
        """
        base = f"{stream.base}/{day}"
        start, end = _parse_day(base, day)
        now = dt_util.utcnow()
        hours = stream.hours(start, end)
        listed = await stream.index.hours(
            stream.arn,
            [(a, b, stream.final(a, b, now)) for a, b in hours],
            stream.timestamp_type,
            budget=DAY_BUDGET_S,
        )
        no_stills = await self.archive.thumbnails.stream_has_no_stills(stream.arn)
        children: list[BrowseMediaSource] = []
        recorded = timedelta()
        for (hour_start, _), spans in zip(hours, listed, strict=True):
            if spans == []:
                continue  # known to hold nothing
            if spans is not None:
                recorded += _recorded(spans)
            if no_stills:
                thumbnail = icon_url("no_image")
            elif spans is None:
                thumbnail = stream.hour_thumbnail(hour_start)
            else:
                thumbnail = stream.span_thumbnail(spans[0])
            children.append(
                self._folder(
                    f"{base}/{_hour_id(hour_start)}",
                    _minutes(hour_start),
                    thumbnail=thumbnail,
                )
            )
        title = f"{stream.name} {day}"
        if children and None not in listed:
            title += f": {_length(recorded)} recorded"
        return self._folder(base, title, children)

    async def _spans(self, stream: _Stream, day: str, hour: str) -> BrowseMediaSource:
        """Playable continuous spans of one hour, with the gaps between them."""
        base = f"{stream.base}/{day}/{hour}"
        previous, start, end = _parse_hour(base, day, hour)
        now = dt_util.utcnow()
        kind = stream.timestamp_type
        spans: list[Span] = []
        last = None
        kept = bool(stream.hours(start, end))
        if kept:  # else nothing is kept there: no call
            final = stream.final(start, end, now)
            spans = await stream.index.spans(stream.arn, start, end, kind, final=final)
            # A fragment that began in the previous hour may run on into this
            # one: where it ends, not the hour's start, is where a gap begins.
            last = await stream.index.ended_before(stream.arn, previous, start, kind)
        cursor = to_ms(start) if last is None else max(to_ms(start), last)
        # The current hour is still being recorded: its end is no gap (yet).
        missing = holes(spans, cursor, to_ms(end) if end <= now else None)
        if kept and not spans and (stop := min(to_ms(end), to_ms(now))) > cursor:
            # Nothing recorded (an hour shown before it was listed): one gap.
            missing = [(cursor, stop)]
        no_stills = await self.archive.thumbnails.stream_has_no_stills(stream.arn)
        nodes = [(s.start_ms, self._span(stream, base, s, no_stills)) for s in spans]
        nodes += [(a, self._gap(base, from_ms(a), from_ms(b))) for a, b in missing]
        nodes.sort(key=lambda node: node[0])
        title = f"{stream.name} {day} {_minutes(start)}{_DASH}{_minutes(end)}"
        if spans:
            title += (
                f": {_length(_recorded(spans))} in {len(spans)}"
                f" span{'s' if len(spans) > 1 else ''}"
            )
        return self._folder(
            base,
            title,
            [node for _, node in nodes],
            children_class=MediaClass.VIDEO,
        )

    def _span(
        self, stream: _Stream, base: str, span: Span, no_stills: bool
    ) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{base}/{span.start_ms}-{span.end_ms}",
            media_class=MediaClass.VIDEO,
            media_content_type=MediaType.VIDEO,
            title=_range(span.start, span.end),
            can_play=True,
            can_expand=False,
            thumbnail=icon_url("no_image")
            if no_stills
            else stream.span_thumbnail(span),
        )

    def _gap(self, base: str, start: datetime, end: datetime) -> BrowseMediaSource:
        """No video here: shown with its own icon, neither playable nor expandable."""
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{base}/gap-{to_ms(start)}-{to_ms(end)}",
            media_class=MediaClass.VIDEO,
            media_content_type=MediaType.VIDEO,
            title=f"No video {_range(start, end)}",
            can_play=False,
            can_expand=False,
            thumbnail=icon_url("no_video"),
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
        if (where := self.archive.clip_dir(stream)) is None:
            return False
        return bool(await self.hass.async_add_executor_job(self._list_clips, where[1]))

    def _clip(self, stream: _Stream, source_id: str, name: str) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=MEDIA_SOURCE_DOMAIN,
            identifier=f"{source_id}/{CLIP_DIR}/{stream.name}/{name}",
            media_class=MediaClass.VIDEO,
            media_content_type="video/mp4",
            title=name,
            can_play=True,
            can_expand=False,
            thumbnail=stream.thumbnail("clip", quote(name, safe="")),
        )

    async def _clips(self, stream: _Stream) -> BrowseMediaSource:
        """Clips saved by the save_clip action, played by the local media source."""
        children: list[BrowseMediaSource] = []
        if (where := self.archive.clip_dir(stream.name)) is not None:
            source_id, directory = where
            names = await self.hass.async_add_executor_job(self._list_clips, directory)
            children = [self._clip(stream, source_id, name) for name in names]
        return self._folder(
            f"{stream.base}/{CLIPS}",
            f"{stream.name}: saved clips",
            children,
            children_class=MediaClass.VIDEO,
        )

    # -- search (Home Assistant 2025.7+) ----------------------------------------

    async def async_search_media(
        self, item: MediaSourceItem, query: SearchMediaQuery
    ) -> SearchMedia:
        """A time finds the span that holds it; text finds saved clips by name."""
        assert _SEARCH_MEDIA is not None  # only called where it exists
        entry_id, name = None, None
        if item.identifier:
            entry_id, name, *_ = [*item.identifier.split("/"), None]
        streams = (
            [self.archive.stream(entry_id, name)]
            if entry_id and name
            else self.archive.streams(entry_id)
        )
        text = query.search_query.strip()
        found: list[BrowseMediaSource] = []
        if (moment := _parse_moment(text)) is not None:
            spans = await asyncio.gather(*(self._span_at(s, moment) for s in streams))
            found = [span for span in spans if span is not None]
        elif text:
            for stream in streams:
                found.extend(await self._clips_named(stream, text))
        return _SEARCH_MEDIA(result=found)

    async def _span_at(
        self, stream: _Stream, moment: datetime
    ) -> BrowseMediaSource | None:
        """The span of a stream that holds ``moment``, or None."""
        local = dt_util.as_local(moment).replace(minute=0, second=0, microsecond=0)
        start = dt_util.as_utc(local)
        end = start + HOUR
        if not stream.hours(start, end):
            return None  # outside the retention period: no call
        now = dt_util.utcnow()
        try:
            spans = await stream.index.spans(
                stream.arn,
                start,
                end,
                stream.timestamp_type,
                final=stream.final(start, end, now),
            )
            if not any(s.start <= moment < s.end for s in spans):
                # It may be the end of a span that began in the previous hour.
                spans = await stream.index.spans(
                    stream.arn,
                    start - HOUR,
                    start,
                    stream.timestamp_type,
                    final=stream.final(start - HOUR, start, now),
                )
                start = start - HOUR
        except KinesisVideoError:
            return None
        for span in spans:
            if span.start <= moment < span.end:
                base = (
                    f"{stream.base}/{dt_util.as_local(start).date().isoformat()}"
                    f"/{_hour_id(start)}"
                )
                node = self._span(stream, base, span, no_stills=False)
                node.title = f"{stream.name} {node.title}"
                return node
        return None

    async def _clips_named(self, stream: _Stream, text: str) -> list[BrowseMediaSource]:
        if (where := self.archive.clip_dir(stream.name)) is None:
            return []
        source_id, directory = where
        names = await self.hass.async_add_executor_job(self._list_clips, directory)
        wanted = text.casefold()
        return [
            self._clip(stream, source_id, name)
            for name in names
            if wanted in name.casefold()
        ]


def _parse_moment(text: str) -> datetime | None:
    """A local time: ``14:05``, ``yesterday 14:00``, ``2026-12-03 13:30`` (UTC)."""
    if (match := _TIME.fullmatch(text.strip())) is None:
        return None
    today = dt_util.now().date()
    try:
        if match["day"]:
            day = date.fromisoformat(match["day"])
        elif (match["word"] or "").lower() == "yesterday":
            day = today - timedelta(days=1)
        else:
            day = today
        local = datetime(
            day.year,
            day.month,
            day.day,
            int(match["h"]),
            int(match["m"]),
            int(match["s"] or 0),
            tzinfo=dt_util.get_default_time_zone(),
        )
    except ValueError:
        return None
    return dt_util.as_utc(local)
