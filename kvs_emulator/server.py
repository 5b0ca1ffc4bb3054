"""The emulator's aiohttp application (its state is in ``emulator``).

One base URL serves the control plane (``/createStream``...), the archived-media
data plane (``/getClip``...), the playback URLs that sessions hand out
(``/hls/v1/...``, ``/dash/v1/...``) and an unsigned admin API for tests and demos
(``/_emulator/...``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any, Final

from aiohttp import web

from . import admin, playback
from .api import OPERATIONS, Payload
from .emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT,
    DEFAULT_MAX_SKEW_S,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    EMULATOR_KEY,
    Emulator,
    EmulatorConfig,
    StreamSpec,
)
from .errors import KvsError, error_response, unknown_operation_response
from .faults import FaultPlan
from .sigv4 import SigV4Failure, verify_request

# The state types live in ``emulator``; these names stay importable from here.
__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_ACCOUNT",
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "EMULATOR_KEY",
    "WRITE_CHUNK",
    "Emulator",
    "EmulatorConfig",
    "StreamSpec",
    "error_response",
    "make_app",
    "start_server",
    "unknown_operation_response",
    "write_payload",
]

# Payload writes are batched to about this size: fewer syscalls, flat memory.
WRITE_CHUNK: Final = 256 * 1024


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


async def handle_api(request: web.Request) -> web.StreamResponse:
    """One JSON operation: signature, endpoint, IAM denial, faults, then the call."""
    emulator = request.app[EMULATOR_KEY]
    prefix = request.match_info.get("prefix", "")
    op_path = request.match_info["op"]
    entry = OPERATIONS.get(op_path)
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
        return error_response(KvsError(failure.code, failure.message, failure.status))
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


def make_app(emulator: Emulator) -> web.Application:
    """The aiohttp application serving every route on one base URL."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app.router.add_post("/{op}", handle_api)
    app.router.add_post("/{prefix:ep[0-9]+}/{op}", handle_api)
    playback.add_routes(app)
    admin.add_routes(app)
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
