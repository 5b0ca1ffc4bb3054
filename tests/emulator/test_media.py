"""Tests for the emulator's pre-encoded media pool and its output formats."""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from kvs_emulator import matroska
from kvs_emulator.framecode import (
    MIN_HEIGHT,
    MIN_WIDTH,
    draw_frame,
    encode_bits,
    read_frame_index,
)
from kvs_emulator.matroska import read_fragment_tags
from kvs_emulator.media import MediaConfig, MediaPool, _iter_boxes, _normalise_moof

EPOCH_MS = 1_764_068_400_000  # 2025-11-25T11:00:00Z, a multiple of 60 s
CYCLE = 600  # frames in the default pool (30 x 2 s at 10 fps)
# A fragment start whose 2 s cross the 33-bit MPEG-TS timestamp wrap.
WRAP_MS = (1 << 33) // 90 // 2000 * 2000


@pytest.fixture(scope="module")
def pool() -> MediaPool:
    return MediaPool(MediaConfig())


@pytest.fixture(scope="module")
def padded_pool() -> MediaPool:
    return MediaPool(MediaConfig(pool_size=3, padding_bytes=100_000))


def expected_code(start_ms: int, frame: int, fps: int = 10) -> int:
    """Frame code shown ``frame`` frames after the fragment at ``start_ms``."""
    return (start_ms * fps // 1000 + frame) % CYCLE


def decode(data: bytes, fmt: str | None = None) -> list[tuple[int, int | None]]:
    """Decode all video frames: (pts, frame code) per frame."""
    # closing(): PyAV 13's container __exit__ is typed as maybe swallowing.
    with contextlib.closing(av.open(io.BytesIO(data), "r", format=fmt)) as container:
        return [
            (
                frame.pts if frame.pts is not None else -1,
                read_frame_index(frame.to_ndarray(format="rgb24")),
            )
            for frame in container.decode(video=0)
        ]


def box_types(data: bytes) -> list[bytes]:
    return [box[0] for box in _iter_boxes(data)]


def child_payload(data: bytes, path: list[bytes]) -> tuple[int, int]:
    """Payload range of the first box along ``path`` (top level first)."""
    start, end = 0, len(data)
    for name in path:
        for box_type, _, payload, box_end in _iter_boxes(data, start, end):
            if box_type == name:
                start, end = payload, box_end
                break
        else:
            raise AssertionError(f"no {name!r} box")
    return start, end


# --- pool structure --------------------------------------------------------


def test_pool_structure(pool: MediaPool) -> None:
    assert pool.frames_per_fragment == 20
    assert pool.timescale == 90_000
    assert box_types(pool.init_segment) == [b"ftyp", b"moov"]
    child_payload(pool.init_segment, [b"moov", b"mvex", b"trex"])
    assert pool.codec_private[0] == 1  # avcC configurationVersion
    for index in range(pool.config.pool_size):
        samples = pool.samples(index)
        assert len(samples) == 20
        assert samples[0].keyframe
        assert not any(sample.keyframe for sample in samples[1:])
        assert sum(sample.duration for sample in samples) == 2 * 90_000
        data = pool.mp4_fragment(index, 1, 0)
        assert len(data) == pool.fragment_size(index)
        assert box_types(data) == [b"moof", b"mdat"]


def test_pool_index(pool: MediaPool) -> None:
    assert pool.pool_index(0) == 0
    assert pool.pool_index(1999) == 0
    assert pool.pool_index(2000) == 1
    assert pool.pool_index(59_999) == 29
    assert pool.pool_index(60_000) == 0
    assert pool.pool_index(EPOCH_MS + 4000) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 321}, "even"),
        ({"width": 32, "height": 18}, "at least"),
        ({"fps": 0}, "positive"),
        ({"fps": 7, "fragment_ms": 1500}, "whole number"),
        ({"padding_bytes": 4}, "padding"),
    ],
)
def test_config_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MediaConfig(**kwargs)


# --- fragmented MP4 ----------------------------------------------------------


