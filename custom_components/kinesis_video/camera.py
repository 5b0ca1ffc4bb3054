"""Camera entities: live HLS from Kinesis Video Streams, kept fresh across expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import ClientError, ClientTimeout
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.components.stream import Stream
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    KinesisVideoClient,
    KinesisVideoError,
    PermissionDeniedError,
    SessionUrl,
)
from .const import (
    CONF_HLS_CONTAINER,
    CONF_STREAMS,
    CONF_URL_LIFETIME,
    DEFAULT_HLS_CONTAINER,
    DEFAULT_URL_LIFETIME,
    SESSION_CHECK_INTERVAL,
    STILL_CACHE_SECONDS,
    URL_REFRESH_MARGIN,
    URL_RETRY_MAX,
    URL_RETRY_MIN,
)
from .coordinator import KinesisVideoConfigEntry, KinesisVideoCoordinator
from .entity import KinesisVideoEntity

_LOGGER = logging.getLogger(__name__)

# Entities share the client; nothing here polls.
PARALLEL_UPDATES = 0
# Stills are cached per requested size; dashboards ask for a few sizes at most.
STILL_CACHE_SIZES = 4

type _Size = tuple[int | None, int | None]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KinesisVideoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One camera per configured stream."""
    data = entry.runtime_data
    async_add_entities(
        KinesisVideoCamera(data.coordinator, data.client, arn)
        for arn in entry.options.get(CONF_STREAMS, [])
    )


