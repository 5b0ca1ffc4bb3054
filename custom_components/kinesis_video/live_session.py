"""The live view's KVS session, kept fresh while someone watches.

Shaped like nest's ``StreamRefresh``: the camera entity holds one and hands it
its stream; this class owns the URL, its refresh before expiry, the back-off
after a refusal, the early-expiry check and the nobody-watching logic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from aiohttp import ClientError, ClientTimeout
from homeassistant.components.stream import Stream
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util

from .const import (
    SESSION_CHECK_INTERVAL,
    URL_REFRESH_MARGIN,
    URL_RETRY_MAX,
    URL_RETRY_MIN,
)
from .coordinator import KinesisVideoConfigEntry
from .kvs import (
    AuthenticationError,
    KinesisVideoError,
    PermissionDeniedError,
    PlaybackRequest,
    SessionUrl,
)

_LOGGER = logging.getLogger(__name__)


def shared_request[K, T](
    hass: HomeAssistant,
    tasks: dict[K, asyncio.Task[T]],
    key: K,
    request: Callable[[], Coroutine[Any, Any, T]],
    name: str,
) -> asyncio.Future[T]:
    """The request for ``key`` in flight, else a new one: callers share it.

    Shielded: a caller that leaves does not cancel it for the others. The task
    is forgotten once done, even if cancelled before it ever ran.
    """
    if (task := tasks.get(key)) is None:
        task = tasks[key] = hass.async_create_task(
            request(),
            name,
            eager_start=False,  # registered before it can finish
        )

        def forget(done: asyncio.Task[T]) -> None:
            if tasks.get(key) is done:
                del tasks[key]

        task.add_done_callback(forget)
    return asyncio.shield(task)


class LiveSession:
    """The LIVE HLS session URL of one stream and the stream that plays it."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: KinesisVideoConfigEntry,
        arn: str,
        *,
        name: str,
        on_update: Callable[[], None],
    ) -> None:
        """Idle: no URL is fetched until someone watches."""
        self._hass = hass
        self._entry = entry
        self._client = entry.runtime_data.client
        self._arn = arn
        self._name = name
        # The entity's state write: the stream's availability and whether it
        # runs are part of the camera's state.
        self._on_update = on_update
        self.stream: Stream | None = None
        self.session: SessionUrl | None = None
        # The stream's source when it reads the session through the camera's
        # local playlists (live_proxy): they follow the session themselves.
        self.local_source: str | None = None
        self._cancel_refresh: Callable[[], None] | None = None
        self._cancel_watchdog: Callable[[], None] | None = None
        self._refreshing = False
        self._checking = False
        self._was_watching = False
        self._retry_delay = URL_RETRY_MIN
        # One URL request at a time (the only key: None), shared by every
        # viewer asking for one.
        self._tasks: dict[None, asyncio.Task[SessionUrl | None]] = {}
        # After the key was refused: no new request before then, warned once.
        self._refused_until: datetime | None = None
        self._refused = False

    @property
    def watching(self) -> bool:
        """Whether someone watches: the stream has an output (HLS) attached.

        Home Assistant keeps the Stream object after the last viewer leaves and
        removes its output once idle; live video (billed per GB) and URL
        refreshes are only worth it while an output exists.
        """
        return self.stream is not None and bool(self.stream.outputs())

    async def async_url(self) -> str | None:
        """A session URL, reused until shortly before it expires."""
        session = await self.async_session()
        return session.url if session else None

    async def async_session(self) -> SessionUrl | None:
        """The session, reused until shortly before it expires."""
        session = self.session
        if session is None or self._expiring(session):
            session = await self._async_shared_session()
        return session

    async def async_replace(self, refused: SessionUrl) -> SessionUrl | None:
        """A new session in place of ``refused``, which KVS closed early.

        Every reader that met the refusal gets the same new session.
        """
        if self.session is not None and self.session is not refused:
            return self.session  # replaced already
        self.session = None
        return await self._async_shared_session()

    async def async_attach(self, stream: Stream, *, reused: bool) -> None:
        """Follow the camera's stream (new, or ``reused`` for a returning viewer)."""
        self.stream = stream
        # Replaces the camera's own callback, which only wrote the state.
        stream.set_update_callback(self._async_stream_changed)
        if reused:
            # The URL was let go (or ran out) while nobody watched, and Home
            # Assistant does not ask for a new source.
            session = self.session
            if (session is None or self._expiring(session)) and (
                fresh := await self._async_shared_session()
            ) is not None:
                await self._async_give(stream, fresh.url)
        if self._cancel_watchdog is None:
            self._cancel_watchdog = async_track_time_interval(
                self._hass, self._async_check, SESSION_CHECK_INTERVAL
            )

    @callback
    def async_stop(self) -> None:
        """Stop the refresh timer and the session check."""
        for cancel in (self._cancel_refresh, self._cancel_watchdog):
            if cancel is not None:
                cancel()
        self._cancel_refresh = self._cancel_watchdog = None

    # -- getting a URL ----------------------------------------------------------

    async def _async_shared_session(self) -> SessionUrl | None:
        """A new session, one request for all concurrent viewers.

        While the key is refused, viewers get None without a call until the
        back-off has passed: each call would be refused (and logged) again.
        """
        if self._refused_until is not None and dt_util.utcnow() < self._refused_until:
            return None
        return await shared_request(
            self._hass,
            self._tasks,
            None,
            self._async_new_session,
            f"{self._name} live URL",
        )

    def _expiring(self, session: SessionUrl) -> bool:
        return session.expires_at - URL_REFRESH_MARGIN <= dt_util.utcnow()

    async def _async_new_session(self) -> SessionUrl | None:
        """Ask KVS for a LIVE session URL and schedule its refresh."""
        options = self._entry.runtime_data.options
        try:
            session = await self._client.get_hls_url(
                self._arn,
                PlaybackRequest(
                    mode="LIVE",
                    expires=options.url_lifetime,
                    container=options.hls_container,
                ),
            )
        except AuthenticationError:
            self._back_off(
                self._next_retry_delay(),
                "Credentials were refused for stream %s; re-authenticate",
                self._name,
            )
            self._entry.async_start_reauth(self._hass)
            self.session = None
            return None
        except KinesisVideoError as err:
            delay = self._next_retry_delay()
            if isinstance(err, PermissionDeniedError):
                # The key works, its policy does not allow live view here.
                self._back_off(
                    delay,
                    "No live view of %s: %s. Allow the action in the key's IAM policy",
                    self._name,
                    err,
                )
            else:
                _LOGGER.debug("No live URL for %s: %s", self._name, err)
            self.session = None
            self._schedule_refresh(dt_util.utcnow() + delay)
            return None
        if self._refused:
            _LOGGER.info("Live view of %s works again", self._name)
            self._refused = False
        self._refused_until = None
        self.session = session
        self._retry_delay = URL_RETRY_MIN
        self._schedule_refresh(session.expires_at - URL_REFRESH_MARGIN)
        return session

    def _back_off(self, delay: timedelta, warning: str, *args: object) -> None:
        """No URL request for ``delay``; the warning only the first time."""
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
            self._hass, self._async_refresh, when
        )

    # -- keeping the running stream on a valid URL ------------------------------

    async def _async_give(self, stream: Stream, url: str) -> None:
        """Hand the stream a new URL at a point its worker honours it.

        A running worker restarts at once with ``update_source``. After a
        failure (unavailable) the worker waits out a back-off, and
        ``update_source`` then ends it for good (its retry loop exits and
        Home Assistant drops the outputs: the viewer's playlist answers 404).
        There the new URL is only set, and the worker's own retry uses it.
        A stream on the local playlists needs nothing: they read ``session``.
        """
        if self.local_source is not None and stream.source == self.local_source:
            return
        # A worker that failed a moment ago (FFmpeg met the same expiry this
        # refresh answers) has its "unavailable" queued on the loop from its
        # thread: let it land before choosing.
        await asyncio.sleep(0)
        if stream.available:
            stream.update_source(url)
        else:
            stream.source = url

    async def _async_refresh(self, _now: datetime) -> None:
        """Before the URL expires, give the running stream a fresh one."""
        stream = self.stream
        if stream is None or not stream.outputs():
            # Nobody is watching: fetch a URL when someone does again.
            self.session = None
            return
        self._refreshing = True
        try:
            session = await self._async_new_session()
        finally:
            self._refreshing = False
        if session is not None:
            _LOGGER.debug("Refreshed the live URL of %s", self._name)
            await self._async_give(stream, session.url)

    @callback
    def _async_stream_changed(self) -> None:
        """The worker started or failed: the state, and a check on failure.

        The worker fails within a fraction of a second when KVS ends the
        session early; checking then, rather than at the next periodic check,
        has the new URL in place before the worker's first retry.
        """
        self._write_state()
        if self.stream is not None and not self.stream.available:
            self._hass.async_create_background_task(
                self._async_check(dt_util.utcnow()), f"{self._name} session check"
            )

    def _write_state(self) -> None:
        self._was_watching = self.watching
        self._on_update()

    async def _async_check(self, _now: datetime) -> None:
        """Replace a session KVS closed early (403), e.g. revoked by an 11th one.

        Home Assistant's stream worker (FFmpeg) does not report why it failed,
        so the URL is checked with one small GET: every 30 s while someone
        watches, and whenever the worker fails.
        """
        watching = self.watching
        if watching != self._was_watching:
            self._write_state()  # streaming <-> idle
        session = self.session
        if not watching or session is None or self._refreshing or self._checking:
            return
        if self.stream is not None and self.stream.source == self.local_source:
            return  # the local playlists see each refusal themselves
        self._checking = True
        try:
            async with async_get_clientsession(self._hass).get(
                session.url, timeout=ClientTimeout(total=10)
            ) as response:
                status = response.status
        except (ClientError, TimeoutError) as err:
            _LOGGER.debug("Cannot check the live URL of %s: %s", self._name, err)
            return
        finally:
            self._checking = False
        if status in (401, 403):
            _LOGGER.debug("Live URL of %s was refused (%s)", self._name, status)
            await self._async_refresh(dt_util.utcnow())