def build_mp4(pool: MediaPool, start_ms: int, count: int) -> bytes:
    parts = [pool.init_segment]
    for k in range(count):
        ms = start_ms + k * pool.config.fragment_ms
        parts.append(pool.mp4_fragment(pool.pool_index(ms), k + 1, ms))
    return b"".join(parts)


@pytest.mark.parametrize("start_ms", [0, EPOCH_MS, EPOCH_MS + 56_000])
def test_mp4_fragments_play_continuously(
    pool: MediaPool, tmp_path: Path, start_ms: int
) -> None:
    count = 5  # crosses the pool wrap for EPOCH_MS + 56 s
    path = tmp_path / "clip.mp4"
    path.write_bytes(build_mp4(pool, start_ms, count))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        assert stream.time_base.denominator == 90_000
        frames = [
            (frame.pts, read_frame_index(frame.to_ndarray(format="rgb24")))
            for frame in container.decode(stream)
        ]
    assert len(frames) == count * 20
    pts = [p if p is not None else -1 for p, _ in frames]
    assert pts[0] == start_ms * 90
    assert all(b - a == 9000 for a, b in itertools.pairwise(pts))
    assert [code for _, code in frames] == [
        expected_code(start_ms, i) for i in range(count * 20)
    ]


def test_mp4_fragment_header_fields(pool: MediaPool) -> None:
    data = pool.mp4_fragment(7, 123_456, EPOCH_MS)
    mfhd, _ = child_payload(data, [b"moof", b"mfhd"])
    assert struct.unpack_from(">I", data, mfhd + 4)[0] == 123_456
    tfdt, tfdt_end = child_payload(data, [b"moof", b"traf", b"tfdt"])
    assert data[tfdt] == 1  # version 1: 64-bit decode time
    assert tfdt_end - tfdt == 12
    assert struct.unpack_from(">Q", data, tfdt + 4)[0] == EPOCH_MS * 90
    # Same payload regardless of the patched fields.
    other = pool.mp4_fragment(7, 1, 0)
    assert len(other) == len(data)
    assert other[tfdt + 12 :] == data[tfdt + 12 :]


def test_mp4_fragment_rejects_negative_time(pool: MediaPool) -> None:
    with pytest.raises(ValueError, match="negative"):
        pool.mp4_fragment(0, 1, -2000)


def _downgrade_tfdt(moof: bytes) -> bytes:
    """Rewrite a moof's version 1 tfdt as version 0 (what other muxers write)."""
    out = bytearray(moof)
    tfdt, _ = child_payload(moof, [b"moof", b"traf", b"tfdt"])
    traf, _ = child_payload(moof, [b"moof", b"traf"])
    trun, _ = child_payload(moof, [b"moof", b"traf", b"trun"])
    (decode_time,) = struct.unpack_from(">Q", moof, tfdt + 4)
    new_tfdt = struct.pack(">I4sII", 16, b"tfdt", 0, decode_time)
    (offset,) = struct.unpack_from(">i", out, trun + 8)
    struct.pack_into(">i", out, trun + 8, offset - 4)
    out[tfdt - 8 : tfdt + 12] = new_tfdt
    struct.pack_into(">I", out, 0, len(moof) - 4)
    struct.pack_into(
        ">I", out, traf - 8, struct.unpack_from(">I", moof, traf - 8)[0] - 4
    )
    return bytes(out)


def test_tfdt_version0_is_converted(pool: MediaPool) -> None:
    original = pool.mp4_fragment(3, 9, 6000)
    moof_end = next(_iter_boxes(original))[3]
    moof = original[:moof_end]
    old = _downgrade_tfdt(moof)
    assert len(old) == len(moof) - 4
    converted, seq_offset, tfdt_offset = _normalise_moof(old)
    assert converted == moof
    assert struct.unpack_from(">I", converted, seq_offset)[0] == 9
    assert struct.unpack_from(">Q", converted, tfdt_offset)[0] == 6000 * 90
    # The converted moof must still point at the right sample data.
    clip = pool.init_segment + converted + original[moof_end:]
    assert [code for _, code in decode(clip)] == [60 + i for i in range(20)]


