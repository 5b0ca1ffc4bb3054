"""Archive actions: clips, fragment lists, playback URLs, fragments and stills.

Each handler reads a call for one camera and answers it; schemas, targets,
time ranges, destinations, exports and errors live in their own modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.const import CONF_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.util import dt as dt_util

from . import answers
from .action_schemas import (
    ATTR_EXPIRES,
    ATTR_FILENAME,
    ATTR_FOLDER,
    ATTR_FORMAT,
    ATTR_FRAGMENTS,
    ATTR_HEIGHT,
    ATTR_INTERVAL,
    ATTR_LIMIT,
    ATTR_MODE,
    ATTR_OVERWRITE,
    ATTR_PROTOCOL,
    ATTR_WIDTH,
    GET_PLAYBACK_URL_SCHEMA,
    LIST_FRAGMENTS_SCHEMA,
    MODES,
    REST_ANSWERS_VALIDATION_ERRORS,
    SAVE_CLIP_SCHEMA,
    SAVE_FRAGMENTS_SCHEMA,
    SAVE_IMAGES_SCHEMA,
    guarded,
)
from .action_targets import Target, targets
from .const import DOMAIN
from .destinations import (
    DEFAULT_CLIP_NAME,
    DEFAULT_FRAGMENTS_NAME,
    DEFAULT_IMAGES_FOLDER,
    file_destination,
    folder_destination,
    render,
    saved_path,
)
from .event_wait import Clock, wait_until_recorded
from .export import (
    ImageRequest,
    export_clip,
    export_fragment_range,
    export_fragments,
    export_images,
)
from .kvs import PlaybackRequest, TimestampType
from .recordings import MAX_PLAYLIST_FRAGMENTS
from .time_ranges import playback_range, saved_range, time_range
from .translated_errors import action_errors, failed, invalid

__all__ = ["EVENT_CLIP_SAVED", "REST_ANSWERS_VALIDATION_ERRORS"]

_LOGGER = logging.getLogger(__name__)

SERVICE_SAVE_CLIP: Final = "save_clip"
SERVICE_LIST_FRAGMENTS: Final = "list_fragments"
SERVICE_GET_PLAYBACK_URL: Final = "get_playback_url"
SERVICE_SAVE_FRAGMENTS: Final = "save_fragments"
SERVICE_SAVE_IMAGES: Final = "save_images"
EVENT_CLIP_SAVED: Final = "kinesis_video_clip_saved"

# GetImages: every image is billed, so cap a call.
MAX_IMAGES: Final = 1000


async def _wait_for_end(
    target: Target, end: datetime, timestamp_type: TimestampType
) -> None:
    """For an end still to come (an event clip): wait until it is archived.

    The wait is this action's own task: stopping the automation cancels it,
    and so does unloading the entry (nothing has been written yet).
    """
    if end <= dt_util.utcnow():
        return
    if (task := asyncio.current_task()) is not None:

        def stop_waiting() -> None:
            task.cancel()  # a no-op once the action is done

        target.entry.async_on_unload(stop_waiting)
    with action_errors(target.stream):
        await wait_until_recorded(
            target.client,
            target.arn,
            end,
            timestamp_type=timestamp_type,
            clock=Clock(dt_util.utcnow),
        )


async def _save_clip(
    hass: HomeAssistant, call: ServiceCall, target: Target
) -> dict[str, Any]:
    start, end = saved_range(call)
    source = target.source(hass, call)
    name = render(call.data.get(ATTR_FILENAME, DEFAULT_CLIP_NAME), target.stream, start)
    await _wait_for_end(target, end, source.timestamp_type)
    async with file_destination(hass, name, call.data[ATTR_OVERWRITE]) as into:
        path = saved_path(into)
        with action_errors(target.stream, saving=path):
            clip = await export_clip(source, start, end, into)
    result = answers.saved_clip(path, clip, source.timestamp_type)
    hass.bus.async_fire(
        EVENT_CLIP_SAVED,
        {CONF_ENTITY_ID: target.entity_id, "stream": target.stream, **result},
    )
    _LOGGER.debug("Saved %s (%d bytes) from %s", path, clip.size, target.stream)
    return result


async def _list_fragments(
    hass: HomeAssistant, call: ServiceCall, target: Target
) -> dict[str, Any]:
    start, end = time_range(call, default_end=dt_util.utcnow())
    timestamp_type = target.timestamp_type(call)
    fragments, _ = await target.client.list_fragments(
        target.arn, start, end, timestamp_type=timestamp_type
    )
    answer = await answers.fragment_list(
        fragments, timestamp_type, call.data[ATTR_LIMIT]
    )
    return {
        "start": answers.iso(start),
        "end": answers.iso(end),
        "timestamp_type": timestamp_type,
        **answer,
    }


async def _get_playback_url(
    hass: HomeAssistant, call: ServiceCall, target: Target
) -> dict[str, Any]:
    mode = MODES[call.data[ATTR_MODE]]
    start, end = playback_range(call, mode)
    options = target.options
    asked = PlaybackRequest(
        mode=mode,
        expires=call.data.get(ATTR_EXPIRES, options.url_lifetime),
        timestamp_type=target.timestamp_type(call),
        start=start,
        end=end,
        # AWS puts only 1000 fragments in an ON_DEMAND playlist unless asked.
        max_results=MAX_PLAYLIST_FRAGMENTS if mode == "ON_DEMAND" else None,
    )
    protocol = call.data[ATTR_PROTOCOL]
    if protocol == "dash":
        session = await target.client.get_dash_url(target.arn, asked)
    else:
        session = await target.client.get_hls_url(
            target.arn, replace(asked, container=options.hls_container)
        )
    return answers.playback_url(session, protocol, call.data[ATTR_MODE])


async def _save_fragments(
    hass: HomeAssistant, call: ServiceCall, target: Target
) -> dict[str, Any]:
    template = call.data.get(ATTR_FILENAME, DEFAULT_FRAGMENTS_NAME)
    if ATTR_FRAGMENTS not in call.data:  # a range (the schema wants one of them)
        return await _save_fragment_range(hass, call, target, template)
    source = target.source(hass, call)
    numbers: list[str] = list(dict.fromkeys(call.data[ATTR_FRAGMENTS]))
    name = render(template, target.stream, dt_util.utcnow())
    async with file_destination(hass, name, call.data[ATTR_OVERWRITE]) as into:
        path = saved_path(into)
        with action_errors(target.stream, saving=path, no_media="fragments_not_found"):
            saved = await export_fragments(source, numbers, into)
    return answers.saved_fragments(path, saved, source.timestamp_type)


async def _save_fragment_range(
    hass: HomeAssistant, call: ServiceCall, target: Target, template: str
) -> dict[str, Any]:
    """The fragments of a range, its end waited for as save_clip's is."""
    start, end = saved_range(call)
    source = target.source(hass, call)
    name = render(template, target.stream, start)
    await _wait_for_end(target, end, source.timestamp_type)
    async with file_destination(hass, name, call.data[ATTR_OVERWRITE]) as into:
        path = saved_path(into)
        with action_errors(target.stream, saving=path):
            saved = await export_fragment_range(source, start, end, into)
    return answers.saved_fragments(path, saved, source.timestamp_type)


