"""A local HLS playlist for the stream worker that outlives KVS sessions.

KVS may end a LIVE session before its ``Expires`` (the 11th session on a stream
revokes the oldest). Given the session's own URL, FFmpeg then fails its next
playlist reload and Home Assistant's stream worker waits out a back-off of 10 s
or more before it retries: the viewer loses about 12 s of video. So the
worker's source is a URL of this view instead. It answers the current
session's playlists, fetched from KVS; when KVS refuses the session (401/403),
it takes a new one from the camera's ``LiveSession`` at once and answers that
one's, so FFmpeg never sees a dead playlist.

- Only playlists and init sections pass through Home Assistant: segment URIs
  are made absolute to KVS, so the video goes from KVS to the worker directly.
- Media sequence numbers go on across sessions: FFmpeg's hls demuxer waits (or
  skips) when ``EXT-X-MEDIA-SEQUENCE`` goes backwards or jumps, and a new session
  may number its segments anew. Each segment keeps the number it was first
  given, known by its ``FragmentNumber``.
- FFmpeg has no login: like Home Assistant's own ``/api/hls/<token>/`` views this
  one needs none, and a random secret in the path (one per camera and run) is
  the credential. It never answers 401 or 403, which Home Assistant's ban
  filter could count against the local address.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qs, urljoin, urlsplit

from aiohttp import ClientError, ClientTimeout, web
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .kvs import SessionUrl
from .live_session import LiveSession

_LOGGER = logging.getLogger(__name__)

PATH = f"/api/{DOMAIN}/live/{{secret}}"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
# A playlist is a few hundred bytes; KVS answers it within a second.
FETCH_TIMEOUT = ClientTimeout(total=10)
# Segments remembered per media playlist for their sequence numbers: KVS's LIVE
# window is a few segments long, and a new session's overlaps the last one.
SEQUENCES_KEPT = 100

DATA_PROXIES: HassKey[dict[str, LiveProxy]] = HassKey(f"{DOMAIN}_live_proxies")

_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
_MEDIA_SEQUENCE = "#EXT-X-MEDIA-SEQUENCE:"
_MAP = "#EXT-X-MAP:"


class _SessionRefusedError(Exception):
    """KVS answered 401/403: the session is over."""


def local_base_url(hass: HomeAssistant) -> str | None:
    """How the stream worker reaches this Home Assistant's HTTP server.

    Straight to the server's own socket: loopback when it listens on every
    interface (the default), else the first address it binds to. Not
    ``get_url()``: a configured internal URL may name a host that does not
    resolve here (mDNS inside a container), a reverse proxy or a port
    forwarding that loops out and back in. With ``ssl_certificate`` the
    server speaks HTTPS; the certificate names a host, not this address, and
    the worker does not verify it (``tls_verify`` 0, Home Assistant's default
    for stream sources). None when the server asks clients for a certificate
    (``ssl_peer_certificate``): the worker has none, it plays KVS's URL.
    """
    if (api := hass.config.api) is None or hass.http.ssl_peer_certificate:
        return None
    # Every interface (the default) includes loopback.
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
    host = wildcard.get(api.host, api.host)
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if api.use_ssl else 'http'}://{host}:{api.port}"


@callback
def async_register_view(hass: HomeAssistant) -> dict[str, LiveProxy]:
    """The view, registered once (views cannot be removed), and its proxies."""
    if (proxies := hass.data.get(DATA_PROXIES)) is None:
        proxies = hass.data[DATA_PROXIES] = {}
        hass.http.register_view(LiveProxyView(proxies))
    return proxies


class LiveProxyView(HomeAssistantView):
    """The playlists of one camera's live session, at ``PATH/master.m3u8``."""

    url = f"{PATH}/master.m3u8"
    extra_urls = [
        f"{PATH}/media/{{index:\\d+}}.m3u8",
        f"{PATH}/media/{{index:\\d+}}.{{part:\\d+}}.mp4",
    ]
    name = f"api:{DOMAIN}:live"
    requires_auth = False

    def __init__(self, proxies: dict[str, LiveProxy]) -> None:
        """Serve the proxies registered in ``proxies`` by secret."""
        self._proxies = proxies

    async def get(
        self,
        request: web.Request,
        secret: str,
        index: str | None = None,
        part: str | None = None,
    ) -> web.Response:
        """The master playlist, a media playlist it lists, or an init section."""
        if (proxy := self._proxies.get(secret)) is None:
            raise web.HTTPNotFound
        if index is None:
            text = await proxy.async_master()
        elif part is None:
            text = await proxy.async_media(int(index))
        else:
            return web.Response(
                body=await proxy.async_init(int(index), int(part)),
                content_type="video/mp4",
                headers={"Cache-Control": "no-cache"},
            )
        return web.Response(
            text=text,
            content_type=PLAYLIST_CONTENT_TYPE,
            headers={"Cache-Control": "no-cache"},
        )


