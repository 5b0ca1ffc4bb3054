"""What session URLs point at: HLS playlists, DASH manifests, media segments.

These requests carry no SigV4 signature; the session token in the query string
is the credential, and an expired or revoked token is answered with 403. Players
in web pages (hls.js, dash.js) fetch them from another origin, so they answer
CORS requests and preflights, errors included.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import quoteattr

from aiohttp import web

from .emulator import EMULATOR_KEY, Emulator
from .errors import KvsError, error_response, not_found
from .sessions import Session
from .streams import Fragment, Stream

TRACK: Final = "TrackNumber=1"

# No cookies are involved (the token is in the URL), so any origin may read.
CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "Content-Length, Content-Type, x-amzn-ErrorType, x-amzn-RequestId"
    ),
}
PREFLIGHT_MAX_AGE_S: Final = 3600


def _iso(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")
    ).replace("+00:00", "Z")


def _duration(ms: int) -> str:
    return f"PT{ms / 1000:.3f}S"


def session_window(
    emulator: Emulator, session: Session, stream: Stream
) -> tuple[list[Fragment], bool]:
    """The fragments a playlist or manifest lists now, and whether it has ended."""
    now_ms = emulator.clock.now_ms()
    limit = session.max_results
    if session.mode == "ON_DEMAND":
        window: list[Fragment] = []
        for fragment in stream.fragments(
            now_ms, session.kind, session.start_ms, session.end_ms
        ):
            window.append(fragment)
            if len(window) >= limit:
                break
        return window, True
    if session.mode == "LIVE":
        newest = stream.latest_fragment(now_ms)
        if newest is None:
            return [], False
        found: list[Fragment] = []
        index = newest.index
        # Walk back over existing fragments; a long gap ends the walk early.
        while len(found) < limit and index >= newest.index - limit * 50:
            if stream.exists(index, now_ms):
                found.append(stream.fragment(index))
            index -= 1
        return found[::-1], False
    # LIVE_REPLAY: a playhead that moves from StartTimestamp at real speed.
    assert session.start_ms is not None
    playhead = session.start_ms + (now_ms - session.created_ms)
    upper = playhead if session.end_ms is None else min(playhead, session.end_ms)
    lower = max(session.start_ms, upper - limit * stream.fragment_ms * 4)
    window = list(stream.fragments(now_ms, session.kind, lower, upper))[-limit:]
    ended = session.end_ms is not None and playhead >= session.end_ms
    return window, ended


def master_playlist(emulator: Emulator, session: Session) -> str:
    """One variant pointing at the media playlist of track 1."""
    media = emulator.pool.config
    avcc = emulator.pool.codec_private
    codec = f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"
    average = sum(emulator.sizes) / len(emulator.sizes)
    bandwidth = int(average * 8 * 1000 / media.fragment_ms)
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codec}",'
        f"RESOLUTION={media.width}x{media.height},FRAME-RATE={media.fps:.3f}\n"
        f"getHLSMediaPlaylist.m3u8?SessionToken={session.token}&{TRACK}\n"
    )


def media_playlist(emulator: Emulator, session: Session, stream: Stream) -> str:
    """The media playlist: LIVE sliding window, LIVE_REPLAY, or ON_DEMAND."""
    window, ended = session_window(emulator, session, stream)
    fmp4 = session.container == "FRAGMENTED_MP4"
    target = math.ceil(
        max((f.duration_ms for f in window), default=stream.fragment_ms) / 1000
    )
    sequence = stream.sequence_of(window[0].index) if window else 0
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{7 if fmp4 else 3}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{sequence}",
    ]
    if session.discontinuity == "ALWAYS":
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{sequence}")
    elif session.discontinuity == "ON_DISCONTINUITY" and window:
        lines.append(
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{stream.gaps_before(window[0].index)}"
        )
    if session.mode == "ON_DEMAND":
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    if fmp4:
        lines.append(
            f'#EXT-X-MAP:URI="getMP4InitFragment.mp4?SessionToken={session.token}&{TRACK}"'
        )
    previous: Fragment | None = None
    for fragment in window:
        if session.discontinuity == "ALWAYS" or (
            session.discontinuity == "ON_DISCONTINUITY"
            and previous is not None
            and fragment.index != previous.index + 1
        ):
            lines.append("#EXT-X-DISCONTINUITY")
        if session.display_timestamp == "ALWAYS":
            lines.append(
                f"#EXT-X-PROGRAM-DATE-TIME:{_iso(fragment.start_ms(session.kind))}"
            )
        lines.append(f"#EXTINF:{fragment.duration_ms / 1000:.3f},")
        segment = "getMP4MediaFragment.mp4" if fmp4 else "getTSFragment.ts"
        lines.append(
            f"{segment}?FragmentNumber={fragment.number}"
            f"&SessionToken={session.token}&{TRACK}"
        )
        previous = fragment
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def dash_manifest(emulator: Emulator, session: Session, stream: Stream) -> str:
    """An MPD with an explicit SegmentList (KVS fragment numbers are not $Number$)."""
    window, ended = session_window(emulator, session, stream)
    media = emulator.pool.config
    avcc = emulator.pool.codec_private
    codec = f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"
    static = session.mode == "ON_DEMAND" or ended
    token = session.token
    total_ms = sum(f.duration_ms for f in window)
    # S@t is media time, the segments' tfdt (producer epoch ms). A static MPD
    # starts its period at the first segment; a dynamic one anchors the period at
    # the epoch, so a segment keeps its period time across manifest updates and
    # becomes available (availabilityStartTime + t + d) when its fragment ends.
    origin = window[0].producer_ms if static and window else 0
    timeline = "".join(f'<S t="{f.producer_ms}" d="{f.duration_ms}"/>' for f in window)
    segments = "".join(
        "<SegmentURL media="
        + quoteattr(
            f"getMP4MediaFragment.mp4?FragmentNumber={f.number}&{TRACK}&SessionToken={token}"
        )
        + "/>"
        for f in window
    )
    now_iso = _iso(emulator.clock.now_ms())
    if static:
        head = f'type="static" mediaPresentationDuration="{_duration(total_ms)}"'
    else:
        head = (
            f'type="dynamic" availabilityStartTime="{_iso(origin)}"'
            f' publishTime="{now_iso}"'
            f' minimumUpdatePeriod="{_duration(media.fragment_ms)}"'
            f' timeShiftBufferDepth="{_duration(total_ms)}"'
        )
    init = quoteattr(f"getMP4InitFragment.mp4?{TRACK}&SessionToken={token}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'{head} minBufferTime="PT{media.fragment_ms / 1000:.0f}S">'
        '<Period id="0" start="PT0S">'
        '<AdaptationSet mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">'
        f'<Representation id="1" codecs="{codec}" width="{media.width}"'
        f' height="{media.height}" frameRate="{media.fps}" bandwidth="500000">'
        f'<SegmentList timescale="1000" presentationTimeOffset="{origin}">'
        f"<Initialization sourceURL={init}/>"
        f"<SegmentTimeline>{timeline}</SegmentTimeline>{segments}</SegmentList>"
        "</Representation></AdaptationSet></Period></MPD>\n"
    )


# URL path -> the operation it answers (and logs as).
ROUTES: Final = {
    "/hls/v1/getHLSMasterPlaylist.m3u8": "GetHLSMasterPlaylist",
    "/hls/v1/getHLSMediaPlaylist.m3u8": "GetHLSMediaPlaylist",
    "/hls/v1/getMP4InitFragment.mp4": "GetMP4InitFragment",
    "/hls/v1/getMP4MediaFragment.mp4": "GetMP4MediaFragment",
    "/hls/v1/getTSFragment.ts": "GetTSFragment",
    "/dash/v1/getDASHManifest.mpd": "GetDASHManifest",
    "/dash/v1/getMP4InitFragment.mp4": "GetMP4InitFragment",
    "/dash/v1/getMP4MediaFragment.mp4": "GetMP4MediaFragment",
}


async def serve(request: web.Request) -> web.StreamResponse:
    """A playlist, manifest or segment of the session in the query string."""
    emulator = request.app[EMULATOR_KEY]
    operation = ROUTES[request.path]
    session: Session | None = None
    try:
        session = emulator.sessions.get(
            request.query.get("SessionToken"), emulator.clock.now_ms()
        )
        plan = emulator.faults.plan(operation, session.stream_name)
        if plan.latency_s:
            await asyncio.sleep(plan.latency_s)
        if plan.error:
            raise plan.error
        try:
            stream = emulator.streams.get(arn=session.stream_arn)
        except KvsError as err:
            raise not_found("The stream of this session no longer exists.") from err
        response = await _answer(emulator, request, operation, session, stream)
    except KvsError as error:
        emulator.record(
            operation,
            session.stream_name if session else None,
            error.status,
            error.code,
        )
        response = error_response(error)
        response.headers.update(CORS_HEADERS)
        return response
    emulator.record(operation, stream.name, 200, None)
    response.headers.update(CORS_HEADERS)
    return response


async def preflight(request: web.Request) -> web.Response:
    """Answer a browser's CORS preflight (no session check, nothing logged)."""
    headers = {
        **CORS_HEADERS,
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        "Vary": "Access-Control-Request-Headers",
    }
    # Whatever the player wants to send (Range, mostly) is fine.
    if requested := request.headers.get("Access-Control-Request-Headers"):
        headers["Access-Control-Allow-Headers"] = requested
    return web.Response(status=204, headers=headers)


