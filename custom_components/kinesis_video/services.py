"""Archive actions: clips, fragment lists, playback URLs, fragments and stills."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
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
from homeassistant.helpers import service as service_helper
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    ClockSkewError,
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
    Folder,
    FolderChangedError,
    Gap,
    InvalidNameError,
    Part,
    PathNotAllowedError,
    find_gaps,
    fragment_end,
    fragment_time,
    has_parent_reference,
    join_mp4,
    plan_clip_parts,
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
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)
# GetImages: at most 300 s per call; every image is billed, so cap a call.
IMAGES_WINDOW: Final = timedelta(seconds=300)
MAX_IMAGES: Final = 1000
DEFAULT_LIST_LIMIT: Final = 1000
MEDIA_FOLDER: Final = "kinesis_video"
# Local time with its UTC offset: the hour repeated when clocks go back gets
# names of its own. No colons, which Windows shares refuse.
NAME_MAX_BYTES: Final = 255
DEFAULT_CLIP_NAME: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}.mp4"
)
DEFAULT_FRAGMENTS_NAME: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}_fragments.mkv"
)
DEFAULT_IMAGES_FOLDER: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}_images"
)

# The AWS spellings too, as automations may have them (any case).
_TIMESTAMP_TYPES: Final = {
    "server": TIMESTAMP_SERVER,
    "producer": TIMESTAMP_PRODUCER,
    TIMESTAMP_SERVER.lower(): TIMESTAMP_SERVER,
    TIMESTAMP_PRODUCER.lower(): TIMESTAMP_PRODUCER,
}
_MODES: Final[dict[str, PlaybackMode]] = {
    "live": "LIVE",
    "live_replay": "LIVE_REPLAY",
    "on_demand": "ON_DEMAND",
}


def _lower(value: Any) -> str:
    """Select options in any case (``LIVE_REPLAY`` as in the AWS docs)."""
    return cv.string(value).lower()


_RANGE_FIELDS: Final = {
    vol.Optional(ATTR_START): cv.datetime,
    vol.Optional(ATTR_END): cv.datetime,
    vol.Optional(ATTR_DURATION): cv.positive_time_period,
    vol.Optional(ATTR_TIMESTAMP_TYPE): vol.All(_lower, vol.In(list(_TIMESTAMP_TYPES))),
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
        vol.Optional(ATTR_PROTOCOL, default="hls"): vol.All(
            _lower, vol.In(["hls", "dash"])
        ),
        vol.Optional(ATTR_MODE, default="live"): vol.All(_lower, vol.In(list(_MODES))),
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
        vol.Optional(ATTR_FORMAT, default="jpeg"): vol.All(
            _lower, vol.In(["jpeg", "png"])
        ),
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
    if isinstance(err, ClockSkewError):
        return _failed("clock_skew")
    if isinstance(err, PermissionDeniedError):
        return _failed("permission_denied", stream=stream, error=str(err))
    if isinstance(err, NoDataRetentionError):
        return _failed("action_no_data_retention", stream=stream)
    if isinstance(err, StreamNotFoundError):
        return _failed("action_stream_not_found", stream=stream)
    if isinstance(err, InvalidArgumentError):
        return _failed("request_rejected", stream=stream, error=str(err))
    return _failed("service_failed", stream=stream, error=str(err))


def _referenced(hass: HomeAssistant, call: ServiceCall) -> tuple[set[str], set[str]]:
    """Entity ids the call names, and those it reaches by device, area or label."""
    try:
        from homeassistant.helpers.target import (  # noqa: PLC0415
            TargetSelection,
            async_extract_referenced_entity_ids,
        )
    except ImportError:  # older Home Assistant (2025.4) has it in helpers.service
        extract: Callable[..., Any] = vars(service_helper)[
            "async_extract_referenced_entity_ids"
        ]
        selected = extract(hass, call)
    else:
        selected = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
    return set(selected.referenced), set(selected.indirectly_referenced)


async def _targets(hass: HomeAssistant, call: ServiceCall) -> list[_Target]:
    """This integration's cameras among the call's targets.

    A device or area brings its sensors along: those are skipped. An entity
    named explicitly that is not such a camera is refused.
    """
    registry = er.async_get(hass)
    named, reached = _referenced(hass, call)
    targets: list[_Target] = []
    for entity_id in sorted(named | reached):
        entry = registry.async_get(entity_id)
        if entry is None or entry.platform != DOMAIN or entry.domain != "camera":
            if entity_id in named:
                raise _invalid("not_a_camera", entity_id=entity_id)
            continue
        config_entry = (
            hass.config_entries.async_get_entry(entry.config_entry_id)
            if entry.config_entry_id
            else None
        )
        if config_entry is None or config_entry.state is not ConfigEntryState.LOADED:
            if entity_id in named:
                raise _invalid("entry_not_loaded", entity_id=entity_id)
            # As Home Assistant's entity actions do: a camera an area or device
            # reaches is skipped while it cannot work.
            continue
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
    try:
        return _checked_range(call, default_end=default_end)
    except OverflowError as err:  # a range near year 1 or 9999
        raise _invalid("range_too_long") from err


def _checked_range(
    call: ServiceCall, *, default_end: datetime | None
) -> tuple[datetime, datetime]:
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
    # Later steps shift by up to a day (local time, image windows): a range
    # too close to the calendar's ends would overflow there.
    if start - _EARLIEST < MAX_RANGE or _LATEST - end < MAX_RANGE:
        raise _invalid("range_too_long")
    return start, end


def _iso(value: datetime | None) -> str | None:
    return None if value is None else dt_util.as_utc(value).isoformat()


def _gaps_json(gaps: list[Gap]) -> list[dict[str, Any]]:
    return [
        {"start": _iso(gap.start), "end": _iso(gap.end), "seconds": gap.seconds}
        for gap in gaps
    ]


_NAME_PROBLEMS: Final = {
    "template": "invalid_filename",
    "control": "filename_control_character",
    "empty": "empty_filename",
}


def _render(template: str, target: _Target, start: datetime) -> str:
    try:
        local = dt_util.as_local(start)
        return render_name(template, stream=target.stream, start=local)
    except InvalidNameError as err:
        # repr: a control character shows as an escape, not as itself.
        details = {"error": str(err)} if err.reason == "template" else {}
        raise _invalid(
            _NAME_PROBLEMS[err.reason], template=repr(template), **details
        ) from err


def _check_path(hass: HomeAssistant, rendered: str) -> Path:
    """An absolute path for ``rendered`` (relative = under media), no ``..``."""
    if has_parent_reference(rendered):
        raise _invalid("invalid_path", path=rendered)
    path = Path(rendered)
    # File systems allow 255 bytes per name: refuse longer ones as bad input.
    if any(len(part.encode()) > NAME_MAX_BYTES for part in path.parts):
        raise _invalid("name_too_long", limit=str(NAME_MAX_BYTES))
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


def _open_folder(hass: HomeAssistant, folder: Path, checked: Path) -> Folder:
    """Open ``folder`` for writing if ``checked`` is allowed (executor).

    ``checked`` (the target, or the folder itself) is resolved, symlinks too,
    before anything is created; the folder's real path is checked again once
    it is open, and every write goes through that open folder.
    """
    try:
        if not hass.config.is_allowed_path(str(checked.resolve())):
            raise _invalid("path_not_allowed", path=str(checked))
        return Folder.open(folder, hass.config.is_allowed_path)
    except PathNotAllowedError as err:
        raise _invalid("path_not_allowed", path=str(checked)) from err
    except FolderChangedError as err:
        raise _failed("folder_changed", path=str(folder)) from err
    except OSError as err:
        raise _failed("write_failed", path=str(folder), error=str(err)) from err


def _open_target(hass: HomeAssistant, path: Path, overwrite: bool) -> Folder:
    """The open folder of ``path``; refused if the file exists and must stay."""
    folder = _open_folder(hass, path.parent, path)
    try:
        exists = folder.exists(path.name)
    except OSError as err:
        folder.close()
        raise _failed("write_failed", path=str(path), error=str(err)) from err
    if exists and not overwrite:
        folder.close()
        raise _invalid("file_exists", path=str(folder.path / path.name))
    return folder


def _write_error(err: OSError, path: Path) -> HomeAssistantError:
    """The translated error for a failed write of ``path``."""
    if isinstance(err, FileExistsError):  # appeared while the file was fetched
        return _invalid("file_exists", path=str(path))
    if isinstance(err, FolderChangedError):
        return _failed("folder_changed", path=str(path.parent))
    return _failed("write_failed", path=str(path), error=str(err))


# -- save_clip ----------------------------------------------------------------


async def _save_clip(
    hass: HomeAssistant, call: ServiceCall, target: _Target
) -> dict[str, Any]:
    start, end = _time_range(call, default_end=dt_util.utcnow())
    timestamp_type = target.timestamp_type(call)
    overwrite: bool = call.data[ATTR_OVERWRITE]
    rendered = _render(call.data.get(ATTR_FILENAME, DEFAULT_CLIP_NAME), target, start)
    path = _check_path(hass, rendered)
    folder = await hass.async_add_executor_job(_open_target, hass, path, overwrite)
    path = folder.path / path.name
    client = target.client
    pieces: list[Part] = []
    try:
        fragments, _ = await client.list_fragments(
            target.arn, start, end, timestamp_type=timestamp_type
        )
        if not fragments:
            raise NoMediaError("No fragments in the range")
        parts = plan_clip_parts(fragments, timestamp_type)
        for clip in parts:
            pieces.append(await hass.async_add_executor_job(folder.new_part, path.name))
            await client.get_clip_to_file(
                target.arn,
                clip.start,
                clip.end,
                pieces[-1].path,
                timestamp_type=timestamp_type,
            )
        output = pieces[0]
        if len(pieces) > 1:
            output = await hass.async_add_executor_job(folder.new_part, path.name)
            joined = pieces.copy()
            pieces.append(output)
            await hass.async_add_executor_job(
                join_mp4, [piece.path for piece in joined], output.path
            )
        size = await hass.async_add_executor_job(
            partial(folder.publish, output, path.name, overwrite=overwrite)
        )
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except OSError as err:  # disk full, unwritable folder, folder swapped
        raise _write_error(err, path) from err
    except ValueError as err:  # media PyAV could not join
        raise _failed("write_failed", path=str(path), error=str(err)) from err
    finally:
        await hass.async_add_executor_job(folder.close)
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


def _list_answer(
    fragments: list[Fragment], timestamp_type: TimestampType, limit: int
) -> dict[str, Any]:
    """The fragments and their summary as the action answers (executor: CPU)."""
    summary = summarize(fragments, timestamp_type)
    return {
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
    # A day holds up to 43,200 fragments: summed up and answered in one job.
    answer = await hass.async_add_executor_job(
        _list_answer, fragments, timestamp_type, limit
    )
    return {
        "start": _iso(start),
        "end": _iso(end),
        "timestamp_type": timestamp_type,
        **answer,
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
    path = _check_path(hass, rendered)
    folder = await hass.async_add_executor_job(_open_target, hass, path, overwrite)
    path = folder.path / path.name
    parts: list[Part] = []
    try:
        parts.append(await hass.async_add_executor_job(folder.new_part, path.name))
        await target.client.get_media_for_fragments_to_file(
            target.arn, numbers, parts[0].path
        )
        size = await hass.async_add_executor_job(
            partial(folder.publish, parts[0], path.name, overwrite=overwrite)
        )
    except NoMediaError as err:
        raise _failed("fragments_not_found", stream=target.stream) from err
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except OSError as err:
        raise _write_error(err, path) from err
    finally:
        await hass.async_add_executor_job(folder.close)
    return {"path": str(path), "size": size, "fragments": len(numbers)}


# -- save_images --------------------------------------------------------------


def _image_name(stream: str, image: Image, extension: str) -> str:
    moment = dt_util.as_local(image.timestamp)
    milliseconds = moment.microsecond // 1000
    # With the UTC offset: a range may hold the hour that repeats in autumn.
    return f"{stream}_{moment:%Y%m%d_%H%M%S}_{milliseconds:03d}{moment:%z}.{extension}"


def _stage_images(
    folder: Folder,
    names_and_data: list[tuple[str, bytes]],
    overwrite: bool,
    staged: list[tuple[Part, str]],
) -> None:
    """Write stills as part files (executor), adding (part, name) to ``staged``."""
    for name, data in names_and_data:
        if not overwrite and folder.exists(name):
            raise FileExistsError(str(folder.path / name))
        staged.append((folder.write_part(name, data), name))


def _publish_images(
    folder: Folder, staged: list[tuple[Part, str]], overwrite: bool
) -> list[str]:
    """Move every staged still into place once all windows succeeded."""
    published: list[str] = []
    try:
        for part, name in staged:
            try:
                folder.publish(part, name, overwrite=overwrite)
            except FileExistsError as err:  # appeared while the stills came
                raise FileExistsError(str(folder.path / name)) from err
            published.append(name)
    except BaseException:
        if not overwrite:  # those are new files: the call leaves nothing behind
            folder.remove(*published)
        raise
    return [str(folder.path / name) for name in published]


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
    path = _check_path(hass, rendered)
    folder = await hass.async_add_executor_job(_open_folder, hass, path, path)
    timestamp_type = target.timestamp_type(call)
    # Windows of whole sampling steps, so the samples keep one rhythm.
    step = interval * (IMAGES_WINDOW // interval)
    # All or nothing: parts left by a failure are removed, no file replaced.
    staged: list[tuple[Part, str]] = []
    no_media: list[str | None] = []
    errors: list[dict[str, Any]] = []
    window = start
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
            await hass.async_add_executor_job(
                _stage_images, folder, ready, overwrite, staged
            )
            if last:
                break
            window += step
        files = await hass.async_add_executor_job(
            _publish_images, folder, staged, overwrite
        )
    except KinesisVideoError as err:
        raise _api_error(err, target.stream) from err
    except FileExistsError as err:
        raise _invalid("file_exists", path=str(err)) from err
    except FolderChangedError as err:
        raise _failed("folder_changed", path=str(folder.path)) from err
    except OSError as err:
        raise _failed("write_failed", path=str(folder.path), error=str(err)) from err
    finally:
        await hass.async_add_executor_job(folder.close)
    if not files:
        raise _failed("no_media", stream=target.stream)
    return {
        "folder": str(folder.path),
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