class LiveProxy:
    """One camera's local master and media playlists, and their init sections.

    The init section (``EXT-X-MAP``, codec set-up, about 1 KB) comes through
    here too: FFmpeg gives up the whole input when it cannot load one (a
    segment it cannot load, FFmpeg 9 skips), and it loads it again after each
    playlist reload, a moment after the playlist, with the same session. This
    costs no connection to KVS: FFmpeg opens a new one per segment anyway.
    """

    def __init__(self, hass: HomeAssistant, live: LiveSession, name: str) -> None:
        """Not served until registered (``async_register``)."""
        self._hass = hass
        self._live = live
        self._name = name
        self.secret = secrets.token_urlsafe(32)
        # The session whose master was read last, and its media playlists.
        self._media_of: tuple[SessionUrl, list[str]] | None = None
        self._playlists: dict[int, _MediaPlaylist] = {}

    @property
    def path(self) -> str:
        """The master playlist's path (its secret included)."""
        return f"{PATH.format(secret=self.secret)}/master.m3u8"

    def url(self) -> str | None:
        """The URL the stream worker opens, None if the server is not known."""
        base = local_base_url(self._hass)
        return None if base is None else base + self.path

    @callback
    def async_register(self) -> Callable[[], None]:
        """Serve this camera's playlists; the callable stops it."""
        proxies = async_register_view(self._hass)
        proxies[self.secret] = self

        @callback
        def unregister() -> None:
            proxies.pop(self.secret, None)

        return unregister

    async def async_master(self) -> str:
        """KVS's master playlist, each media playlist named by its index here."""

        async def read(session: SessionUrl) -> str:
            master = (await self._async_get(session.url)).decode()
            return self._remember_master(session, master)

        return await self._async_current(read)

    async def async_media(self, index: int) -> str:
        """KVS's media playlist ``index``: segments at KVS, sequence numbers ours."""
        return await self._async_current(partial(self._async_read_media, index=index))

    async def async_init(self, index: int, part: int) -> bytes:
        """The init section ``part`` of media playlist ``index``, from KVS."""

        async def read(session: SessionUrl) -> bytes:
            playlist = self._playlists.get(index)
            if playlist is None or playlist.session is not session:
                # A new session: its own init URLs, from its playlist.
                await self._async_read_media(session, index=index)
                playlist = self._playlists[index]
            if part >= len(playlist.inits):
                raise web.HTTPNotFound
            return await self._async_get(playlist.inits[part])

        return await self._async_current(read)

    async def _async_read_media(self, session: SessionUrl, *, index: int) -> str:
        if self._media_of is None or self._media_of[0] is not session:
            master = (await self._async_get(session.url)).decode()
            self._remember_master(session, master)
        assert self._media_of is not None
        urls = self._media_of[1]
        if index >= len(urls):
            raise web.HTTPNotFound
        playlist = self._playlists.setdefault(index, _MediaPlaylist(index))
        return playlist.rewrite(
            session, (await self._async_get(urls[index])).decode(), urls[index]
        )

    async def _async_current[T](self, read: Callable[[SessionUrl], Awaitable[T]]) -> T:
        """``read`` the current session; a session KVS refused is replaced once."""
        if (session := await self._live.async_session()) is not None:
            try:
                return await read(session)
            except _SessionRefusedError:
                _LOGGER.debug("KVS ended the live session of %s early", self._name)
            if (session := await self._live.async_replace(session)) is not None:
                # Refused too: no loop, the next request tries again.
                with contextlib.suppress(_SessionRefusedError):
                    return await read(session)
        # No session (the key is refused, or the camera sent nothing for 30 s):
        # the worker's own retry comes back later.
        raise web.HTTPServiceUnavailable

    async def _async_get(self, url: str) -> bytes:
        try:
            async with async_get_clientsession(self._hass).get(
                url, timeout=FETCH_TIMEOUT
            ) as response:
                if response.status in (401, 403):
                    raise _SessionRefusedError
                if response.status != 200:
                    _LOGGER.debug(
                        "KVS answered %s for the live view of %s",
                        response.status,
                        self._name,
                    )
                    raise web.HTTPBadGateway
                return await response.read()
        except (ClientError, TimeoutError) as err:
            _LOGGER.debug(
                "Cannot reach KVS for the live view of %s: %s", self._name, err
            )
            raise web.HTTPBadGateway from err

    def _remember_master(self, session: SessionUrl, master: str) -> str:
        local, urls = _local_master(master, session.url)
        self._media_of = (session, urls)
        return local