def _image_request(
    call: ServiceCall, target: Target, interval: timedelta
) -> ImageRequest:
    """The stills a save_images call asks for, named after the stream."""
    png = call.data[ATTR_FORMAT] == "png"
    return ImageRequest(
        interval=interval,
        image_format="PNG" if png else "JPEG",
        name=lambda image: answers.image_name(
            target.stream, image, "png" if png else "jpg"
        ),
        width=call.data.get(ATTR_WIDTH),
        height=call.data.get(ATTR_HEIGHT),
    )


async def _save_images(
    hass: HomeAssistant, call: ServiceCall, target: Target
) -> dict[str, Any]:
    start, end = saved_range(call)
    interval = timedelta(milliseconds=round(call.data[ATTR_INTERVAL] * 1000))
    if (end - start) // interval + 1 > MAX_IMAGES:
        raise invalid("too_many_images", limit=str(MAX_IMAGES))
    request = _image_request(call, target, interval)
    await _wait_for_end(target, end, target.timestamp_type(call))
    name = render(
        call.data.get(ATTR_FOLDER, DEFAULT_IMAGES_FOLDER), target.stream, start
    )
    async with folder_destination(hass, name, call.data[ATTR_OVERWRITE]) as into:
        folder = into.folder.path
        with action_errors(target.stream, saving=folder, folder=folder):
            saved = await export_images(
                target.source(hass, call), start, end, request, into
            )
    if not saved.files:
        raise failed("no_media", stream=target.stream)
    return answers.saved_images(folder, saved)


# -- registration -------------------------------------------------------------

type _Handler = Callable[
    [HomeAssistant, ServiceCall, Target], Awaitable[dict[str, Any]]
]

_ACTIONS: Final[tuple[tuple[str, _Handler, Any, SupportsResponse], ...]] = (
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
    (SERVICE_SAVE_IMAGES, _save_images, SAVE_IMAGES_SCHEMA, SupportsResponse.OPTIONAL),
)


def _per_camera(
    hass: HomeAssistant, handler: _Handler
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """Run ``handler`` for every targeted camera; answers keyed by entity id."""

    async def service(call: ServiceCall) -> ServiceResponse:
        results: dict[str, Any] = {}
        for target in targets(hass, call):
            with action_errors(target.stream):
                results[target.entity_id] = await handler(hass, call, target)
        return results

    return service


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the archive actions (once, in ``async_setup``)."""
    for name, handler, schema, response in _ACTIONS:
        hass.services.async_register(
            DOMAIN,
            name,
            _per_camera(hass, handler),
            schema=guarded(schema),
            supports_response=response,
        )