class KinesisVideoCamera(KinesisVideoEntity, Camera):
    """A stream's live view (HLS) and stills (GetImages or the running stream)."""

    _attr_name = None
    _attr_supported_features = CameraEntityFeature.STREAM
    _attr_brand = "Amazon Kinesis Video Streams"

    def __init__(
        self,
        coordinator: KinesisVideoCoordinator,
        client: KinesisVideoClient,
        arn: str,
    ) -> None:
        """Set up an idle camera: no URL is fetched until someone watches."""
        KinesisVideoEntity.__init__(self, coordinator, arn)
        Camera.__init__(self)
        self._client = client
        self._attr_unique_id = arn
        self._session: SessionUrl | None = None
        self._cancel_refresh: Callable[[], None] | None = None
        self._cancel_watchdog: Callable[[], None] | None = None
        self._refreshing = False
        self._retry_delay = URL_RETRY_MIN
        # One live URL request at a time (the only key: None), shared by every
        # viewer asking for one.
        self._session_tasks: dict[None, asyncio.Task[SessionUrl | None]] = {}
        # After the key was refused: no new request before then, warned once.
        self._refused_until: datetime | None = None
        self._refused = False
        # Size -> (time.monotonic(), JPEG), least recently used first.
        self._stills: OrderedDict[_Size, tuple[float, bytes]] = OrderedDict()
        # Size -> the GetImages request in flight, shared by every requester.
        self._still_tasks: dict[_Size, asyncio.Task[bytes | None]] = {}

    # -- live stream ------------------------------------------------------------

    async def stream_source(self) -> str | None:
        """A LIVE HLS session URL, reused until shortly before it expires."""
        session = self._session
        if session is None or self._expiring(session):
            session = await self._async_shared_session()
        return session.url if session else None

    async def _async_shared_session(self) -> SessionUrl | None:
        """A new session, one request for all concurrent viewers.

        While the key is refused, viewers get None without a call until the
        back-off has passed: each call would be refused (and logged) again.
        """
        if self._refused_until is not None and dt_util.utcnow() < self._refused_until:
            return None
        return await self._in_flight(
            self._session_tasks, None, self._async_new_session, "live URL"
        )

    def _in_flight[K, T](
        self,
        tasks: dict[K, asyncio.Task[T]],
        key: K,
        request: Callable[[], Coroutine[Any, Any, T]],
        name: str,
    ) -> asyncio.Future[T]:
        """The request for ``key`` in flight, else a new one: callers share it.

        Shielded: a caller that leaves does not cancel it for the others. The
        task is forgotten once done, even if cancelled before it ever ran.
        """
        if (task := tasks.get(key)) is None:
            task = tasks[key] = self.hass.async_create_task(
                request(),
                f"{self.entity_id} {name}",
                eager_start=False,  # registered before it can finish
            )

            def forget(done: asyncio.Task[T]) -> None:
                if tasks.get(key) is done:
                    del tasks[key]

            task.add_done_callback(forget)
        return asyncio.shield(task)

    def _expiring(self, session: SessionUrl) -> bool:
        return session.expires_at - URL_REFRESH_MARGIN <= dt_util.utcnow()

    async def _async_new_session(self) -> SessionUrl | None:
        """Ask KVS for a LIVE session URL and schedule its refresh."""
        options = self.coordinator.config_entry.options
        try:
            session = await self._client.get_hls_url(
                self.stream_arn,
                mode="LIVE",
                expires=int(options.get(CONF_URL_LIFETIME, DEFAULT_URL_LIFETIME)),
                container=options.get(CONF_HLS_CONTAINER, DEFAULT_HLS_CONTAINER),
            )
        except AuthenticationError:
            self._back_off(
                self._next_retry_delay(),
                "Credentials were refused for stream %s; re-authenticate",
                self.stream_name,
            )
            self.coordinator.config_entry.async_start_reauth(self.hass)
            self._session = None
            return None
        except KinesisVideoError as err:
            delay = self._next_retry_delay()
            if isinstance(err, PermissionDeniedError):
                # The key works, its policy does not allow live view here.
                self._back_off(
                    delay,
                    "No live view of %s: %s. Allow the action in the key's IAM policy",
                    self.stream_name,
                    err,
                )
            else:
                _LOGGER.debug("No live URL for %s: %s", self.stream_name, err)
            self._session = None
            self._schedule_refresh(dt_util.utcnow() + delay)
            return None
        if self._refused:
            _LOGGER.info("Live view of %s works again", self.stream_name)
            self._refused = False
        self._refused_until = None
        self._session = session
        self._retry_delay = URL_RETRY_MIN
        self._schedule_refresh(session.expires_at - URL_REFRESH_MARGIN)
        return session

    def _back_off(self, delay: timedelta, warning: str, *args: object) -> None:
        """No live URL request for ``delay``; the warning only the first time."""
        if not self._refused:
            _LOGGER.warning(warning, *args)
        self._refused = True
        self._refused_until = dt_util.utcnow() + delay

    def _next_retry_delay(self) -> timedelta:
        delay = self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, URL_RETRY_MAX)
        return delay

    def _schedule_refresh(self, when: datetime) -> None:
        if self._cancel_refresh is not None:
            self._cancel_refresh()
        self._cancel_refresh = async_track_point_in_utc_time(
            self.hass, self._async_refresh, when
        )

    @property
    def _watching(self) -> bool:
        """Whether someone watches: the stream has an output (HLS) attached.

        Home Assistant keeps the Stream object after the last viewer leaves and
        removes its output once idle; live video (billed per GB) and URL
        refreshes are only worth it while an output exists.
        """
        return self.stream is not None and bool(self.stream.outputs())

    async def _async_refresh(self, _now: datetime) -> None:
        """Before the URL expires, give the running stream a fresh one."""
        if self._cancel_refresh is not None:
            self._cancel_refresh()
            self._cancel_refresh = None
        if not self._watching:
            # Nobody is watching: fetch a URL when someone does again.
            self._session = None
            return
        self._refreshing = True
        try:
            session = await self._async_new_session()
        finally:
            self._refreshing = False
        if session is not None and self.stream is not None:
            _LOGGER.debug("Refreshed the live URL of %s", self.stream_name)
            self.stream.update_source(session.url)

    async def async_create_stream(self) -> Stream | None:
        """Create the stream (or reuse it, with a fresh URL) and watch its URL."""
        existing = self.stream
        stream = await super().async_create_stream()
        if stream is not None and stream is existing:
            # A viewer is back: the URL was let go (or ran out) while nobody
            # watched, and Home Assistant does not ask for a new source.
            session = self._session
            if (session is None or self._expiring(session)) and (
                fresh := await self._async_shared_session()
            ) is not None:
                stream.update_source(fresh.url)
        if stream is not None and self._cancel_watchdog is None:
            self._cancel_watchdog = async_track_time_interval(
                self.hass, self._async_check_session, SESSION_CHECK_INTERVAL
            )
        return stream

    async def _async_check_session(self, _now: datetime) -> None:
        """Replace a session KVS closed early (403), e.g. revoked by an 11th one.

        Home Assistant's stream worker (FFmpeg) keeps retrying a refused playlist
        without reporting it, so the camera checks the playlist itself: one small
        GET every 30 s, only while someone watches.
        """
        session = self._session
        if not self._watching or session is None or self._refreshing:
            return
        try:
            async with async_get_clientsession(self.hass).get(
                session.url, timeout=ClientTimeout(total=10)
            ) as response:
                status = response.status
        except (ClientError, TimeoutError) as err:
            _LOGGER.debug("Cannot check the live URL of %s: %s", self.stream_name, err)
            return
        if status in (401, 403):
            _LOGGER.debug("Live URL of %s was refused (%s)", self.stream_name, status)
            await self._async_refresh(dt_util.utcnow())

    async def async_will_remove_from_hass(self) -> None:
        """Stop the refresh timer and the session check."""
        await super().async_will_remove_from_hass()
        for cancel in (self._cancel_refresh, self._cancel_watchdog):
            if cancel is not None:
                cancel()
        self._cancel_refresh = self._cancel_watchdog = None

    # -- stills -----------------------------------------------------------------

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The running stream's keyframe, else a (briefly cached) GetImages still."""
        # Only from a stream someone watches: asking an idle one for an image
        # would start its worker, i.e. pull live video, at every refresh.
        if self.stream is not None and self._watching and self.stream.available:
            image = await self.stream.async_get_image(width, height)
            if image:
                return image
        size = (width, height)
        cached = self._stills.get(size)
        if cached is not None:
            self._stills.move_to_end(size)
            if time.monotonic() - cached[0] < STILL_CACHE_SECONDS:
                return cached[1]
        image = await self._in_flight(
            self._still_tasks, size, partial(self._async_fetch_still, size), "still"
        )
        if image is None and cached is not None:
            return cached[1]  # the last good one, rather than none
        return image

    async def _async_fetch_still(self, size: _Size) -> bytes | None:
        """GetImages at ``size`` into the cache (least recently used size out)."""
        try:
            image = await self._client.latest_image(
                self.stream_arn, width=size[0], height=size[1]
            )
        except KinesisVideoError as err:
            _LOGGER.debug("No still for %s: %s", self.stream_name, err)
            return None
        if image is not None:
            self._stills[size] = (time.monotonic(), image)
            self._stills.move_to_end(size)
            while len(self._stills) > STILL_CACHE_SIZES:
                self._stills.popitem(last=False)
        return image
