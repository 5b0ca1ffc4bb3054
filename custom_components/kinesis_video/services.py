"""Archive actions: clips, fragment lists, playback URLs, fragments and stills."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service import async_extract_entity_ids
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    Fragment,
    Image,
    ImageFormat,
    InvalidArgumentError,
    KinesisVideoClient,
    KinesisVideoError,
    NoDataRetentionError,
    NoMediaError,
    PermissionDeniedError,
    PlaybackMode,
    SessionUrl,
    StreamNotFoundError,
    ThrottledError,
    TimestampType,
    parse_stream_arn,
)
from .clip import (
    Gap,
    find_gaps,
    fragment_end,
    fragment_time,
    has_parent_reference,
    join_mp4,
    part_path,
    plan_clip_parts,
    prepare_target,
    publish,
    remove_quietly,
    render_name,
    summarize,
)
from .const import (
    CONF_HLS_CONTAINER,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    DEFAULT_HLS_CONTAINER,
    DEFAULT_TIMESTAMP_TYPE,
    DEFAULT_URL_LIFETIME,
    DOMAIN,
    MAX_URL_LIFETIME,
    MIN_URL_LIFETIME,
    TIMESTAMP_PRODUCER,
    TIMESTAMP_SERVER,
)
from .coordinator import KinesisVideoConfigEntry
from .recordings import MAX_PLAYLIST_FRAGMENTS

_LOGGER = logging.getLogger(__name__)

SERVICE_SAVE_CLIP: Final = "save_clip"
SERVICE_LIST_FRAGMENTS: Final = "list_fragments"
SERVICE_GET_PLAYBACK_URL: Final = "get_playback_url"
SERVICE_SAVE_FRAGMENTS: Final = "save_fragments"
SERVICE_SAVE_IMAGES: Final = "save_images"
EVENT_CLIP_SAVED: Final = "kinesis_video_clip_saved"

ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_DURATION: Final = "duration"
ATTR_TIMESTAMP_TYPE: Final = "timestamp_type"
ATTR_FILENAME: Final = "filename"
ATTR_FOLDER: Final = "folder"
ATTR_OVERWRITE: Final = "overwrite"
ATTR_LIMIT: Final = "limit"
ATTR_PROTOCOL: Final = "protocol"
ATTR_MODE: Final = "mode"
ATTR_EXPIRES: Final = "expires"
ATTR_FRAGMENTS: Final = "fragments"
ATTR_INTERVAL: Final = "interval"
ATTR_FORMAT: Final = "format"
ATTR_WIDTH: Final = "width"
ATTR_HEIGHT: Final = "height"

# ListFragments and GetClip accept ranges of up to 24 hours.
MAX_RANGE: Final = timedelta(hours=24)
# GetImages: at most 300 s per call; every image is billed, so cap a call.
IMAGES_WINDOW: Final = timedelta(seconds=300)
MAX_IMAGES: Final = 1000
DEFAULT_LIST_LIMIT: Final = 1000
MEDIA_FOLDER: Final = "kinesis_video"
DEFAULT_CLIP_NAME: Final = MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S}.mp4"
DEFAULT_FRAGMENTS_NAME: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S}_fragments.mkv"
)
DEFAULT_IMAGES_FOLDER: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S}_images"
)

_TIMESTAMP_TYPES: Final = {
    "server": TIMESTAMP_SERVER,
    "producer": TIMESTAMP_PRODUCER,
}
_MODES: Final[dict[str, PlaybackMode]] = {
    "live": "LIVE",
    "live_replay": "LIVE_REPLAY",
    "on_demand": "ON_DEMAND",
}

_RANGE_FIELDS: Final = {
    vol.Optional(ATTR_START): cv.datetime,
    vol.Optional(ATTR_END): cv.datetime,
    vol.Optional(ATTR_DURATION): cv.positive_time_period,
    vol.Optional(ATTR_TIMESTAMP_TYPE): vol.In(list(_TIMESTAMP_TYPES)),
}

SAVE_CLIP_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_FILENAME): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
    }
)
LIST_FRAGMENTS_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_LIMIT, default=DEFAULT_LIST_LIMIT): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=100_000)
        ),
    }
)
GET_PLAYBACK_URL_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_PROTOCOL, default="hls"): vol.In(["hls", "dash"]),
        vol.Optional(ATTR_MODE, default="live"): vol.In(list(_MODES)),
        vol.Optional(ATTR_EXPIRES): vol.All(
            vol.Coerce(int), vol.Range(min=MIN_URL_LIFETIME, max=MAX_URL_LIFETIME)
        ),
    }
)
SAVE_FRAGMENTS_SCHEMA: Final = cv.make_entity_service_schema(
    {
        vol.Required(ATTR_FRAGMENTS): vol.All(
            cv.ensure_list,
            vol.Length(min=1),
            [vol.All(cv.string, vol.Match(r"^\d{1,128}$"))],
        ),
        vol.Optional(ATTR_FILENAME): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
    }
)
SAVE_IMAGES_SCHEMA: Final = cv.make_entity_service_schema(
    {
        **_RANGE_FIELDS,
        vol.Optional(ATTR_INTERVAL, default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.2, max=20)
        ),
        vol.Optional(ATTR_FORMAT, default="jpeg"): vol.In(["jpeg", "png"]),
        vol.Optional(ATTR_WIDTH): vol.All(vol.Coerce(int), vol.Range(min=1, max=3840)),
        vol.Optional(ATTR_HEIGHT): vol.All(vol.Coerce(int), vol.Range(min=1, max=2160)),
        vol.Optional(ATTR_FOLDER): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
    }
)


@dataclass(frozen=True, slots=True)
class _Target:
    """A camera of this integration and what an action needs of it."""

    entity_id: str
    arn: str
    stream: str
    entry: KinesisVideoConfigEntry

    @property
    def client(self) -> KinesisVideoClient:
        return self.entry.runtime_data.client

    def timestamp_type(self, call: ServiceCall) -> TimestampType:
        """The type asked for, else the entry's option."""
        if (asked := call.data.get(ATTR_TIMESTAMP_TYPE)) is not None:
            return cast("TimestampType", _TIMESTAMP_TYPES[asked])
        return cast(
            "TimestampType",
            self.entry.options.get(CONF_TIMESTAMP_TYPE, DEFAULT_TIMESTAMP_TYPE),
        )


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def _failed(key: str, **placeholders: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def _api_error(err: KinesisVideoError, stream: str) -> HomeAssistantError:
    """A translated runtime error for an API failure (no URLs or secrets)."""
    if isinstance(err, NoMediaError):
        return _failed("no_media", stream=stream)
    if isinstance(err, ThrottledError):
        return _failed("throttled", stream=stream)
    if isinstance(err, AuthenticationError):
        return _failed("auth_failed")
    if isinstance(err, PermissionDeniedError):
        return _failed("permission_denied", stream=stream, error=str(err))
    if isinstance(err, NoDataRetentionError):
        return _failed("action_no_data_retention", stream=stream)
    if isinstance(err, StreamNotFoundError):
        return _failed("action_stream_not_found", stream=stream)
    if isinstance(err, InvalidArgumentError):
        return _failed("request_rejected", stream=stream, error=str(err))
    return _failed("service_failed", stream=stream, error=str(err))


async def _extract_entity_ids(hass: HomeAssistant, call: ServiceCall) -> set[str]:
    """Entity ids the call targets (by entity, device, area or label)."""
    extract: Callable[..., Awaitable[set[str]]] = async_extract_entity_ids
    # Home Assistant 2025.x takes hass first; newer versions only the call.
    takes_hass = "hass" in inspect.signature(extract).parameters
    return await extract(*((hass, call) if takes_hass else (call,)))


async def _targets(hass: HomeAssistant, call: ServiceCall) -> list[_Target]:
    """This integration's cameras among the call's targets; the rest refused."""
    registry = er.async_get(hass)
    targets: list[_Target] = []
    for entity_id in sorted(await _extract_entity_ids(hass, call)):
        entry = registry.async_get(entity_id)
        if entry is None or entry.platform != DOMAIN or entry.domain != "camera":
            raise _invalid("not_a_camera", entity_id=entity_id)
        config_entry = (
            hass.config_entries.async_get_entry(entry.config_entry_id)
            if entry.config_entry_id
            else None
        )
        if config_entry is None or config_entry.state is not ConfigEntryState.LOADED:
            raise _invalid("entry_not_loaded", entity_id=entity_id)
        targets.append(
            _Target(
                entity_id=entity_id,
                arn=entry.unique_id,
                stream=parse_stream_arn(entry.unique_id).name,
                entry=cast("KinesisVideoConfigEntry", config_entry),
            )
        )
    if not targets:
        raise _invalid("no_target")
    return targets


def _as_utc(value: datetime) -> datetime:
    """Naive times are Home Assistant's local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(value)


def _time_range(
    call: ServiceCall, *, default_end: datetime | None
) -> tuple[datetime, datetime]:
    """[start, end] from start/end/duration; end defaults to ``default_end``."""
    start = call.data.get(ATTR_START)
    end = call.data.get(ATTR_END)
    duration: timedelta | None = call.data.get(ATTR_DURATION)
    if start is not None and end is not None and duration is not None:
        raise _invalid("range_overdetermined")
    if start is not None:
        start = _as_utc(start)
    if end is not None:
        end = _as_utc(end)
    if start is not None and duration is not None:
        end = start + duration
    if end is None:
        end = default_end
    if start is None and duration is not None and end is not None:
        start = end - duration
    if start is None or end is None:
        raise _invalid("range_required")
    if end < start:
        raise _invalid("end_before_start")
    if end == start:
        raise _invalid("empty_range")
    if end - start > MAX_RANGE:
        raise _invalid("range_too_long")
    return start, end


def _iso(value: datetime | None) -> str | None:
    return None if value is None else dt_util.as_utc(value).isoformat()


def _gaps_json(gaps: list[Gap]) -> list[dict[str, Any]]:
    return [
        {"start": _iso(gap.start), "end": _iso(gap.end), "seconds": gap.seconds}
        for gap in gaps
    ]


def _render(template: str, target: _Target, start: datetime) -> str:
    try:
        local = dt_util.as_local(start)
        return render_name(template, stream=target.stream, start=local)
    except ValueError as err:
        raise _invalid("invalid_filename", template=template, error=str(err)) from err


def _check_path(hass: HomeAssistant, rendered: str) -> Path:
    """An allowed absolute path for ``rendered`` (relative = under media)."""
    if has_parent_reference(rendered):
        raise _invalid("invalid_path", path=rendered)
    path = Path(rendered)
    if not path.is_absolute():
        path = media_folder(hass)[1] / path
    return path


def media_folder(hass: HomeAssistant) -> tuple[str | None, Path]:
    """(media source id, folder) where relative file names land.

    The ``local`` media folder, else the first one configured, so saved clips
    can be browsed and played; ``config/media`` (id None) if there is none.
    """
    media_dirs = hass.config.media_dirs
    if "local" in media_dirs:
        return "local", Path(media_dirs["local"])
    for source_id, folder in media_dirs.items():
        return source_id, Path(folder)
    return None, Path(hass.config.path("media"))


def _allowed(hass: HomeAssistant, path: Path) -> Path:
    """Resolve (symlinks too) and check the allow-list; blocking: executor."""
    resolved = path.resolve()
    if not hass.config.is_allowed_path(str(resolved)):
        raise _invalid("path_not_allowed", path=str(path))
    return resolved


def _prepare_file(hass: HomeAssistant, path: Path, overwrite: bool) -> Path:
    """Check and create the target's folder (executor); the resolved target."""
    resolved = _allowed(hass, path)
    try:
        prepare_target(resolved, overwrite=overwrite)
    except FileExistsError as err:
        raise _invalid("file_exists", path=str(resolved)) from err
    except OSError as err:
        raise _failed("write_failed", path=str(resolved), error=str(err)) from err
    return resolved


def _publish(part: Path, target: Path, overwrite: bool) -> int:
    try:
        return publish(part, target, overwrite=overwrite)
    except FileExistsError as err:
        raise _invalid("file_exists", path=str(target)) from err


# -- save_clip ----------------------------------------------------------------


async def _save_clip(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    start, end = _time_range(call, default_end=dt_util.utcnow())
    timestamp_type = target.timestamp_type(call)
    overwrite: bool = call.data[ATTR_OVERWRITE]
    rendered = _render(call.data.get(ATTR_FILENAME, DEFAULT_CLIP_NAME), target, start)
    path = await hass.async_add_executor_job(
        _prepare_file, hass, _check_path(hass, rendered), overwrite
    )
    client = target.client
    try:
        fragments, _ = await client.list_fragments(
            target.arn, start, end, timestamp_type=timestamp_type
        )
        if not fragments:
            raise NoMediaError("No fragments in the range")
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    parts = plan_clip_parts(fragments, timestamp_type)
    part = part_path(path)
    pieces = (
        [part]
        if len(parts) == 1
        else [part.with_name(f"{part.name}{index}") for index in range(len(parts))]
    )
    try:
        for piece, clip in zip(pieces, parts, strict=True):
            await client.get_clip_to_file(
                target.arn, clip.start, clip.end, piece, timestamp_type=timestamp_type
            )
        if len(pieces) > 1:
            await hass.async_add_executor_job(join_mp4, pieces, part)
        size = await hass.async_add_executor_job(_publish, part, path, overwrite)
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except (OSError, ValueError) as err:
        # Disk full, unwritable folder, or media PyAV could not join.
        raise _failed("write_failed", path=str(path), error=str(err)) from err
    finally:
        await hass.async_add_executor_job(remove_quietly, part, *pieces)
    covered_start = fragment_time(fragments[0], timestamp_type)
    covered_end = fragment_end(fragments[-1], timestamp_type)
    result: dict[str, Any] = {
        "path": str(path),
        "size": size,
        "start": _iso(covered_start),
        "end": _iso(covered_end),
        "fragments": len(fragments),
        "clip_calls": len(parts),
        "gaps": _gaps_json(find_gaps(fragments, timestamp_type)),
    }
    hass.bus.async_fire(
        EVENT_CLIP_SAVED,
        {CONF_ENTITY_ID: target.entity_id, "stream": target.stream, **result},
    )
    _LOGGER.debug("Saved %s (%d bytes) from %s", path, size, target.stream)
    return result


# -- list_fragments -----------------------------------------------------------


def _fragment_json(fragment: Fragment) -> dict[str, Any]:
    return {
        "number": fragment.number,
        "producer_timestamp": _iso(fragment.producer_timestamp),
        "server_timestamp": _iso(fragment.server_timestamp),
        "duration_ms": fragment.duration_ms,
        "size": fragment.size,
    }


async def _list_fragments(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    start, end = _time_range(call, default_end=dt_util.utcnow())
    timestamp_type = target.timestamp_type(call)
    limit: int = call.data[ATTR_LIMIT]
    try:
        fragments, _ = await target.client.list_fragments(
            target.arn, start, end, timestamp_type=timestamp_type
        )
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    summary = summarize(fragments, timestamp_type)
    return {
        "start": _iso(start),
        "end": _iso(end),
        "timestamp_type": timestamp_type,
        "fragments": [_fragment_json(f) for f in fragments[:limit]],
        "truncated": len(fragments) > limit,
        "summary": {
            "count": summary.count,
            "recorded_seconds": summary.recorded_seconds,
            "bytes": summary.size,
            "first": _iso(summary.start),
            "last_end": _iso(summary.end),
            "gaps": _gaps_json(summary.gaps),
        },
    }


# -- get_playback_url ---------------------------------------------------------


async def _get_playback_url(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    mode = _MODES[call.data[ATTR_MODE]]
    has_range = any(key in call.data for key in (ATTR_START, ATTR_END, ATTR_DURATION))
    start: datetime | None = None
    end: datetime | None = None
    if mode == "LIVE":
        if has_range:
            raise _invalid("range_not_for_live")
    elif mode == "LIVE_REPLAY":
        if ATTR_START not in call.data and ATTR_DURATION not in call.data:
            raise _invalid("start_required")
        # Replay runs on into live video unless an end is given.
        if ATTR_END in call.data or (
            ATTR_START in call.data and ATTR_DURATION in call.data
        ):
            start, end = _time_range(call, default_end=None)
        elif ATTR_START in call.data:
            start = _as_utc(call.data[ATTR_START])
        else:
            start, _ = _time_range(call, default_end=dt_util.utcnow())
    else:
        start, end = _time_range(call, default_end=dt_util.utcnow())
    expires: int = call.data.get(
        ATTR_EXPIRES, target.entry.options.get(CONF_URL_LIFETIME, DEFAULT_URL_LIFETIME)
    )
    timestamp_type = target.timestamp_type(call)
    # AWS puts only 1000 fragments in an ON_DEMAND playlist unless asked for more.
    max_results = MAX_PLAYLIST_FRAGMENTS if mode == "ON_DEMAND" else None
    client = target.client
    try:
        session: SessionUrl
        if call.data[ATTR_PROTOCOL] == "dash":
            session = await client.get_dash_url(
                target.arn,
                mode=mode,
                expires=expires,
                timestamp_type=timestamp_type,
                start=start,
                end=end,
                max_results=max_results,
            )
        else:
            session = await client.get_hls_url(
                target.arn,
                mode=mode,
                expires=expires,
                container=target.entry.options.get(
                    CONF_HLS_CONTAINER, DEFAULT_HLS_CONTAINER
                ),
                timestamp_type=timestamp_type,
                start=start,
                end=end,
                max_results=max_results,
            )
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    return {
        "url": session.url,
        "expires_at": _iso(session.expires_at),
        "protocol": call.data[ATTR_PROTOCOL],
        "mode": call.data[ATTR_MODE],
    }


# -- save_fragments -----------------------------------------------------------


async def _save_fragments(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    numbers: list[str] = list(dict.fromkeys(call.data[ATTR_FRAGMENTS]))
    overwrite: bool = call.data[ATTR_OVERWRITE]
    rendered = _render(
        call.data.get(ATTR_FILENAME, DEFAULT_FRAGMENTS_NAME), target, dt_util.utcnow()
    )
    path = await hass.async_add_executor_job(
        _prepare_file, hass, _check_path(hass, rendered), overwrite
    )
    part = part_path(path)
    try:
        await target.client.get_media_for_fragments_to_file(target.arn, numbers, part)
        size = await hass.async_add_executor_job(_publish, part, path, overwrite)
    except NoMediaError as err:
        raise _failed("fragments_not_found", stream=target.stream) from err
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except OSError as err:
        raise _failed("write_failed", path=str(path), error=str(err)) from err
    finally:
        await hass.async_add_executor_job(remove_quietly, part)
    return {"path": str(path), "size": size, "fragments": len(numbers)}


# -- save_images --------------------------------------------------------------


def _image_name(stream: str, image: Image, extension: str) -> str:
    moment = dt_util.as_local(image.timestamp)
    return (
        f"{stream}_{moment:%Y%m%d_%H%M%S}_{moment.microsecond // 1000:03d}.{extension}"
    )


def _stage_images(
    folder: Path, names_and_data: list[tuple[str, bytes]], overwrite: bool
) -> list[tuple[Path, Path]]:
    """Write stills as part files (executor); (part, final path) of each."""
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in names_and_data:
            path = folder / name
            prepare_target(path, overwrite=overwrite)
            part = part_path(path)
            staged.append((part, path))
            part.write_bytes(data)
    except BaseException:
        remove_quietly(*(part for part, _ in staged))
        raise
    return staged


def _publish_images(staged: list[tuple[Path, Path]], overwrite: bool) -> list[str]:
    """Rename every staged still into place once all windows succeeded."""
    published: list[Path] = []
    try:
        for part, path in staged:
            publish(part, path, overwrite=overwrite)
            published.append(path)
    except BaseException:
        remove_quietly(*(part for part, _ in staged))
        if not overwrite:  # those are new files: the call leaves nothing behind
            remove_quietly(*published)
        raise
    return [str(path) for path in published]


async def _save_images(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    start, end = _time_range(call, default_end=dt_util.utcnow())
    interval = timedelta(milliseconds=round(call.data[ATTR_INTERVAL] * 1000))
    if (end - start) // interval + 1 > MAX_IMAGES:
        raise _invalid("too_many_images", limit=str(MAX_IMAGES))
    image_format: ImageFormat = "PNG" if call.data[ATTR_FORMAT] == "png" else "JPEG"
    extension = "png" if image_format == "PNG" else "jpg"
    overwrite: bool = call.data[ATTR_OVERWRITE]
    rendered = _render(call.data.get(ATTR_FOLDER, DEFAULT_IMAGES_FOLDER), target, start)
    folder = await hass.async_add_executor_job(
        _allowed, hass, _check_path(hass, rendered)
    )
    timestamp_type = target.timestamp_type(call)
    # Windows of whole sampling steps, so the samples keep one rhythm.
    step = interval * (IMAGES_WINDOW // interval)
    staged: list[tuple[Path, Path]] = []
    no_media: list[str | None] = []
    errors: list[dict[str, Any]] = []
    window = start
    try:
        try:
            while True:
                # The last window ends at ``end`` (inclusive): no extra, billed
                # call for a range of whole windows.
                last = window + step >= end
                window_end = end if last else window + step - timedelta(milliseconds=1)
                images = await target.client.get_images(
                    target.arn,
                    window,
                    window_end,
                    sampling_ms=round(interval.total_seconds() * 1000),
                    image_format=image_format,
                    width=call.data.get(ATTR_WIDTH),
                    height=call.data.get(ATTR_HEIGHT),
                    timestamp_type=timestamp_type,
                )
                ready = [
                    (_image_name(target.stream, image, extension), image.content)
                    for image in images
                    if image.content is not None
                ]
                for image in images:
                    if image.content is None and image.error == "NO_MEDIA":
                        no_media.append(_iso(image.timestamp))
                    elif image.content is None:
                        errors.append(
                            {"timestamp": _iso(image.timestamp), "error": image.error}
                        )
                staged += await hass.async_add_executor_job(
                    _stage_images, folder, ready, overwrite
                )
                if last:
                    break
                window += step
            files = await hass.async_add_executor_job(
                _publish_images, staged, overwrite
            )
        except BaseException:
            # All or nothing: no still of any window is left, no file replaced.
            await hass.async_add_executor_job(
                remove_quietly, *(part for part, _ in staged)
            )
            raise
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except FileExistsError as err:
        raise _invalid("file_exists", path=str(err)) from err
    except OSError as err:
        raise _failed("write_failed", path=str(folder), error=str(err)) from err
    if not files:
        raise _failed("no_media", stream=target.stream)
    return {
        "folder": str(folder),
        "files": files,
        "no_media": no_media,
        "errors": errors,
    }


# -- registration -------------------------------------------------------------

type _Handler = Callable[
    [HomeAssistant, ServiceCall, _Target], Awaitable[dict[str, Any]]
]


def _wrap(
    hass: HomeAssistant, handler: _Handler
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """Run ``handler`` for every targeted camera; answers keyed by entity id."""

    async def service(call: ServiceCall) -> ServiceResponse:
        results: dict[str, Any] = {}
        for target in await _targets(hass, call):
            results[target.entity_id] = await handler(hass, call, target)
        return results

    return service


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the archive actions (once, in ``async_setup``)."""
    for name, handler, schema, response in (
        (SERVICE_SAVE_CLIP, _save_clip, SAVE_CLIP_SCHEMA, SupportsResponse.OPTIONAL),
        (
            SERVICE_LIST_FRAGMENTS,
            _list_fragments,
            LIST_FRAGMENTS_SCHEMA,
            SupportsResponse.ONLY,
        ),
        (
            SERVICE_GET_PLAYBACK_URL,
            _get_playback_url,
            GET_PLAYBACK_URL_SCHEMA,
            SupportsResponse.ONLY,
        ),
        (
            SERVICE_SAVE_FRAGMENTS,
            _save_fragments,
            SAVE_FRAGMENTS_SCHEMA,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_SAVE_IMAGES,
            _save_images,
            SAVE_IMAGES_SCHEMA,
            SupportsResponse.OPTIONAL,
        ),
    ):
        hass.services.async_register(
            DOMAIN,
            name,
            _wrap(hass, handler),
            schema=schema,
            supports_response=response,
        )
