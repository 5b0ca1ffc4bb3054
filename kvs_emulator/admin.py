"""The unsigned admin API under ``/_emulator``: clock, streams, faults, call log.

Tests and the demo drive the emulator through it; nothing in AWS has it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from .emulator import EMULATOR_KEY, Emulator, StreamSpec
from .errors import KvsError, invalid_argument
from .faults import Fault

routes = web.RouteTableDef()


def _epoch_ms(value: Any) -> int:
    """Accept epoch seconds or an ISO 8601 string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 1000)
    if isinstance(value, str):
        try:
            return round(datetime.fromisoformat(value).timestamp() * 1000)
        except ValueError as err:
            raise invalid_argument(f"Not a time: {value!r}") from err
    raise invalid_argument(f"Not a time: {value!r}")


def state(emulator: Emulator) -> dict[str, Any]:
    """What ``GET /_emulator/state`` answers."""
    now_ms = emulator.clock.now_ms()
    streams = []
    for stream in emulator.streams:
        latest = stream.latest_fragment(now_ms)
        streams.append(
            {
                **stream.info(),
                "online": stream.online,
                "gaps": stream.gaps,
                "producer_offset_ms": stream.producer_offset_ms,
                "history_start": stream.history_start_ms / 1000,
                "latest_fragment": None
                if latest is None
                else {"number": latest.number, "server": latest.server_ms / 1000},
            }
        )
    return {
        "base_url": emulator.base_url,
        "now": now_ms / 1000,
        "clock_frozen": emulator.clock.frozen,
        "tps_limits": emulator.faults.tps_limits,
        "endpoint_generation": emulator.endpoint_generation,
        "fragment_ms": emulator.config.media.fragment_ms,
        "frames_per_cycle": emulator.pool.frames_per_fragment
        * emulator.config.media.pool_size,
        "fps": emulator.config.media.fps,
        "width": emulator.config.media.width,
        "height": emulator.config.media.height,
        "sessions": len(emulator.sessions),
        "streams": streams,
    }


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object a request carries ({} without a body)."""
    if not request.can_read_body:
        return {}
    data = json.loads(await request.read() or b"{}")
    if not isinstance(data, dict):
        raise invalid_argument("Body must be a JSON object.")
    return data


@routes.get("/_emulator/health")
async def health(request: web.Request) -> web.Response:
    """Liveness."""
    return web.json_response({"status": "ok"})


@routes.get("/_emulator/state")
async def get_state(request: web.Request) -> web.Response:
    """Clock, media settings and streams."""
    return web.json_response(state(request.app[EMULATOR_KEY]))


@routes.post("/_emulator/reset")
async def reset(request: web.Request) -> web.Response:
    """Back to the start-up state."""
    emulator = request.app[EMULATOR_KEY]
    emulator.reset()
    return web.json_response(state(emulator))


@routes.post("/_emulator/clock")
async def clock(request: web.Request) -> web.Response:
    """Set, freeze, advance or release the clock."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    if "set" in body:
        emulator.clock.set(_epoch_ms(body["set"]), frozen=body.get("freeze"))
    elif "freeze" in body:
        emulator.clock.freeze(bool(body["freeze"]))
    if "advance" in body:
        emulator.clock.advance(round(float(body["advance"]) * 1000))
    if body.get("real"):
        emulator.clock.reset()
    return web.json_response(
        {"now": emulator.clock.now_ms() / 1000, "frozen": emulator.clock.frozen}
    )


@routes.post("/_emulator/streams")
async def create_stream(request: web.Request) -> web.Response:
    """Add a stream with media."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    spec = StreamSpec(
        name=str(body["name"]),
        history_ms=round(float(body.get("history", 0)) * 1000),
        retention_hours=int(body.get("retention_hours", 24)),
        producing=bool(body.get("producing", True)),
        producer_offset_ms=int(body.get("producer_offset_ms", 0)),
        media_type=str(body.get("media_type", "video/h264")),
    )
    stream = emulator.create_stream(spec, emulator.clock.now_ms())
    return web.json_response(stream.info())


@routes.post("/_emulator/streams/{name}")
async def change_stream(request: web.Request) -> web.Response:
    """Change a stream: online/offline, gaps, status, retention, clock offset."""
    emulator = request.app[EMULATOR_KEY]
    stream = emulator.streams.get(request.match_info["name"])
    body = await body_of(request)
    now_ms = emulator.clock.now_ms()
    if body.get("online") is True:
        stream.go_online(now_ms)
    elif body.get("online") is False:
        stream.go_offline(now_ms)
    for gap in body.get("gaps", []):
        stream.add_gap(_epoch_ms(gap[0]), _epoch_ms(gap[1]))
    if "status" in body:
        stream.status = str(body["status"])
    if "retention_hours" in body:
        stream.retention_hours = int(body["retention_hours"])
    if "producer_offset_ms" in body:
        stream.producer_offset_ms = int(body["producer_offset_ms"])
    if "media_type" in body:
        stream.media_type = str(body["media_type"])
    return web.json_response(stream.info())


@routes.post("/_emulator/faults")
async def add_fault(request: web.Request) -> web.Response:
    """Fail, slow down or cut the next calls."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    try:
        rule = Fault(**body)
    except TypeError as err:
        raise invalid_argument(str(err)) from err
    emulator.faults.add(rule)
    return web.json_response({"rules": len(emulator.faults.rules)})


