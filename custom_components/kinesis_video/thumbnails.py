"""Thumbnails of the archive: fetched once, kept on disk, served with the user's auth.

A node's picture is the first good GetImages still of a short window at its start
(the first image of a range is often NO_MEDIA), or the first frame of a saved clip.
Every picture is billed once: kept in a bounded disk cache (least recently used
out) under the config folder, fetched only when the browser asks for it, one call
per picture however many ask at once, and paced under GetImages' rate per stream.
A stream that cannot give stills (H.265 without images, no keyframes) is
remembered, so it is not billed again; its nodes get an icon.

The media browser's ``thumbnail`` URLs lead to ``ThumbnailView``: the frontend
fetches local thumbnail URLs with the user's token (``fetchWithAuth``) and embeds
them, so the view requires auth and nothing is public.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final, Protocol

from aiohttp import web
from homeassistant.helpers.http import HomeAssistantView

from .kvs import (
    Image,
    InvalidArgumentError,
    KinesisVideoClient,
    KinesisVideoError,
    NoDataRetentionError,
    StillsRequest,
    TimestampType,
)
from .timeline import from_ms

_LOGGER = logging.getLogger(__name__)

THUMBNAIL_WIDTH: Final = 320
# The stills asked for a node: its first seconds, a few seconds apart (each is
# billed; the first is often missing).
WINDOW_MS: Final = 12_000
SAMPLING_MS: Final = 3000
CACHE_MAX_BYTES: Final = 64 * 1024 * 1024
CACHE_MAX_FILES: Final = 20_000
# How long a stream that gave no stills is left alone.
NO_IMAGES_SECONDS: Final = 24 * 3600.0
# GetImages per stream: 5 TPS at AWS; start at most this many a second, this many
# at once.
IMAGES_PER_SECOND: Final = 4.0
IMAGES_AT_ONCE: Final = 2
URL_PREFIX: Final = "/api/kinesis_video/thumbnail"
ICON_PREFIX: Final = "/api/kinesis_video/icon"
_JPEG: Final = ".jpg"
_NONE: Final = ".none"  # known to have no picture
_STREAM: Final = ".stream"  # a stream without stills, since the file's mtime

# Icons drawn for this integration (a camera; crossed out: no video / no image).
_CAMERA: Final = (
    '<rect x="10" y="22" width="56" height="40" rx="6"/>'
    '<path d="M66 36 L86 24 V60 L66 48 Z"/>'
)
ICONS: Final[dict[str, str]] = {
    "no_video": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 84">'
        '<g fill="#9e9e9e">' + _CAMERA + "</g>"
        '<path d="M12 8 L84 78" stroke="#e53935" stroke-width="7"'
        ' stroke-linecap="round"/></svg>'
    ),
    "no_image": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 84">'
        '<g fill="#bdbdbd">' + _CAMERA + "</g>"
        '<circle cx="38" cy="42" r="11" fill="#fafafa"/></svg>'
    ),
}


def icon_url(name: str) -> str:
    """The URL of one of ``ICONS``."""
    return f"{ICON_PREFIX}/{name}.svg"


class DiskCache:
    """Pictures in a folder, bounded in bytes and files, least recently used out.

    Names are hashes. A ``.none`` file says "no picture here" (so it is not
    asked again). Every method blocks: run them in an executor.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = CACHE_MAX_BYTES,
        max_files: int = CACHE_MAX_FILES,
    ) -> None:
        """Use ``folder`` (made when first written)."""
        self.folder = folder
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._files: OrderedDict[str, int] | None = None  # name -> size, LRU first
        self._bytes = 0

    def _index(self) -> OrderedDict[str, int]:
        """What the folder holds, oldest use first (read once)."""
        if self._files is None:
            found: list[tuple[float, str, int]] = []
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.folder):
                    if entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found.append((stat.st_mtime, entry.name, stat.st_size))
            found.sort()
            self._files = OrderedDict((name, size) for _, name, size in found)
            self._bytes = sum(self._files.values())
        return self._files

    @property
    def size(self) -> tuple[int, int]:
        """(files, bytes) held."""
        files = self._index()
        return len(files), self._bytes

    def get(self, key: str) -> bytes | bool | None:
        """The picture, False if known to have none, None if never fetched."""
        files = self._index()
        for suffix in (_JPEG, _NONE):
            name = key + suffix
            if name not in files:
                continue
            path = self.folder / name
            try:
                data = path.read_bytes() if suffix == _JPEG else b""
                os.utime(path)  # used now: last out
            except FileNotFoundError:
                self._bytes -= files.pop(name)
                continue
            files.move_to_end(name)
            return data if suffix == _JPEG else False
        return None

    def put(self, key: str, data: bytes | None) -> None:
        """Keep a picture (or None: there is none), then evict beyond the bounds."""
        files = self._index()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = key + (_JPEG if data is not None else _NONE)
        part = self.folder / f".{name}.part"
        part.write_bytes(data or b"")
        os.replace(part, self.folder / name)  # readers never see half a file
        self._bytes -= files.pop(name, 0)
        files[name] = len(data or b"")
        self._bytes += files[name]
        while len(files) > 1 and (
            self._bytes > self._max_bytes or len(files) > self._max_files
        ):
            old, size = files.popitem(last=False)
            self._bytes -= size
            with contextlib.suppress(FileNotFoundError):
                (self.folder / old).unlink()

    def stream_failed_at(self, key: str) -> float | None:
        """When a stream was found to give no stills (epoch s), or None."""
        try:
            return (self.folder / (key + _STREAM)).stat().st_mtime
        except FileNotFoundError:
            return None

    def stream_failed(self, key: str, failed: bool) -> None:
        """Remember (or forget) that a stream gives no stills."""
        path = self.folder / (key + _STREAM)
        if failed:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def cache_key(*parts: object) -> str:
    """A file name for what identifies a picture."""
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:40]


