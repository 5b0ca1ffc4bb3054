"""An entry's playback options, read once when the entry is set up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry

from .const import (
    CONF_HLS_CONTAINER,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    DEFAULT_HLS_CONTAINER,
    DEFAULT_TIMESTAMP_TYPE,
    DEFAULT_URL_LIFETIME,
)
from .kvs import ContainerFormat, TimestampType


@dataclass(frozen=True, slots=True)
class EntryOptions:
    """How the entry plays and reads its streams.

    Changing these in the options flow reloads the entry, so they are read
    once at setup. The streams shown are not here: the status poll and the
    repairs change them while the entry runs.
    """

    hls_container: ContainerFormat = DEFAULT_HLS_CONTAINER
    url_lifetime: int = DEFAULT_URL_LIFETIME
    timestamp_type: TimestampType = DEFAULT_TIMESTAMP_TYPE

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EntryOptions:
        """The options stored in a config entry, with defaults for missing ones."""
        return cls(
            hls_container=options.get(CONF_HLS_CONTAINER, DEFAULT_HLS_CONTAINER),
            url_lifetime=int(options.get(CONF_URL_LIFETIME, DEFAULT_URL_LIFETIME)),
            timestamp_type=options.get(CONF_TIMESTAMP_TYPE, DEFAULT_TIMESTAMP_TYPE),
        )

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any]) -> EntryOptions:
        """The entry's options."""
        return cls.from_options(entry.options)