def test_padding(padded_pool: MediaPool, tmp_path: Path) -> None:
    for index in range(3):
        fragment = padded_pool.mp4_fragment(index, 5, EPOCH_MS)
        assert len(fragment) == padded_pool.fragment_size(index)
        boxes = list(_iter_boxes(fragment))
        assert [box[0] for box in boxes] == [b"moof", b"mdat", b"free"]
        assert boxes[2][3] - boxes[2][1] == 100_000
        assert padded_pool.fragment_size(index) == boxes[1][3] + 100_000
    path = tmp_path / "padded.mp4"
    path.write_bytes(build_mp4(padded_pool, EPOCH_MS, 4))
    with av.open(str(path)) as container:
        codes = [
            read_frame_index(frame.to_ndarray(format="rgb24"))
            for frame in container.decode(video=0)
        ]
    # A 3-entry pool cycles every 60 frames.
    assert codes == [i % 60 for i in range(80)]


# --- MPEG-TS --------------------------------------------------------------------


@pytest.mark.parametrize(
    "start_ms",
    [0, EPOCH_MS + 8000, WRAP_MS],
)
def test_ts_segment(pool: MediaPool, start_ms: int) -> None:
    index = pool.pool_index(start_ms)
    data = pool.ts_segment(index, start_ms)
    assert data[0] == 0x47  # TS sync byte
    assert len(data) % 188 == 0
    frames = decode(data, "mpegts")
    assert len(frames) == 20
    assert [code for _, code in frames] == [
        expected_code(start_ms, i) for i in range(20)
    ]
    pts = [p for p, _ in frames]
    assert pts[0] % (1 << 33) == (start_ms * 90) % (1 << 33)
    assert all(b - a == 9000 for a, b in itertools.pairwise(pts))


# --- Matroska ----------------------------------------------------------------------


def test_mkv_fragments(pool: MediaPool) -> None:
    documents = []
    for k in range(3):
        ms = EPOCH_MS + k * 2000
        documents.append(
            pool.mkv_fragment(
                pool.pool_index(ms),
                fragment_number=f"91343852333181432{k:03d}",
                producer_ms=ms,
                server_ms=ms + 1234,
            )
        )
    tags = read_fragment_tags(b"".join(documents))
    assert tags == [
        {
            "AWS_KINESISVIDEO_FRAGMENT_NUMBER": f"91343852333181432{k:03d}",
            "AWS_KINESISVIDEO_SERVER_TIMESTAMP": f"{EPOCH_MS // 1000 + 2 * k + 1}.234",
            "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP": f"{EPOCH_MS // 1000 + 2 * k}.000",
        }
        for k in range(3)
    ]
    start = EPOCH_MS + 2000
    frames = decode(documents[1])
    assert [code for _, code in frames] == [expected_code(start, i) for i in range(20)]
    # Matroska timestamps are in ms: the cluster timecode is the producer time.
    assert [p for p, _ in frames] == [start + 100 * i for i in range(20)]


def test_read_fragment_tags_unknown_size_cluster() -> None:
    """Real KVS writes clusters of unknown size; the reader must step in."""
    tags = matroska.master(
        matroska.TAGS,
        [
            matroska.master(
                matroska.TAG,
                [
                    matroska.master(
                        matroska.SIMPLE_TAG,
                        [
                            matroska.string_element(matroska.TAG_NAME, "A"),
                            matroska.string_element(matroska.TAG_STRING, "1"),
                        ],
                    )
                ],
            )
        ],
    )
    cluster = (
        matroska.encode_id(matroska.CLUSTER)
        + matroska.UNKNOWN_SIZE
        + matroska.uint_element(matroska.TIMECODE, 5)
        + matroska.simple_block(1, matroska.Frame(b"\x00\x00\x00\x01\x65", 0, True))
    )
    document = (
        matroska.ebml_header()
        + matroska.encode_id(matroska.SEGMENT)
        + matroska.UNKNOWN_SIZE
        + cluster
        + tags
    )
    assert read_fragment_tags(document + document) == [{"A": "1"}, {"A": "1"}]


@pytest.mark.parametrize(
    ("size", "encoded"),
    [(0, b"\x80"), (126, b"\xfe"), (127, b"\x40\x7f"), (16_382, b"\x7f\xfe")],
)
def test_ebml_size_encoding(size: int, encoded: bytes) -> None:
    assert matroska.encode_size(size) == encoded


