"""Camera entities: live HLS from Kinesis Video Streams, kept fresh across expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from functools import cache, partial
from pathlib import Path

from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.components.stream import Stream
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import STILL_CACHE_SECONDS
from .coordinator import (
    KinesisVideoConfigEntry,
    KinesisVideoCoordinator,
    async_add_stream_entities,
)
from .entity import KinesisVideoEntity
from .kvs import KinesisVideoClient, KinesisVideoError
from .live_proxy import LiveProxy
from .live_session import LiveSession, shared_request

_LOGGER = logging.getLogger(__name__)

# Entities share the client; nothing here polls.
PARALLEL_UPDATES = 0
# Stills are cached per requested size; dashboards ask for a few sizes at most.
STILL_CACHE_SIZES = 4
# GetImages' largest WidthPixels and HeightPixels.
MAX_STILL_WIDTH = 3840
MAX_STILL_HEIGHT = 2160
# Answered when there is no still at all (HA's camera proxy would answer 500 to
# None): 640 x 360, 3 KB, made once with Pillow:
#   image = Image.new("RGB", (640, 360), (48, 48, 48))
#   ImageDraw.Draw(image).text((320, 180), "No image", fill=(160, 160, 160),
#       font=ImageFont.load_default(size=36), anchor="mm")
#   image.save("no_image.jpg", "JPEG", quality=75, optimize=True)
NO_IMAGE = Path(__file__).parent / "no_image.jpg"

type _Size = tuple[int | None, int | None]


@cache
def _no_image() -> bytes:
    """The placeholder JPEG, read once (call it in the executor)."""
    return NO_IMAGE.read_bytes()


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KinesisVideoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One camera per stream, also for streams added while running."""
    data = entry.runtime_data
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda arn: [KinesisVideoCamera(data.coordinator, data.client, arn)],
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
        self._live = LiveSession(
            coordinator.hass,
            coordinator.config_entry,
            arn,
            name=self.stream_name,
            on_update=self._async_live_changed,
        )
        self._proxy = LiveProxy(coordinator.hass, self._live, self.stream_name)
        # Size -> (time.monotonic(), JPEG), least recently used first.
        self._stills: OrderedDict[_Size, tuple[float, bytes]] = OrderedDict()
        # Size -> the GetImages request in flight, shared by every requester.
        self._still_tasks: dict[_Size, asyncio.Task[bytes | None]] = {}
        # A still failing for another reason than KVS's answer: warned once.
        self._still_failing = False

    # -- live stream ------------------------------------------------------------

    @property
    def is_streaming(self) -> bool:
        """Streaming while a live stream has a viewer, as HA's own cameras say."""
        return self._live.watching

    def _async_live_changed(self) -> None:
        self.async_write_ha_state()

    async def stream_source(self) -> str | None:
        """This camera's local playlists of its LIVE HLS session (live_proxy).

        Only while KVS gives a session (none when the camera sent nothing for
        30 s). The session URL itself when the worker cannot come in to Home
        Assistant's server (see ``local_base_url``).
        """
        if (url := await self._live.async_url()) is None:
            return None
        self._live.local_source = self._proxy.url()
        return self._live.local_source or url

    async def async_added_to_hass(self) -> None:
        """Serve the local playlists."""
        await super().async_added_to_hass()
        self.async_on_remove(self._proxy.async_register())

    async def async_create_stream(self) -> Stream | None:
        """Create the stream (or reuse it, with a fresh URL) and watch its URL."""
        existing = self.stream
        stream = await super().async_create_stream()
        if stream is not None:
            await self._live.async_attach(stream, reused=stream is existing)
        return stream

    async def async_will_remove_from_hass(self) -> None:
        """Stop the refresh timer and the session check."""
        await super().async_will_remove_from_hass()
        self._live.async_stop()

    # -- stills -----------------------------------------------------------------

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes:
        """The running stream's keyframe, else a (briefly cached) GetImages still.

        Without either (nor a last good still), the "No image" placeholder: a
        JPEG like the others (the camera's default content type), not a 500.
        """
        # 0 (the more-info dialog asks height=0) means "keep the aspect ratio":
        # GetImages then scales the side not given (its minimum is 1 pixel).
        size: _Size = (
            min(width, MAX_STILL_WIDTH) if width and width > 0 else None,
            min(height, MAX_STILL_HEIGHT) if height and height > 0 else None,
        )
        # Only from a stream someone watches: asking an idle one for an image
        # would start its worker, i.e. pull live video, at every refresh.
        if self.stream is not None and self._live.watching and self.stream.available:
            image = await self.stream.async_get_image(*size)
            if image:
                return image
        cached = self._stills.get(size)
        if cached is not None:
            self._stills.move_to_end(size)
            if time.monotonic() - cached[0] < STILL_CACHE_SECONDS:
                return cached[1]
        image = await shared_request(
            self.hass,
            self._still_tasks,
            size,
            partial(self._async_fetch_still, size),
            f"{self.entity_id} still",
        )
        if image is not None:
            return image
        if cached is not None:
            return cached[1]  # the last good one, rather than none
        return await self.hass.async_add_executor_job(_no_image)

    async def _async_fetch_still(self, size: _Size) -> bytes | None:
        """GetImages at ``size`` into the cache (least recently used size out)."""
        try:
            image = await self._client.latest_image(
                self.stream_arn, width=size[0], height=size[1]
            )
        except KinesisVideoError as err:
            self._still_failed(err)
            return None
        except Exception:  # a still is "no image", never an error page
            self._still_failed("unexpected error", exc_info=True)
            return None
        if self._still_failing:
            self._still_failing = False
            _LOGGER.info("Stills of %s work again", self.stream_name)
        if image is not None:
            self._stills[size] = (time.monotonic(), image)
            self._stills.move_to_end(size)
            while len(self._stills) > STILL_CACHE_SIZES:
                self._stills.popitem(last=False)
        return image

    def _still_failed(self, reason: object, *, exc_info: bool = False) -> None:
        """Warn of the first failure in a row, then only debug."""
        level = logging.DEBUG if self._still_failing else logging.WARNING
        self._still_failing = True
        _LOGGER.log(
            level, "No still of %s: %s", self.stream_name, reason, exc_info=exc_info
        )