def _local_master(master: str, url: str) -> tuple[str, list[str]]:
    """The master with its media playlists renamed, and their URLs at KVS."""
    urls: list[str] = []

    def local(uri: str) -> str:
        urls.append(urljoin(url, uri))
        return f"media/{len(urls) - 1}.m3u8"

    lines = [
        _URI_ATTRIBUTE.sub(lambda m: f'URI="{local(m[1])}"', line)
        if line.startswith("#")
        else local(line)
        if line.strip()
        else line
        for line in master.splitlines()
    ]
    return "\n".join(lines) + "\n", urls


class _MediaPlaylist:
    """One media playlist of the live view, across sessions.

    Our media sequence numbers, and the init section URLs of the session read
    last (its ``EXT-X-MAP`` tags, served as ``<index>.<part>.mp4``).
    """

    def __init__(self, index: int) -> None:
        self._index = index
        self._numbers: OrderedDict[str, int] = OrderedDict()  # segment -> number
        self._next: int | None = None
        self.session: SessionUrl | None = None
        self.inits: list[str] = []

    def rewrite(self, session: SessionUrl, playlist: str, url: str) -> str:
        """``playlist`` with local init sections, KVS segments, our numbers."""
        lines = playlist.splitlines()
        theirs = 0
        segments: list[str] = []
        for line in lines:
            if line.startswith(_MEDIA_SEQUENCE):
                theirs = int(line.removeprefix(_MEDIA_SEQUENCE).strip() or 0)
            elif line.strip() and not line.startswith("#"):
                segments.append(_segment_key(line))
        first = self._number(segments, theirs)
        inits: list[str] = []

        def local_init(uri: str) -> str:
            inits.append(urljoin(url, uri))
            return f'URI="{self._index}.{len(inits) - 1}.mp4"'

        def absolute(uri: str) -> str:
            return f'URI="{urljoin(url, uri)}"'

        out: list[str] = []
        for line in lines:
            if line.startswith(_MEDIA_SEQUENCE):
                out.append(f"{_MEDIA_SEQUENCE}{first}")
            elif line.startswith(_MAP):
                out.append(_URI_ATTRIBUTE.sub(lambda m: local_init(m[1]), line))
            elif line.startswith("#"):
                out.append(_URI_ATTRIBUTE.sub(lambda m: absolute(m[1]), line))
            else:
                out.append(urljoin(url, line) if line.strip() else line)
        if first and not any(line.startswith(_MEDIA_SEQUENCE) for line in lines):
            out.insert(1, f"{_MEDIA_SEQUENCE}{first}")
        self.session = session
        self.inits = inits
        return "\n".join(out) + "\n"

    def _number(self, segments: list[str], theirs: int) -> int:
        """The first segment's number; every segment's remembered."""
        known = next(
            (
                self._numbers[key] - position
                for position, key in enumerate(segments)
                if key in self._numbers
            ),
            None,
        )
        if known is not None:
            first = known
        elif self._next is None:
            first = theirs  # the first playlist: KVS's numbers as they are
        else:
            first = self._next  # a new session with no segment seen: go on
        for position, key in enumerate(segments):
            self._numbers[key] = first + position
            self._numbers.move_to_end(key)
        while len(self._numbers) > SEQUENCES_KEPT:
            self._numbers.popitem(last=False)
        self._next = max(self._next or 0, first + len(segments))
        return first


def _segment_key(uri: str) -> str:
    """What a segment is across sessions: its fragment, not its session token."""
    numbers = parse_qs(urlsplit(uri).query).get("FragmentNumber")
    return numbers[0] if numbers else uri