async def _answer(
    emulator: Emulator,
    request: web.Request,
    operation: str,
    session: Session,
    stream: Stream,
) -> web.Response:
    pool = emulator.pool
    if operation == "GetHLSMasterPlaylist":
        return _text(master_playlist(emulator, session), "application/x-mpegURL")
    if operation == "GetHLSMediaPlaylist":
        return _text(media_playlist(emulator, session, stream), "application/x-mpegURL")
    if operation == "GetDASHManifest":
        return _text(dash_manifest(emulator, session, stream), "application/dash+xml")
    if operation == "GetMP4InitFragment":
        return web.Response(body=pool.init_segment, content_type="video/mp4")
    number = request.query.get("FragmentNumber", "")
    index = stream.index_of_number(number)
    if index is None or not stream.exists(index, emulator.clock.now_ms()):
        raise not_found(f"Fragment {number} was not found.")
    fragment = stream.fragment(index)
    pool_index = pool.pool_index(fragment.producer_ms)
    if operation == "GetTSFragment":
        data = await asyncio.get_running_loop().run_in_executor(
            None, pool.ts_segment, pool_index, fragment.producer_ms
        )
        return web.Response(body=data, content_type="video/mp2t")
    data = pool.mp4_fragment(
        pool_index, stream.sequence_of(index) + 1, fragment.producer_ms
    )
    return web.Response(body=data, content_type="video/mp4")


def add_routes(app: web.Application) -> None:
    """Register the playback endpoints (the emulator is ``app[EMULATOR_KEY]``)."""
    for path in ROUTES:
        app.router.add_get(path, serve)
        app.router.add_route("OPTIONS", path, preflight)


def _text(text: str, content_type: str) -> web.Response:
    return web.Response(text=text, content_type=content_type)