class _Pacer:
    """Starts at most ``rate`` calls a second (``burst`` at once), in turn."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None

    async def take(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._last is not None:
            self._tokens = min(
                self._burst, self._tokens + (now - self._last) * self._rate
            )
        self._last = now
        self._tokens -= 1
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self._rate)


def first_frame_jpeg(path: Path, width: int = THUMBNAIL_WIDTH) -> bytes | None:
    """The first video frame of a media file as a JPEG ``width`` wide (blocking)."""
    import av  # noqa: PLC0415 - heavy; Home Assistant's stream component has it
    import av.error  # noqa: PLC0415

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            for frame in container.decode(video=0):
                image = frame.to_image()  # type: ignore[no-untyped-call,unused-ignore]  # PyAV 13 types it
                height = max(1, round(image.height * width / image.width))
                out = io.BytesIO()
                image.resize((width, height)).save(out, format="JPEG", quality=80)
                return out.getvalue()
    except (av.error.FFmpegError, OSError, ValueError) as err:
        _LOGGER.debug("No thumbnail from %s: %s", path.name, err)
    return None


type RunInExecutor = Callable[..., Awaitable[Any]]


class Thumbnails:
    """Fetches pictures once (coalesced, paced) through a ``DiskCache``."""

    def __init__(
        self,
        cache: DiskCache,
        run_in_executor: RunInExecutor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep pictures in ``cache``; blocking work through ``run_in_executor``."""
        self.cache = cache
        self._run = run_in_executor
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[bytes | None]] = {}
        self._pacers: dict[str, _Pacer] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def coalesced(
        self, key: str, make: Callable[[], Coroutine[Any, Any, bytes | None]]
    ) -> bytes | None:
        """One ``make()`` per key at a time, shared by everyone asking."""
        if (task := self._inflight.get(key)) is None:
            task = asyncio.ensure_future(make())
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # A viewer that goes away leaves the fetch to the others (and the cache).
        return await asyncio.shield(task)

    async def still(
        self,
        client: KinesisVideoClient,
        arn: str,
        timestamp_type: TimestampType,
        start_ms: int,
        end_ms: int,
    ) -> bytes | None:
        """The first good still of [start_ms, end_ms] (its first seconds)."""
        end_ms = min(end_ms, start_ms + WINDOW_MS)
        key = cache_key(arn, timestamp_type, start_ms, end_ms, THUMBNAIL_WIDTH)
        request = StillsRequest(
            sampling_ms=SAMPLING_MS,
            image_format="JPEG",
            width=THUMBNAIL_WIDTH,
            timestamp_type=timestamp_type,
        )

        def fetch() -> Awaitable[list[Image]]:
            return client.get_images(arn, from_ms(start_ms), from_ms(end_ms), request)

        return await self.coalesced(key, lambda: self._still(key, arn, fetch))

    async def stream_has_no_stills(self, arn: str) -> bool:
        """Whether GetImages recently failed for good on this stream."""
        failed = await self._run(self.cache.stream_failed_at, cache_key(arn))
        return failed is not None and self._clock() - failed < NO_IMAGES_SECONDS

    async def _still(
        self, key: str, arn: str, fetch: Callable[[], Awaitable[list[Image]]]
    ) -> bytes | None:
        """The picture kept under ``key``, else the first good one ``fetch`` gets.

        ``fetch`` is the stream's GetImages call, made in the stream's slot and
        pace; a stream that cannot give stills is remembered by its ``arn``.
        """
        cached = await self._run(self.cache.get, key)
        if cached is not None:
            return cached or None
        if await self.stream_has_no_stills(arn):
            return None
        if (pacer := self._pacers.get(arn)) is None:
            pacer = self._pacers[arn] = _Pacer(IMAGES_PER_SECOND, IMAGES_PER_SECOND)
            self._slots[arn] = asyncio.Semaphore(IMAGES_AT_ONCE)
        try:
            async with self._slots[arn]:
                await pacer.take()
                images = await fetch()
        except (InvalidArgumentError, NoDataRetentionError) as err:
            # The stream's media gives no stills (codec, no keyframes): for good.
            _LOGGER.info("No thumbnails for %s: %s", arn.rsplit("/", 2)[-2], err)
            await self._run(self.cache.stream_failed, cache_key(arn), True)
            return None
        except KinesisVideoError as err:  # throttled, service: maybe next time
            _LOGGER.debug("Thumbnail not fetched: %s", err)
            return None
        picture = _first_good(images)
        if picture is None and images and all(i.error == "MEDIA_ERROR" for i in images):
            await self._run(self.cache.stream_failed, cache_key(arn), True)
        await self._run(self.cache.put, key, picture)
        return picture

    async def clip(self, path: Path, size: int, mtime_ns: int) -> bytes | None:
        """The first frame of a saved clip (a changed file gets a new one)."""
        key = cache_key("clip", path, size, mtime_ns, THUMBNAIL_WIDTH)

        async def make() -> bytes | None:
            cached = await self._run(self.cache.get, key)
            if cached is not None:
                return cached or None
            picture: bytes | None = await self._run(first_frame_jpeg, path)
            await self._run(self.cache.put, key, picture)
            return picture

        return await self.coalesced(key, make)


