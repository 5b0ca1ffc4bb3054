"""Minimal EBML/Matroska writer and tag reader for KVS style fragments.

KVS ``GetMediaForFragmentList`` (and ``GetMedia``) return a stream of
Matroska documents, one per fragment: EBML header, a Segment of unknown size
with Info, Tracks, one Cluster and Tags that carry the fragment number and the
server/producer timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Element IDs (with their length marker bits, as written on the wire).
EBML = 0x1A45DFA3
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285
SEGMENT = 0x18538067
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
MUXING_APP = 0x4D80
WRITING_APP = 0x5741
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
FLAG_LACING = 0x9C
NAME = 0x536E
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
DEFAULT_DURATION = 0x23E383
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
TAGS = 0x1254C367
TAG = 0x7373
TARGETS = 0x63C0
TARGET_TYPE_VALUE = 0x68CA
SIMPLE_TAG = 0x67C8
TAG_NAME = 0x45A3
TAG_STRING = 0x4487

TAG_FRAGMENT_NUMBER = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
TAG_SERVER_TIMESTAMP = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
TAG_PRODUCER_TIMESTAMP = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"

APP_NAME = "kvs-emulator"
# 8-byte "unknown size" marker: all value bits set.
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def encode_id(element_id: int) -> bytes:
    """Element IDs are stored with their marker bits, so just big-endian."""
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def encode_size(size: int) -> bytes:
    """Encode ``size`` as the shortest EBML variable-length integer."""
    for length in range(1, 9):
        # All-ones is reserved for "unknown size", hence the -1.
        if size < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | size).to_bytes(length, "big")
    raise ValueError(f"EBML size too large: {size}")


def element(element_id: int, payload: bytes) -> bytes:
    """One EBML element with a known size."""
    return encode_id(element_id) + encode_size(len(payload)) + payload


def master(element_id: int, children: Iterable[bytes]) -> bytes:
    """One master element holding the given encoded children."""
    return element(element_id, b"".join(children))


def uint_element(element_id: int, value: int) -> bytes:
    """Unsigned integer element in the fewest bytes."""
    if value < 0:
        raise ValueError("unsigned EBML element cannot be negative")
    return element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8)))


def string_element(element_id: int, value: str) -> bytes:
    """UTF-8 string element."""
    return element(element_id, value.encode("utf-8"))


@dataclass(frozen=True)
class Frame:
    """One coded video frame for a SimpleBlock."""

    data: bytes
    offset_ms: int  # relative to the cluster timecode
    keyframe: bool


def ebml_header() -> bytes:
    """EBML header of a Matroska document."""
    return master(
        EBML,
        [
            uint_element(EBML_VERSION, 1),
            uint_element(EBML_READ_VERSION, 1),
            uint_element(EBML_MAX_ID_LENGTH, 4),
            uint_element(EBML_MAX_SIZE_LENGTH, 8),
            string_element(DOC_TYPE, "matroska"),
            uint_element(DOC_TYPE_VERSION, 4),
            uint_element(DOC_TYPE_READ_VERSION, 2),
        ],
    )


def simple_block(track_number: int, frame: Frame) -> bytes:
    """SimpleBlock with a 16-bit timecode relative to the cluster."""
    if not -0x8000 <= frame.offset_ms <= 0x7FFF:
        raise ValueError(f"block offset {frame.offset_ms} ms out of int16 range")
    header = (
        encode_size(track_number)
        + frame.offset_ms.to_bytes(2, "big", signed=True)
        + (b"\x80" if frame.keyframe else b"\x00")
    )
    return element(SIMPLE_BLOCK, header + frame.data)


def format_timestamp(ms: int) -> str:
    """KVS writes tag timestamps as seconds with three decimals."""
    seconds, millis = divmod(ms, 1000)
    return f"{seconds}.{millis:03d}"


def fragment_document(
    *,
    codec_private: bytes,
    width: int,
    height: int,
    fps: int,
    frames: Sequence[Frame],
    fragment_number: str,
    producer_ms: int,
    server_ms: int,
) -> bytes:
    """Build one self-contained Matroska document for a KVS fragment."""
    info = master(
        INFO,
        [
            uint_element(TIMECODE_SCALE, 1_000_000),
            string_element(MUXING_APP, APP_NAME),
            string_element(WRITING_APP, APP_NAME),
        ],
    )
    track = master(
        TRACK_ENTRY,
        [
            uint_element(TRACK_NUMBER, 1),
            uint_element(TRACK_UID, 1),
            uint_element(TRACK_TYPE, 1),
            uint_element(FLAG_LACING, 0),
            string_element(NAME, "kinesis_video"),
            string_element(CODEC_ID, "V_MPEG4/ISO/AVC"),
            element(CODEC_PRIVATE, codec_private),
            uint_element(DEFAULT_DURATION, 1_000_000_000 // fps),
            master(
                VIDEO,
                [uint_element(PIXEL_WIDTH, width), uint_element(PIXEL_HEIGHT, height)],
            ),
        ],
    )
    cluster = master(
        CLUSTER,
        [uint_element(TIMECODE, producer_ms)]
        + [simple_block(1, frame) for frame in frames],
    )
    tags = master(
        TAGS,
        [
            master(
                TAG,
                [
                    master(TARGETS, [uint_element(TARGET_TYPE_VALUE, 50)]),
                    _simple_tag(TAG_FRAGMENT_NUMBER, fragment_number),
                    _simple_tag(TAG_SERVER_TIMESTAMP, format_timestamp(server_ms)),
                    _simple_tag(TAG_PRODUCER_TIMESTAMP, format_timestamp(producer_ms)),
                ],
            )
        ],
    )
    return b"".join(
        [
            ebml_header(),
            encode_id(SEGMENT),
            UNKNOWN_SIZE,
            info,
            master(TRACKS, [track]),
            cluster,
            tags,
        ]
    )


def _simple_tag(name: str, value: str) -> bytes:
    return master(
        SIMPLE_TAG, [string_element(TAG_NAME, name), string_element(TAG_STRING, value)]
    )


# --- reading ---------------------------------------------------------------


def _read_id(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ValueError("truncated EBML element ID")
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 4 and not first & mask:
        length += 1
        mask >>= 1
    if length > 4 or pos + length > len(data):
        raise ValueError(f"invalid EBML element ID at offset {pos}")
    return int.from_bytes(data[pos : pos + length], "big"), pos + length


def _read_size(data: bytes | memoryview, pos: int) -> tuple[int | None, int]:
    """Return (size or None for unknown, position after the size field)."""
    if pos >= len(data):
        raise ValueError("truncated EBML size")
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        length += 1
        mask >>= 1
    if length > 8 or pos + length > len(data):
        raise ValueError(f"invalid EBML size at offset {pos}")
    value = first & (mask - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    if value == (1 << (7 * length)) - 1:
        return None, pos + length
    return value, pos + length


def _parse_tags(data: bytes | memoryview, pos: int, end: int) -> dict[str, str]:
    """Collect SimpleTag name/value pairs from a Tags element body."""
    found: dict[str, str] = {}
    while pos < end:
        element_id, pos = _read_id(data, pos)
        size, pos = _read_size(data, pos)
        if size is None:
            raise ValueError("unknown-size element inside Tags")
        if element_id in (TAG, SIMPLE_TAG):
            if element_id == SIMPLE_TAG:
                name, value = _parse_simple_tag(data, pos, pos + size)
                if name is not None:
                    found[name] = value
            found.update(_parse_tags(data, pos, pos + size))
        pos += size
    return found


def _parse_simple_tag(
    data: bytes | memoryview, pos: int, end: int
) -> tuple[str | None, str]:
    name: str | None = None
    value = ""
    while pos < end:
        element_id, pos = _read_id(data, pos)
        size, pos = _read_size(data, pos)
        if size is None:
            raise ValueError("unknown-size element inside SimpleTag")
        if element_id == TAG_NAME:
            name = bytes(data[pos : pos + size]).decode("utf-8")
        elif element_id == TAG_STRING:
            value = bytes(data[pos : pos + size]).decode("utf-8")
        pos += size
    return name, value


def read_fragment_tags(data: bytes) -> list[dict[str, str]]:
    """Return the SimpleTags of every Matroska document in ``data``, in order.

    Walks the top level and steps into Segment and Cluster (whatever their
    size, so unknown-size elements as written by KVS work too); every EBML
    header starts a new document.
    """
    view = memoryview(data)
    documents: list[dict[str, str]] = []
    pos = 0
    while pos < len(view):
        element_id, body = _read_id(view, pos)
        size, body = _read_size(view, body)
        if element_id == EBML:
            documents.append({})
        elif element_id in (SEGMENT, CLUSTER):
            pos = body  # descend: children follow directly
            continue
        elif element_id == TAGS and size is not None:
            if body + size > len(view):
                raise ValueError("truncated Tags element")
            if not documents:
                documents.append({})
            documents[-1].update(_parse_tags(view, body, body + size))
        if size is None:
            raise ValueError(f"unexpected unknown-size element 0x{element_id:X}")
        pos = body + size
    return documents
