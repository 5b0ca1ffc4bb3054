"""The JSON operations: control plane and archived media, with KVS semantics."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from .emulator import Emulator
from .errors import KvsError, invalid_argument, not_found
from .sessions import Session, new_token
from .streams import TIMESTAMP_KINDS, Fragment, Stream, TimestampKind


@dataclass
class Payload:
    """A streamed response body, produced chunk by chunk (length if known)."""

    content_type: str
    chunks: Iterable[bytes]
    length: int | None = None


Handler = Callable[[Emulator, dict[str, Any]], Awaitable[dict[str, Any] | Payload]]

# Service limits (KVS developer guide).
MAX_RANGE_MS: Final = 24 * 3_600_000
CLIP_MAX_FRAGMENTS: Final = 200
CLIP_MAX_BYTES: Final = 100 * 1024 * 1024
IMAGES_MAX_RANGE_MS: Final = 300_000
IMAGES_MIN_INTERVAL_MS: Final = 200
IMAGES_PAGE: Final = 25
LIVE_FRESHNESS_MS: Final = 30_000
DATA_APIS: Final = (
    "PUT_MEDIA",
    "GET_MEDIA",
    "LIST_FRAGMENTS",
    "GET_MEDIA_FOR_FRAGMENT_LIST",
    "GET_HLS_STREAMING_SESSION_URL",
    "GET_DASH_STREAMING_SESSION_URL",
    "GET_CLIP",
    "GET_IMAGES",
)


# -- request helpers ------------------------------------------------------------


def _timestamp_ms(value: Any, field: str) -> int:
    """Rest-json timestamps arrive as epoch seconds (botocore sends floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KvsError("SerializationException", f"{field} must be a timestamp.")
    return round(value * 1000)


def _kind(value: Any, field: str = "FragmentSelectorType") -> TimestampKind:
    for kind in TIMESTAMP_KINDS:
        if value == kind:
            return kind
    raise invalid_argument(f"{field} must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP.")


def _enum(
    body: dict[str, Any], field: str, allowed: tuple[str, ...], default: str
) -> str:
    value = body.get(field, default)
    if value not in allowed:
        raise invalid_argument(f"{field} must be one of {', '.join(allowed)}.")
    return str(value)


def _int(
    body: dict[str, Any], field: str, default: int, low: int, high: int | None = None
) -> int:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise KvsError("SerializationException", f"{field} must be an integer.")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f">= {low}"
        raise invalid_argument(f"{field} must be {limit}.")
    return value


def _range(
    selector: dict[str, Any] | None, *, required: bool, strictly_later: bool = False
) -> tuple[int | None, int | None]:
    """The selector's range; GetClip and HLS/DASH want an end after the start."""
    timestamps = (selector or {}).get("TimestampRange")
    if timestamps is None:
        if required:
            raise invalid_argument("TimestampRange is required.")
        return None, None
    start = timestamps.get("StartTimestamp")
    end = timestamps.get("EndTimestamp")
    start_ms = None if start is None else _timestamp_ms(start, "StartTimestamp")
    end_ms = None if end is None else _timestamp_ms(end, "EndTimestamp")
    if required and (start_ms is None or end_ms is None):
        raise invalid_argument("StartTimestamp and EndTimestamp are required.")
    _check_span(start_ms, end_ms, strictly_later=strictly_later)
    return start_ms, end_ms


def _check_span(
    start_ms: int | None,
    end_ms: int | None,
    limit: int = MAX_RANGE_MS,
    *,
    strictly_later: bool = False,
) -> None:
    if start_ms is None or end_ms is None:
        return
    if end_ms < start_ms or (strictly_later and end_ms == start_ms):
        raise invalid_argument("EndTimestamp must be later than StartTimestamp.")
    if end_ms - start_ms > limit:
        raise invalid_argument(
            "The time range between StartTimestamp and EndTimestamp exceeds"
            f" {limit // 1000} seconds."
        )


def _stream(emulator: Emulator, body: dict[str, Any], operation: str) -> Stream:
    """Resolve StreamName/StreamARN, then meter the per-stream rate."""
    stream = emulator.streams.get(body.get("StreamName"), body.get("StreamARN"))
    emulator.faults.check_rate(operation, stream.name)
    return stream


def _archived(emulator: Emulator, body: dict[str, Any], operation: str) -> Stream:
    stream = _stream(emulator, body, operation)
    if stream.retention_hours == 0:
        raise KvsError(
            "NoDataRetentionException",
            f"The stream {stream.name} has no data retention; archived media is"
            " not available.",
        )
    return stream


def _token(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _untoken(token: Any) -> dict[str, Any]:
    try:
        value = json.loads(base64.b64decode(str(token), validate=True))
    except (ValueError, TypeError) as err:
        raise invalid_argument("NextToken is not valid.") from err
    if not isinstance(value, dict):
        raise invalid_argument("NextToken is not valid.")
    return value


# -- control plane --------------------------------------------------------------


async def create_stream(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """CreateStream: a stream that receives no media until its camera comes online."""
    name = body.get("StreamName")
    if not isinstance(name, str):
        raise invalid_argument("StreamName is required.")
    tags = body.get("Tags") or {}
    if len(tags) > 50:
        raise KvsError("TagsPerResourceExceededLimitException", "Too many tags.")
    stream = emulator.streams.create(
        name,
        now_ms=emulator.clock.now_ms(),
        retention_hours=_int(body, "DataRetentionInHours", 0, 0, 87600),
        media_type=str(body.get("MediaType") or "video/h264"),
        device_name=body.get("DeviceName"),
        producing=False,
        tags=tags,
        kms_key_id=body.get("KmsKeyId"),
        sizes=emulator.sizes,
    )
    return {"StreamARN": stream.arn}


async def describe_stream(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """DescribeStream by name or ARN."""
    stream = emulator.streams.get(body.get("StreamName"), body.get("StreamARN"))
    return {"StreamInfo": stream.info()}


async def list_streams(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """ListStreams with pagination and the BEGINS_WITH name condition."""
    limit = _int(body, "MaxResults", 10000, 1, 10000)
    condition = body.get("StreamNameCondition") or {}
    prefix = None
    if condition:
        if condition.get("ComparisonOperator", "BEGINS_WITH") != "BEGINS_WITH":
            raise invalid_argument("ComparisonOperator must be BEGINS_WITH.")
        prefix = condition.get("ComparisonValue")
    streams = emulator.streams.list(prefix)
    offset = (
        int(_untoken(body["NextToken"]).get("offset", 0))
        if body.get("NextToken")
        else 0
    )
    page = streams[offset : offset + limit]
    result: dict[str, Any] = {"StreamInfoList": [s.info() for s in page]}
    if offset + limit < len(streams):
        result["NextToken"] = _token({"offset": offset + limit})
    return result


async def delete_stream(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """DeleteStream by ARN, honouring CurrentVersion."""
    arn = body.get("StreamARN")
    if not isinstance(arn, str):
        raise invalid_argument("StreamARN is required.")
    stream = emulator.streams.get(arn=arn)
    version = body.get("CurrentVersion")
    if version is not None and version != stream.version:
        raise KvsError(
            "VersionMismatchException",
            f"The stream version {version} does not match {stream.version}.",
        )
    emulator.streams.delete(stream)
    return {}


async def get_data_endpoint(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """GetDataEndpoint: this server (or where tests moved the data plane)."""
    if body.get("APIName") not in DATA_APIS:
        raise invalid_argument(f"APIName must be one of {', '.join(DATA_APIS)}.")
    emulator.streams.get(body.get("StreamName"), body.get("StreamARN"))
    return {"DataEndpoint": emulator.data_endpoint()}


# -- streaming sessions ---------------------------------------------------------


def _new_session(
    emulator: Emulator, body: dict[str, Any], protocol: str, operation: str
) -> Session:
    stream = _archived(emulator, body, operation)
    if stream.media_type.split(",")[0].strip() not in ("video/h264", "video/h265"):
        raise KvsError(
            "UnsupportedStreamMediaTypeException",
            f"The media type {stream.media_type} is not supported for playback.",
        )
    selector_field = (
        "HLSFragmentSelector" if protocol == "HLS" else "DASHFragmentSelector"
    )
    selector = body.get(selector_field) or {}
    mode = _enum(body, "PlaybackMode", ("LIVE", "LIVE_REPLAY", "ON_DEMAND"), "LIVE")
    kind = _kind(selector.get("FragmentSelectorType", "SERVER_TIMESTAMP"))
    start_ms, end_ms = _range(
        selector, required=mode == "ON_DEMAND", strictly_later=True
    )
    now_ms = emulator.clock.now_ms()
    if mode == "LIVE" and (start_ms is not None or end_ms is not None):
        raise invalid_argument("TimestampRange must not be set in LIVE mode.")
    if mode == "LIVE_REPLAY" and start_ms is None:
        raise invalid_argument("StartTimestamp is required in LIVE_REPLAY mode.")
    if mode == "LIVE":
        latest = stream.latest_fragment(now_ms)
        if (
            latest is None
            or latest.server_ms + latest.duration_ms < now_ms - LIVE_FRESHNESS_MS
        ):
            raise not_found(
                "No fragments found in the stream for the streaming request."
            )
    elif next(stream.fragments(now_ms, kind, start_ms, end_ms), None) is None:
        raise not_found("No fragments found in the stream for the streaming request.")
    results_field = (
        "MaxMediaPlaylistFragmentResults"
        if protocol == "HLS"
        else "MaxManifestFragmentResults"
    )
    max_results = _int(body, results_field, 1000 if mode == "ON_DEMAND" else 5, 1, 5000)
    expires_s = _int(body, "Expires", 300, 300, 43200)
    session = Session(
        token=new_token(),
        protocol="HLS" if protocol == "HLS" else "DASH",
        stream_name=stream.name,
        stream_arn=stream.arn,
        mode=mode,  # type: ignore[arg-type]
        kind=kind,
        start_ms=start_ms,
        end_ms=end_ms,
        created_ms=now_ms,
        expires_ms=now_ms + expires_s * 1000,
        max_results=max_results,
        container=_enum(
            body, "ContainerFormat", ("FRAGMENTED_MP4", "MPEG_TS"), "FRAGMENTED_MP4"
        ),
        discontinuity=_enum(
            body,
            "DiscontinuityMode",
            ("ALWAYS", "NEVER", "ON_DISCONTINUITY"),
            "ALWAYS" if kind == "SERVER_TIMESTAMP" else "NEVER",
        ),
        display_timestamp=_enum(
            body, "DisplayFragmentTimestamp", ("ALWAYS", "NEVER"), "NEVER"
        ),
        display_fragment_number=_enum(
            body, "DisplayFragmentNumber", ("ALWAYS", "NEVER"), "NEVER"
        ),
    )
    return emulator.sessions.create(session, now_ms)


async def get_hls_url(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """GetHLSStreamingSessionURL."""
    session = _new_session(emulator, body, "HLS", "GetHLSStreamingSessionURL")
    return {
        "HLSStreamingSessionURL": f"{emulator.base_url}/hls/v1/"
        f"getHLSMasterPlaylist.m3u8?SessionToken={session.token}"
    }


async def get_dash_url(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """GetDASHStreamingSessionURL."""
    session = _new_session(emulator, body, "DASH", "GetDASHStreamingSessionURL")
    return {
        "DASHStreamingSessionURL": f"{emulator.base_url}/dash/v1/"
        f"getDASHManifest.mpd?SessionToken={session.token}"
    }


# -- archive --------------------------------------------------------------------


def _listing_state(
    stream: Stream, selector: Any, token: Any, now_ms: int
) -> dict[str, Any]:
    """The query a ListFragments call continues, or a new one.

    AWS lets a call carry only NextToken, so the token holds the whole query:
    stream, timestamp type, range, the time of the first page (a growing stream
    must not shift the pages), the shuffle seed and the position.
    """
    query: dict[str, Any] | None = None
    if selector is not None:
        if not isinstance(selector, dict):
            raise KvsError("SerializationException", "FragmentSelector is not valid.")
        start_ms, end_ms = _range(selector, required=True)
        query = {
            "kind": _kind(selector.get("FragmentSelectorType")),
            "start": start_ms,
            "end": end_ms,
        }
    if not token:
        return {
            "stream": stream.arn,
            **(query or {"kind": "SERVER_TIMESTAMP", "start": None, "end": None}),
            "as_of": now_ms,
            "seed": random.getrandbits(32),
            "offset": 0,
        }
    state = _untoken(token)
    ints = ("as_of", "seed", "offset")
    bounds = ("start", "end")
    if (
        state.get("stream") != stream.arn
        or state.get("kind") not in TIMESTAMP_KINDS
        or any(type(state.get(key)) is not int for key in ints)
        or any(
            state.get(key) is not None and type(state[key]) is not int for key in bounds
        )
        or state["offset"] < 0
    ):
        raise invalid_argument("NextToken is not valid.")
    if query is not None and any(state[key] != value for key, value in query.items()):
        raise invalid_argument(
            "FragmentSelector does not match the query of the NextToken."
        )
    return state


async def list_fragments(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """ListFragments: pages of at most 1000, in no particular order."""
    stream = _stream(emulator, body, "ListFragments")
    limit = _int(body, "MaxResults", 100, 1, 1000)
    state = _listing_state(
        stream,
        body.get("FragmentSelector"),
        body.get("NextToken"),
        emulator.clock.now_ms(),
    )
    fragments = list(
        stream.fragments(state["as_of"], state["kind"], state["start"], state["end"])
    )
    # KVS promises no order, even across pages: shuffle the whole result once per
    # listing (same seed on every page, so pages neither repeat nor skip).
    random.Random(state["seed"]).shuffle(fragments)
    offset = state["offset"]
    page = fragments[offset : offset + limit]
    result: dict[str, Any] = {
        "Fragments": [
            {
                "FragmentNumber": f.number,
                "FragmentSizeInBytes": f.size,
                "ProducerTimestamp": f.producer_ms / 1000,
                "ServerTimestamp": f.server_ms / 1000,
                "FragmentLengthInMilliseconds": f.duration_ms,
            }
            for f in page
        ]
    }
    if offset + limit < len(fragments):
        result["NextToken"] = _token({**state, "offset": offset + limit})
    return result


async def get_clip(emulator: Emulator, body: dict[str, Any]) -> Payload:
    """GetClip: one MP4 of at most 200 fragments / 100 MB from the range's start."""
    stream = _archived(emulator, body, "GetClip")
    selector = body.get("ClipFragmentSelector")
    if not isinstance(selector, dict):
        raise invalid_argument("ClipFragmentSelector is required.")
    kind = _kind(selector.get("FragmentSelectorType"))
    start_ms, end_ms = _range(selector, required=True, strictly_later=True)
    chosen: list[Fragment] = []
    total = len(emulator.pool.init_segment)
    for fragment in stream.fragments(emulator.clock.now_ms(), kind, start_ms, end_ms):
        if len(chosen) >= CLIP_MAX_FRAGMENTS or total + fragment.size > CLIP_MAX_BYTES:
            break
        chosen.append(fragment)
        total += fragment.size
    if not chosen:
        raise not_found("No fragments found in the stream for the clip request.")
    pool = emulator.pool
    origin = chosen[0].producer_ms

    def chunks() -> Iterator[bytes]:
        yield pool.init_segment
        for sequence, fragment in enumerate(chosen, start=1):
            yield pool.mp4_fragment(
                pool.pool_index(fragment.producer_ms),
                sequence,
                fragment.producer_ms - origin,
            )

    return Payload("video/mp4", chunks(), total)


async def get_media_for_fragment_list(
    emulator: Emulator, body: dict[str, Any]
) -> Payload:
    """GetMediaForFragmentList: the fragments as tagged Matroska, in list order."""
    stream = _archived(emulator, body, "GetMediaForFragmentList")
    numbers = body.get("Fragments")
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= 1000:
        raise invalid_argument(
            "Fragments must list between 1 and 1000 fragment numbers."
        )
    now_ms = emulator.clock.now_ms()
    chosen: list[Fragment] = []
    for number in numbers:
        index = stream.index_of_number(str(number))
        if index is None or not stream.exists(index, now_ms):
            raise not_found(
                f"Fragment {number} does not exist in stream {stream.name}."
            )
        chosen.append(stream.fragment(index))
    pool = emulator.pool

    def chunks() -> Iterator[bytes]:
        for fragment in chosen:
            yield pool.mkv_fragment(
                pool.pool_index(fragment.producer_ms),
                fragment_number=fragment.number,
                producer_ms=fragment.producer_ms,
                server_ms=fragment.server_ms,
            )

    return Payload("video/webm", chunks())


async def get_images(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """GetImages: sampled stills of at most a 300 s range, 25 per page."""
    stream = _archived(emulator, body, "GetImages")
    kind = _kind(body.get("ImageSelectorType"), "ImageSelectorType")
    start_ms = _timestamp_ms(body.get("StartTimestamp"), "StartTimestamp")
    end_ms = _timestamp_ms(body.get("EndTimestamp"), "EndTimestamp")
    _check_span(start_ms, end_ms, IMAGES_MAX_RANGE_MS)
    interval = _int(body, "SamplingInterval", 3000, IMAGES_MIN_INTERVAL_MS, 20_000)
    image_format = _enum(body, "Format", ("JPEG", "PNG"), "")
    quality = 80
    if body.get("FormatConfig"):
        try:
            quality = int(body["FormatConfig"]["JPEGQuality"])
        except (KeyError, TypeError, ValueError) as err:
            raise invalid_argument(
                "FormatConfig supports JPEGQuality (1-100)."
            ) from err
        if not 1 <= quality <= 100:
            raise invalid_argument("JPEGQuality must be between 1 and 100.")
    width = body.get("WidthPixels")
    height = body.get("HeightPixels")
    if width is not None:
        _int(body, "WidthPixels", 0, 1, 3840)
    if height is not None:
        _int(body, "HeightPixels", 0, 1, 2160)
    page_size = min(_int(body, "MaxResults", IMAGES_PAGE, 1, 100), IMAGES_PAGE)
    offset = (
        int(_untoken(body["NextToken"]).get("offset", 0))
        if body.get("NextToken")
        else 0
    )
    moments = list(range(start_ms, end_ms + 1, interval))
    page = moments[offset : offset + page_size]
    now_ms = emulator.clock.now_ms()
    fragment_ms = stream.fragment_ms
    shift = stream.producer_offset_ms if kind == "SERVER_TIMESTAMP" else 0
    pool = emulator.pool
    loop = asyncio.get_running_loop()
    images: list[dict[str, Any]] = []
    for moment in page:
        index = (moment + shift) // fragment_ms
        entry: dict[str, Any] = {"TimeStamp": moment / 1000}
        if stream.exists(index, now_ms):
            offset_ms = moment + shift - index * fragment_ms
            content = await loop.run_in_executor(
                None,
                lambda i=index, o=offset_ms: pool.image(  # type: ignore[misc]
                    pool.pool_index(stream.producer_ms_of(i)),
                    o,
                    width=width,
                    height=height,
                    image_format=image_format,
                    jpeg_quality=quality,
                ),
            )
            entry["ImageContent"] = base64.b64encode(content).decode()
        else:
            entry["Error"] = "NO_MEDIA"
        images.append(entry)
    result: dict[str, Any] = {"Images": images}
    if offset + page_size < len(moments):
        result["NextToken"] = _token({"offset": offset + page_size})
    return result


# URL path -> (operation name, handler, served by the data endpoint)
OPERATIONS: Final[dict[str, tuple[str, Handler, bool]]] = {
    "createStream": ("CreateStream", create_stream, False),
    "describeStream": ("DescribeStream", describe_stream, False),
    "listStreams": ("ListStreams", list_streams, False),
    "deleteStream": ("DeleteStream", delete_stream, False),
    "getDataEndpoint": ("GetDataEndpoint", get_data_endpoint, False),
    "getHLSStreamingSessionURL": ("GetHLSStreamingSessionURL", get_hls_url, True),
    "getDASHStreamingSessionURL": ("GetDASHStreamingSessionURL", get_dash_url, True),
    "listFragments": ("ListFragments", list_fragments, True),
    "getClip": ("GetClip", get_clip, True),
    "getMediaForFragmentList": (
        "GetMediaForFragmentList",
        get_media_for_fragment_list,
        True,
    ),
    "getImages": ("GetImages", get_images, True),
}