def _first_good(images: list[Image]) -> bytes | None:
    return next((i.content for i in images if i.content), None)


class ThumbnailSource(Protocol):
    """What the view asks for a node's picture."""

    async def async_thumbnail(
        self, entry_id: str, stream: str, kind: str, value: str
    ) -> bytes | str | None:
        """The JPEG, an icon's name, None if none; LookupError if no such node."""


class ThumbnailView(HomeAssistantView):
    """Thumbnails of the media browser's nodes (for signed-in users only)."""

    url = URL_PREFIX + "/{entry_id}/{stream}/{kind}/{value}"
    name = "api:kinesis_video:thumbnail"
    requires_auth = True

    def __init__(self, source: Callable[[], Awaitable[ThumbnailSource]]) -> None:
        """Ask ``source()`` for pictures."""
        self._source = source

    async def get(
        self, request: web.Request, entry_id: str, stream: str, kind: str, value: str
    ) -> web.Response:
        """A JPEG; the no-image icon if the node has none; 404 if no such node."""
        source = await self._source()
        try:
            picture = await source.async_thumbnail(entry_id, stream, kind, value)
        except LookupError:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        if picture is None or isinstance(picture, str):
            # The frontend embeds whatever it gets: an icon, not a broken image.
            # Not kept: the node may get a picture (or video) later.
            return web.Response(
                body=ICONS["no_image" if picture is None else picture],
                content_type="image/svg+xml",
                headers={"Cache-Control": "no-store"},
            )
        return web.Response(
            body=picture,
            content_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=86400"},
        )


class IconView(HomeAssistantView):
    """The integration's icons for nodes without a picture (a gap, no stills)."""

    url = ICON_PREFIX + "/{name}.svg"
    name = "api:kinesis_video:icon"
    requires_auth = True

    async def get(self, request: web.Request, name: str) -> web.Response:
        """An SVG icon."""
        if (icon := ICONS.get(name)) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.Response(
            body=icon,
            content_type="image/svg+xml",
            headers={"Cache-Control": "private, max-age=86400"},
        )