@routes.delete("/_emulator/faults")
async def clear_faults(request: web.Request) -> web.Response:
    """Drop every fault rule."""
    request.app[EMULATOR_KEY].faults.rules.clear()
    return web.json_response({"rules": 0})


@routes.post("/_emulator/config")
async def config(request: web.Request) -> web.Response:
    """Rate limits on/off; the signing-time skew allowed."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    if "tps_limits" in body:
        emulator.faults.tps_limits = bool(body["tps_limits"])
    if "max_skew_s" in body:
        # Tests that freeze the client's clock sign with an old time.
        emulator.max_skew_s = int(body["max_skew_s"])
    return web.json_response(
        {
            "tps_limits": emulator.faults.tps_limits,
            "max_skew_s": emulator.max_skew_s,
        }
    )


@routes.post("/_emulator/sessions/expire")
async def expire_sessions(request: web.Request) -> web.Response:
    """Expire session URLs now (all, or all but the newest N)."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    count = emulator.sessions.expire(
        body.get("stream"),
        emulator.clock.now_ms(),
        keep_newest=int(body.get("keep_newest", 0)),
    )
    return web.json_response({"expired": count})


@routes.post("/_emulator/endpoints/rotate")
async def rotate_endpoints(request: web.Request) -> web.Response:
    """Move the data endpoint."""
    emulator = request.app[EMULATOR_KEY]
    emulator.endpoint_generation += 1
    return web.json_response({"data_endpoint": emulator.data_endpoint()})


@routes.post("/_emulator/credentials")
async def credentials(request: web.Request) -> web.Response:
    """Add a key pair, remove one, or deny it (NotAuthorizedException)."""
    emulator = request.app[EMULATOR_KEY]
    body = await body_of(request)
    key = str(body["access_key"])
    if body.get("remove"):
        emulator.credentials.pop(key, None)
    elif "secret_key" in body:
        emulator.credentials[key] = str(body["secret_key"])
    if "denied" in body:
        # true = every operation; a list = just those; false = none.
        denied = body["denied"]
        if denied is True:
            emulator.denied[key] = {"*"}
        elif denied:
            emulator.denied[key] = {str(op) for op in denied}
        else:
            emulator.denied.pop(key, None)
    return web.json_response({"keys": sorted(emulator.credentials)})


@routes.get("/_emulator/calls")
async def calls(request: web.Request) -> web.Response:
    """The call log and counts per operation."""
    return web.json_response(
        request.app[EMULATOR_KEY].faults.calls_json(
            int(request.query.get("since", "0"))
        )
    )


@routes.delete("/_emulator/calls")
async def clear_calls(request: web.Request) -> web.Response:
    """Forget the call log."""
    request.app[EMULATOR_KEY].faults.calls.clear()
    return web.json_response({"total": 0})


@web.middleware
async def admin_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Admin mistakes answer JSON 400s, not tracebacks."""
    try:
        response: web.StreamResponse = await handler(request)
    except KvsError as error:
        return web.json_response(
            {"code": error.code, "message": error.message}, status=error.status
        )
    except (KeyError, ValueError, TypeError) as err:
        if not request.path.startswith("/_emulator"):
            raise
        return web.json_response(
            {"code": "InvalidArgumentException", "message": repr(err)}, status=400
        )
    return response


def add_routes(app: web.Application) -> None:
    """Register ``/_emulator/...`` (the emulator is ``app[EMULATOR_KEY]``)."""
    app.middlewares.append(admin_errors)
    app.add_routes(routes)
