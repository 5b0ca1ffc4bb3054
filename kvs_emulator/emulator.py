"""The emulator's state: configuration, streams, clock, sessions, faults.

The aiohttp application (``server``) and the route modules (``api``, ``admin``,
``playback``) all read one ``Emulator`` from ``app[EMULATOR_KEY]``; this module
imports none of them, so the package has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from .clock import Clock
from .faults import CallRecord, Faults
from .media import MediaConfig, MediaPool
from .sessions import SessionRegistry
from .streams import Stream, StreamRegistry

DEFAULT_ACCESS_KEY: Final = "AKIAKVSEMULATOR00001"
DEFAULT_SECRET_KEY: Final = "kvs-emulator-secret-access-key-do-not-use"  # noqa: S105
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "123456789012"

# How far a request's signing time may be from ours, as AWS allows.
DEFAULT_MAX_SKEW_S: Final = 15 * 60


@dataclass
class StreamSpec:
    """A stream to create at start-up (and again on reset)."""

    name: str
    history_ms: int = 2 * 3_600_000
    retention_hours: int = 24
    producing: bool = True
    producer_offset_ms: int = 0
    media_type: str = "video/h264"


@dataclass
class EmulatorConfig:
    """Everything the command line can set."""

    streams: list[StreamSpec] = field(default_factory=list)
    credentials: dict[str, str] = field(
        default_factory=lambda: {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
    )
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT
    media: MediaConfig = field(default_factory=MediaConfig)
    tps_limits: bool = True


class Emulator:
    """All mutable state; handlers read and change it on the event loop."""

    def __init__(self, config: EmulatorConfig, pool: MediaPool | None = None) -> None:
        """Build the media pool (blocking, a second or so) and the streams."""
        self.config = config
        self.pool = pool or MediaPool(config.media)
        self.clock = Clock()
        self.streams = StreamRegistry(
            region=config.region,
            account_id=config.account_id,
            fragment_ms=config.media.fragment_ms,
        )
        self.sessions = SessionRegistry()
        self.faults = Faults(tps_limits=config.tps_limits)
        self.credentials = dict(config.credentials)
        # Access key -> operations it may not call ("*" = all): IAM denials.
        self.denied: dict[str, set[str]] = {}
        self.endpoint_generation = 0
        self.max_skew_s = DEFAULT_MAX_SKEW_S
        self.base_url = ""
        self.sizes = tuple(
            self.pool.fragment_size(i) for i in range(config.media.pool_size)
        )
        self.reset()

    def reset(self) -> None:
        """Back to the start-up state: streams, clock, sessions, faults, log."""
        self.clock.reset()
        self.streams.clear()
        self.sessions.clear()
        self.faults.reset(tps_limits=self.config.tps_limits)
        self.credentials = dict(self.config.credentials)
        self.denied.clear()
        self.max_skew_s = DEFAULT_MAX_SKEW_S
        self.endpoint_generation = 0
        now_ms = self.clock.now_ms()
        for spec in self.config.streams:
            self.create_stream(spec, now_ms)

    def create_stream(self, spec: StreamSpec, now_ms: int) -> Stream:
        """Create a stream with media from a spec."""
        stream = self.streams.create(
            spec.name,
            now_ms=now_ms,
            history_ms=spec.history_ms,
            retention_hours=spec.retention_hours,
            media_type=spec.media_type,
            producing=spec.producing,
            sizes=self.sizes,
        )
        stream.producer_offset_ms = spec.producer_offset_ms
        return stream

    def data_endpoint(self) -> str:
        """What GetDataEndpoint answers now (moves when tests rotate it)."""
        if self.endpoint_generation == 0:
            return self.base_url
        return f"{self.base_url}/ep{self.endpoint_generation}"

    def record(
        self, operation: str, stream: str | None, status: int, error: str | None
    ) -> None:
        """Log one answered call."""
        self.faults.record(
            CallRecord(self.clock.now_ms(), operation, stream, status, error)
        )


# Where the application keeps its emulator; every handler reads it from there.
EMULATOR_KEY: Final = web.AppKey("emulator", Emulator)
