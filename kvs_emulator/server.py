"""The emulator's state and its aiohttp application.

One base URL serves the control plane (``/createStream``...), the archived-media
data plane (``/getClip``...), the playback URLs that sessions hand out
(``/hls/v1/...``, ``/dash/v1/...``) and an unsigned admin API for tests and demos
(``/_emulator/...``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from aiohttp import web

from . import admin, api, playback
from .api import Payload
from .clock import Clock
from .errors import KvsError
from .faults import CallRecord, FaultPlan, Faults
from .media import MediaConfig, MediaPool
from .sessions import SessionRegistry
from .sigv4 import SigV4Failure, verify_request
from .streams import StreamRegistry

_LOGGER = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY: Final = "AKIAKVSEMULATOR00001"
DEFAULT_SECRET_KEY: Final = "kvs-emulator-secret-access-key-do-not-use"  # noqa: S105
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "123456789012"

# How far a request's signing time may be from ours, as AWS allows.
DEFAULT_MAX_SKEW_S: Final = 15 * 60

# Payload writes are batched to about this size: fewer syscalls, flat memory.
WRITE_CHUNK: Final = 256 * 1024


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

    def create_stream(self, spec: StreamSpec, now_ms: int) -> Any:
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


def error_response(error: KvsError) -> web.Response:
    """An error exactly as AWS sends it, so botocore raises the same ClientError."""
    return web.Response(
        status=error.status,
        headers={
            "x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/"
            "com.amazon.kinesis.video.v20170930/",
            "x-amzn-RequestId": "00000000-0000-4000-8000-000000000000",
        },
        content_type="application/json",
        text=json.dumps({"message": error.message}),
    )


def unknown_operation_response() -> web.Response:
    """What AWS answers on the wrong endpoint: an error inside an HTTP 200."""
    return web.Response(
        status=200,
        headers={"x-amzn-ErrorType": "UnknownOperationException"},
        content_type="application/json",
        text=json.dumps(
            {
                "Output": {
                    "__type": "com.amazon.coral.service#UnknownOperationException"
                },
                "Version": "1.0",
            }
        ),
    )


async def write_payload(
    request: web.Request, payload: Payload, cut_after: int | None
) -> web.StreamResponse:
    """Stream ``payload`` in batched writes; drop the connection if told to."""
    response = web.StreamResponse(headers={"Content-Type": payload.content_type})
    if payload.length is not None:
        response.content_length = payload.length
    await response.prepare(request)
    sent = 0
    buffer: list[bytes] = []
    buffered = 0
    for chunk in payload.chunks:
        if cut_after is not None and sent + buffered + len(chunk) > cut_after:
            buffer.append(chunk[: cut_after - sent - buffered])
            await response.write(b"".join(buffer))
            # Abort the TCP connection: the client sees a short body.
            if request.transport is not None:
                request.transport.abort()
            return response
        buffer.append(chunk)
        buffered += len(chunk)
        if buffered >= WRITE_CHUNK:
            await response.write(b"".join(buffer))
            sent += buffered
            buffer, buffered = [], 0
    if buffer:
        await response.write(b"".join(buffer))
    await response.write_eof()
    return response


def _stream_of(body: dict[str, Any]) -> str | None:
    name = body.get("StreamName")
    if isinstance(name, str):
        return name
    arn = body.get("StreamARN")
    if isinstance(arn, str):
        return arn.rsplit("/", 2)[-2] if arn.count("/") >= 2 else arn
    return None


def make_app(emulator: Emulator) -> web.Application:
    """The aiohttp application serving every route on one base URL."""
    app = web.Application(client_max_size=16 * 1024 * 1024)

    async def handle_api(request: web.Request) -> web.StreamResponse:
        prefix = request.match_info.get("prefix", "")
        op_path = request.match_info["op"]
        entry = api.OPERATIONS.get(op_path)
        if entry is None:
            return unknown_operation_response()
        operation, handler, data_plane = entry
        body_bytes = await request.read()
        try:
            verify_request(
                method=request.method,
                raw_path=request.raw_path.split("?", 1)[0],
                raw_query=request.query_string,
                headers=request.headers,
                body=body_bytes,
                credentials=emulator.credentials,
                now=None,
                max_skew=timedelta(seconds=emulator.max_skew_s),
            )
        except SigV4Failure as failure:
            emulator.record(operation, None, failure.status, failure.code)
            return error_response(
                KvsError(failure.code, failure.message, failure.status)
            )
        expected_prefix = (
            f"ep{emulator.endpoint_generation}"
            if data_plane and emulator.endpoint_generation
            else ""
        )
        if prefix != expected_prefix:
            emulator.record(operation, None, 200, "UnknownOperationException")
            return unknown_operation_response()
        stream_name: str | None = None
        try:
            body = json.loads(body_bytes or b"{}")
            if not isinstance(body, dict):
                raise KvsError("SerializationException", "Body must be an object.")
            stream_name = _stream_of(body)
            access_key = _access_key(request)
            if {"*", operation} & emulator.denied.get(access_key, set()):
                raise KvsError(
                    "NotAuthorizedException",
                    f"User {access_key} is not authorized to perform"
                    f" kinesisvideo:{operation}.",
                )
            plan: FaultPlan = emulator.faults.plan(operation, stream_name)
            if plan.latency_s:
                await asyncio.sleep(plan.latency_s)
            if plan.error:
                raise plan.error
            result = await handler(emulator, body)
        except json.JSONDecodeError:
            error = KvsError("SerializationException", "Malformed JSON body.")
            emulator.record(operation, stream_name, error.status, error.code)
            return error_response(error)
        except KvsError as error:
            emulator.record(operation, stream_name, error.status, error.code)
            return error_response(error)
        emulator.record(operation, stream_name, 200, None)
        if isinstance(result, Payload):
            return await write_payload(request, result, plan.cut_after_bytes)
        return web.json_response(result)

    app.router.add_post("/{op}", handle_api)
    app.router.add_post("/{prefix:ep[0-9]+}/{op}", handle_api)
    playback.add_routes(app, emulator)
    admin.add_routes(app, emulator)
    return app


def _access_key(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    marker = "Credential="
    if marker in auth:
        return auth.split(marker, 1)[1].split("/", 1)[0]
    return request.query.get("X-Amz-Credential", "").split("/", 1)[0]


async def start_server(
    emulator: Emulator, host: str, port: int
) -> tuple[web.AppRunner, str]:
    """Bind and serve; return the runner and the base URL (port 0 = any)."""
    runner = web.AppRunner(make_app(emulator), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    bound_port = server.sockets[0].getsockname()[1]
    emulator.base_url = f"http://{host}:{bound_port}"
    return runner, emulator.base_url
