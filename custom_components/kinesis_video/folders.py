"""Where the integration's files live: shared by the actions and the media browser."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from homeassistant.core import HomeAssistant

# The folder (under a media dir) the actions save into by default, per stream.
MEDIA_FOLDER: Final = "kinesis_video"
# Caches (thumbnails, listings) under the config folder: not served, not media.
CACHE_FOLDER: Final = "kinesis_video"


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


def cache_folder(hass: HomeAssistant, name: str) -> Path:
    """A cache folder of the integration under the config folder."""
    return Path(hass.config.path(CACHE_FOLDER, name))