def test_timestamp_format() -> None:
    assert matroska.format_timestamp(EPOCH_MS) == "1764068400.000"
    assert matroska.format_timestamp(EPOCH_MS + 7) == "1764068400.007"


# --- still images -------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (None, None, (320, 180)),
        (640, 360, (640, 360)),
        (640, None, (640, 360)),
        (None, 90, (160, 90)),
        (200, 200, (200, 200)),
    ],
)
def test_image(
    pool: MediaPool,
    image_format: str,
    width: int | None,
    height: int | None,
    expected: tuple[int, int],
) -> None:
    data = pool.image(4, 1050, width=width, height=height, image_format=image_format)
    magic = b"\xff\xd8" if image_format == "JPEG" else b"\x89PNG"
    assert data.startswith(magic)
    with av.open(io.BytesIO(data), "r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == expected
    # Frame 10 of pool entry 4 (nearest frame at or before 1050 ms).
    assert read_frame_index(frame.to_ndarray(format="rgb24")) == 4 * 20 + 10


@pytest.mark.parametrize(
    ("offset_ms", "frame"), [(-5, 0), (0, 0), (99, 0), (100, 1), (5000, 19)]
)
def test_image_offsets(pool: MediaPool, offset_ms: int, frame: int) -> None:
    data = pool.image(2, offset_ms, width=None, height=None, image_format="PNG")
    with av.open(io.BytesIO(data), "r") as container:
        decoded = next(container.decode(video=0))
    assert read_frame_index(decoded.to_ndarray(format="rgb24")) == 40 + frame


def test_image_quality_and_errors(pool: MediaPool) -> None:
    low = pool.image(
        0, 0, width=None, height=None, image_format="JPEG", jpeg_quality=10
    )
    high = pool.image(
        0, 0, width=None, height=None, image_format="JPEG", jpeg_quality=95
    )
    assert len(low) < len(high)
    with pytest.raises(ValueError, match="format"):
        pool.image(0, 0, width=None, height=None, image_format="GIF")
    with pytest.raises(ValueError, match="positive"):
        pool.image(0, 0, width=0, height=None, image_format="PNG")


# --- frame code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"), [(320, 180), (MIN_WIDTH, MIN_HEIGHT), (1280, 720)]
)
def test_framecode_round_trip(width: int, height: int) -> None:
    for index in [*range(0, 700, 7), 1023, 40_000, 65_535]:
        frame = draw_frame(index, CYCLE, width, height, 10)
        assert frame.shape == (height, width, 3)
        assert frame.dtype == np.uint8
        assert read_frame_index(frame) == index


def test_framecode_survives_scaling() -> None:
    frame = draw_frame(12_345, CYCLE, 320, 180, 10)
    picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
    for width, height in [(640, 360), (160, 90), (96, 96), (1920, 1080)]:
        scaled = picture.reformat(width, height).to_ndarray(format="rgb24")
        assert read_frame_index(scaled) == 12_345


def test_framecode_rejects_garbage() -> None:
    assert read_frame_index(np.zeros((180, 320, 3), dtype=np.uint8)) is None
    assert read_frame_index(np.full((180, 320, 3), 255, dtype=np.uint8)) is None
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(180, 320, 3), dtype=np.uint8)
    assert read_frame_index(noise) is None
    # A single flipped data bit breaks the checksum.
    frame = draw_frame(777, CYCLE, 320, 180, 10)
    cells = len(encode_bits(0))
    x0, x1 = 5 * 320 // cells + 2, 6 * 320 // cells - 2
    frame[:18, x0:x1] = 255 - frame[:18, x0:x1]
    assert read_frame_index(frame) is None


def test_clock_changes_every_tenth() -> None:
    """The human-readable clock differs between consecutive frames."""
    first = draw_frame(0, CYCLE, 320, 180, 10)
    second = draw_frame(1, CYCLE, 320, 180, 10)
    body = slice(20, 150)
    assert not np.array_equal(first[body], second[body])
