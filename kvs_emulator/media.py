"""Pre-encoded H.264 media pool served by the KVS emulator.

The pool is encoded once at start-up: ``pool_size`` fragments of
``fragment_ms`` each (one GOP per fragment). Any fragment of the emulated
history reuses pool entry ``(start_ms // fragment_ms) % pool_size``, and the
per-request work is limited to patching timestamps (fMP4) or a cheap remux
(MPEG-TS, Matroska, still images).
"""

from __future__ import annotations

import io
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from av.container import OutputContainer
from av.stream import Stream

from . import matroska
from .framecode import MIN_HEIGHT, MIN_WIDTH, draw_frame

# trun / tfhd flag bits (ISO/IEC 14496-12).
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
_SAMPLE_IS_NON_SYNC = 0x00010000

_MPEGTS_CLOCK = 90_000
_MPEGTS_WRAP = 1 << 33
_IMAGE_CACHE_ENTRIES = 4

YUVArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class MediaConfig:
    """Shape of the synthetic video."""

    width: int = 320
    height: int = 180
    fps: int = 10
    fragment_ms: int = 2000
    pool_size: int = 30
    # Extra bytes per fragment, as one MP4 'free' box after the mdat, so
    # benchmarks can serve large fragments without encoding large video.
    padding_bytes: int = 0

    def __post_init__(self) -> None:
        if self.width < MIN_WIDTH or self.height < MIN_HEIGHT:
            raise ValueError(f"frames must be at least {MIN_WIDTH}x{MIN_HEIGHT}")
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        if self.fps <= 0 or self.fragment_ms <= 0 or self.pool_size <= 0:
            raise ValueError("fps, fragment_ms and pool_size must be positive")
        if (self.fragment_ms * self.fps) % 1000:
            raise ValueError("fragment_ms must hold a whole number of frames")
        if self.padding_bytes != 0 and self.padding_bytes < 8:
            raise ValueError("padding_bytes must be 0 or at least 8 (box header)")
        if self.padding_bytes >= 1 << 32:
            raise ValueError("padding_bytes must fit a 32-bit box size")

    @property
    def frames_per_fragment(self) -> int:
        """Frames in one fragment (one GOP)."""
        return self.fragment_ms * self.fps // 1000


@dataclass(frozen=True)
class Sample:
    """One coded frame (AVCC, length-prefixed NAL units) of a pool entry."""

    data: bytes
    pts: int  # track timescale units from the start of the fragment
    duration: int
    keyframe: bool


@dataclass(frozen=True)
class _Fragment:
    data: bytes  # moof + mdat, tfdt already version 1
    sequence_offset: int  # byte offset of mfhd.sequence_number
    tfdt_offset: int  # byte offset of the 64-bit baseMediaDecodeTime
    samples: tuple[Sample, ...]


# --- ISO BMFF helpers ------------------------------------------------------


def _iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (type, box start, payload start, box end) for boxes in a range."""
    stop = len(data) if end is None else end
    pos = start
    while pos < stop:
        if pos + 8 > stop:
            raise ValueError(f"truncated box header at {pos}")
        size, box_type = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            raise ValueError(f"bad size {size} for box {box_type!r} at {pos}")
        yield box_type, pos, pos + header, pos + size
        pos += size


def _find_box(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int]:
    """Return (payload start, end) of the first box along ``path``."""
    for box_type, _, payload, box_end in _iter_boxes(data, start, end):
        if box_type == path[0]:
            if len(path) == 1:
                return payload, box_end
            return _find_box(data, path[1:], payload, box_end)
    raise ValueError(f"box {path[0]!r} not found")


def _box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def _normalise_moof(moof: bytes) -> tuple[bytes, int, int]:
    """Rewrite a moof so its tfdt is version 1 (64-bit).

    Returns the new moof and the offsets of mfhd.sequence_number and of
    tfdt.baseMediaDecodeTime inside it. Growing a v0 tfdt by 4 bytes shifts
    the sample data, so trun data offsets (relative to the moof start with
    default-base-is-moof) grow by the same amount.
    """
    _, _, moof_payload, moof_end = next(_iter_boxes(moof))
    boxes = list(_iter_boxes(moof, moof_payload, moof_end))
    trafs = [b for b in boxes if b[0] == b"traf"]
    if len(trafs) != 1:
        raise ValueError(f"expected one traf per moof, found {len(trafs)}")
    traf_children = list(_iter_boxes(moof, trafs[0][2], trafs[0][3]))
    tfdts = [b for b in traf_children if b[0] == b"tfdt"]
    if len(tfdts) != 1:
        raise ValueError("expected exactly one tfdt")
    growth = 4 if moof[tfdts[0][2]] == 0 else 0

    parts: list[bytes] = []
    sequence_offset = tfdt_offset = -1
    pos = 8  # running offset inside the new moof
    for box_type, start, _, end in boxes:
        if box_type == b"mfhd":
            sequence_offset = pos + 8 + 4  # header, version/flags
            parts.append(moof[start:end])
            pos += end - start
            continue
        if box_type != b"traf":
            parts.append(moof[start:end])
            pos += end - start
            continue
        traf_parts: list[bytes] = []
        traf_pos = pos + 8
        for child_type, c_start, c_payload, c_end in traf_children:
            if child_type == b"tfhd":
                (tfhd_flags,) = struct.unpack_from(">I", moof, c_payload)
                tfhd_flags &= 0xFFFFFF
                if tfhd_flags & _TFHD_BASE_DATA_OFFSET:
                    raise ValueError("explicit base_data_offset is not supported")
                if not tfhd_flags & _TFHD_DEFAULT_BASE_IS_MOOF:
                    raise ValueError("fragments must use default-base-is-moof")
                child = moof[c_start:c_end]
            elif child_type == b"tfdt":
                version = moof[c_payload]
                if version == 0:
                    (decode_time,) = struct.unpack_from(">I", moof, c_payload + 4)
                else:
                    (decode_time,) = struct.unpack_from(">Q", moof, c_payload + 4)
                child = _box(b"tfdt", struct.pack(">B3xQ", 1, decode_time))
                tfdt_offset = traf_pos + 8 + 4
            elif child_type == b"trun":
                trun = bytearray(moof[c_start:c_end])
                (flags,) = struct.unpack_from(">I", trun, 8)
                if flags & _TRUN_DATA_OFFSET:
                    (data_offset,) = struct.unpack_from(">i", trun, 16)
                    struct.pack_into(">i", trun, 16, data_offset + growth)
                child = bytes(trun)
            else:
                child = moof[c_start:c_end]
            traf_parts.append(child)
            traf_pos += len(child)
        traf = _box(b"traf", b"".join(traf_parts))
        parts.append(traf)
        pos += len(traf)
    if sequence_offset < 0 or tfdt_offset < 0:
        raise ValueError("moof lacks mfhd or tfdt")
    return _box(b"moof", b"".join(parts)), sequence_offset, tfdt_offset


def _parse_samples(
    fragment: bytes, trex_defaults: tuple[int, int, int]
) -> tuple[int, list[Sample]]:
    """Return (baseMediaDecodeTime, samples) of a normalised moof + mdat."""
    _, _, moof_payload, moof_end = next(_iter_boxes(fragment))
    traf_start, traf_end = _find_box(fragment, [b"traf"], moof_payload, moof_end)
    default_duration, default_size, default_flags = trex_defaults
    base_time = 0
    samples: list[Sample] = []
    decode_time = 0
    for box_type, _, payload, _ in _iter_boxes(fragment, traf_start, traf_end):
        if box_type == b"tfhd":
            (flags,) = struct.unpack_from(">I", fragment, payload)
            pos = payload + 8  # version/flags, track_ID
            if flags & _TFHD_BASE_DATA_OFFSET:
                pos += 8
            if flags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
                pos += 4
            if flags & _TFHD_DEFAULT_DURATION:
                (default_duration,) = struct.unpack_from(">I", fragment, pos)
                pos += 4
            if flags & _TFHD_DEFAULT_SIZE:
                (default_size,) = struct.unpack_from(">I", fragment, pos)
                pos += 4
            if flags & _TFHD_DEFAULT_FLAGS:
                (default_flags,) = struct.unpack_from(">I", fragment, pos)
        elif box_type == b"tfdt":
            (base_time,) = struct.unpack_from(">Q", fragment, payload + 4)
        elif box_type == b"trun":
            (version_flags, count) = struct.unpack_from(">II", fragment, payload)
            version, flags = version_flags >> 24, version_flags & 0xFFFFFF
            pos = payload + 8
            if not flags & _TRUN_DATA_OFFSET:
                raise ValueError("trun without data_offset is not supported")
            (data_pos,) = struct.unpack_from(">i", fragment, pos)
            pos += 4
            first_flags: int | None = None
            if flags & _TRUN_FIRST_SAMPLE_FLAGS:
                (first_flags,) = struct.unpack_from(">I", fragment, pos)
                pos += 4
            for i in range(count):
                duration, size, sample_flags, cto = (
                    default_duration,
                    default_size,
                    default_flags,
                    0,
                )
                if flags & _TRUN_DURATION:
                    (duration,) = struct.unpack_from(">I", fragment, pos)
                    pos += 4
                if flags & _TRUN_SIZE:
                    (size,) = struct.unpack_from(">I", fragment, pos)
                    pos += 4
                if flags & _TRUN_FLAGS:
                    (sample_flags,) = struct.unpack_from(">I", fragment, pos)
                    pos += 4
                if flags & _TRUN_CTO:
                    fmt = ">i" if version else ">I"
                    (cto,) = struct.unpack_from(fmt, fragment, pos)
                    pos += 4
                if i == 0 and first_flags is not None:
                    sample_flags = first_flags
                if data_pos + size > len(fragment):
                    raise ValueError("sample data runs past the fragment")
                samples.append(
                    Sample(
                        data=fragment[data_pos : data_pos + size],
                        pts=decode_time + cto,
                        duration=duration,
                        keyframe=not sample_flags & _SAMPLE_IS_NON_SYNC,
                    )
                )
                data_pos += size
                decode_time += duration
    return base_time, samples


def _parse_init(init: bytes) -> tuple[int, bytes, tuple[int, int, int]]:
    """Return (timescale, avcC payload, trex sample defaults) from ftyp+moov."""
    moov, moov_end = _find_box(init, [b"moov"])
    mdhd, _ = _find_box(init, [b"trak", b"mdia", b"mdhd"], moov, moov_end)
    version = init[mdhd]
    (timescale,) = struct.unpack_from(">I", init, mdhd + (20 if version else 12))
    stsd, stsd_end = _find_box(
        init, [b"trak", b"mdia", b"minf", b"stbl", b"stsd"], moov, moov_end
    )
    # stsd: version/flags + entry count, then the avc1 sample entry whose
    # child boxes start after 78 bytes of VisualSampleEntry fields.
    entry_type, _, entry_payload, entry_end = next(
        _iter_boxes(init, stsd + 8, stsd_end)
    )
    if entry_type != b"avc1":
        raise ValueError(f"unexpected sample entry {entry_type!r}")
    avcc, avcc_end = _find_box(init, [b"avcC"], entry_payload + 78, entry_end)
    trex, _ = _find_box(init, [b"mvex", b"trex"], moov, moov_end)
    _, _, duration, size, flags = struct.unpack_from(">IIIII", init, trex + 8)
    return timescale, init[avcc:avcc_end], (duration, size, flags)


# --- the pool ---------------------------------------------------------------


class MediaPool:
    """Pre-encoded fragments plus the per-request output formats."""

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.frames_per_fragment = config.frames_per_fragment
        self.frames_per_cycle = self.frames_per_fragment * config.pool_size
        # Millisecond based timescale keeps ms <-> ticks conversions exact.
        self.timescale = 90_000 if 90_000 % config.fps == 0 else config.fps * 1000
        self._frame_ticks = self.timescale // config.fps
        self._fragment_ticks = config.fragment_ms * self.timescale // 1000
        self._padding = (
            _box(b"free", bytes(config.padding_bytes - 8))
            if config.padding_bytes
            else b""
        )
        self._image_cache: OrderedDict[int, list[YUVArray]] = OrderedDict()
        self._image_lock = threading.Lock()

        self.init_segment, self.codec_private, self._fragments = self._split(
            self._encode()
        )

    # -- build -----------------------------------------------------------

    def _encode(self) -> bytes:
        """Encode the whole cycle into one fragmented MP4 in memory."""
        cfg = self.config
        gop = str(self.frames_per_fragment)
        buffer = io.BytesIO()
        with av.open(
            buffer,
            "w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "video_track_timescale": str(self.timescale),
            },
        ) as container:
            stream = container.add_stream(
                "libx264",
                rate=cfg.fps,
                options={
                    "preset": "ultrafast",
                    "tune": "zerolatency",
                    "g": gop,
                    "keyint_min": gop,
                    "sc_threshold": "0",
                    "bf": "0",
                },
            )
            # PyAV 13's stubs type add_stream() loosely; narrow for both.
            assert isinstance(stream, av.VideoStream)
            stream.width = cfg.width
            stream.height = cfg.height
            stream.pix_fmt = "yuv420p"
            time_base = Fraction(1, self.timescale)
            # No B-frames and zero latency: packets come out in frame order,
            # one per frame, so a counter numbers them whatever the PyAV
            # version does to packet time bases.
            frame_no = 0
            for index in range(self.frames_per_cycle + 1):
                if index < self.frames_per_cycle:
                    rgb = draw_frame(
                        index, self.frames_per_cycle, cfg.width, cfg.height, cfg.fps
                    )
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = index
                    frame.time_base = Fraction(1, cfg.fps)
                    packets = stream.encode(frame.reformat(format="yuv420p"))
                else:
                    packets = stream.encode(None)
                for packet in packets:
                    if packet.is_keyframe != (frame_no % self.frames_per_fragment == 0):
                        raise RuntimeError(f"unexpected GOP structure at {frame_no}")
                    # Explicit track-timescale timestamps: exact durations.
                    packet.time_base = time_base
                    packet.pts = packet.dts = frame_no * self._frame_ticks
                    packet.duration = self._frame_ticks
                    container.mux(packet)
                    frame_no += 1
            if frame_no != self.frames_per_cycle:
                raise RuntimeError(f"encoder returned {frame_no} packets")
        return buffer.getvalue()

    def _split(self, mp4: bytes) -> tuple[bytes, bytes, list[_Fragment]]:
        """Cut the muxed file into init segment, avcC and pool entries."""
        init_parts: list[bytes] = []
        pairs: list[tuple[bytes, bytes]] = []
        pending_moof: bytes | None = None
        for box_type, start, _, end in _iter_boxes(mp4):
            if box_type in (b"ftyp", b"moov"):
                init_parts.append(mp4[start:end])
            elif box_type == b"moof":
                pending_moof = mp4[start:end]
            elif box_type == b"mdat":
                if pending_moof is None:
                    raise RuntimeError("mdat without moof")
                pairs.append((pending_moof, mp4[start:end]))
                pending_moof = None
            # Anything else (mfra, free, ...) is irrelevant for streaming.
        if len(init_parts) != 2 or len(pairs) != self.config.pool_size:
            raise RuntimeError(
                f"muxer produced {len(pairs)} fragments, expected "
                f"{self.config.pool_size}"
            )
        init_segment = b"".join(init_parts)
        timescale, codec_private, trex = _parse_init(init_segment)
        if timescale != self.timescale:
            raise RuntimeError(f"muxer chose timescale {timescale}")

        fragments: list[_Fragment] = []
        for index, (moof, mdat) in enumerate(pairs):
            new_moof, seq_offset, tfdt_offset = _normalise_moof(moof)
            data = new_moof + mdat
            base_time, samples = _parse_samples(data, trex)
            if base_time != index * self._fragment_ticks:
                raise RuntimeError(f"fragment {index} starts at {base_time}")
            if len(samples) != self.frames_per_fragment or not samples[0].keyframe:
                raise RuntimeError(f"fragment {index} is not one GOP")
            if any(s.keyframe for s in samples[1:]):
                raise RuntimeError(f"fragment {index} has extra keyframes")
            if sum(s.duration for s in samples) != self._fragment_ticks:
                raise RuntimeError(f"fragment {index} has the wrong duration")
            fragments.append(_Fragment(data, seq_offset, tfdt_offset, tuple(samples)))
        return init_segment, codec_private, fragments

    # -- lookup ----------------------------------------------------------

    def pool_index(self, start_ms: int) -> int:
        """Pool entry for the fragment starting at epoch ``start_ms``."""
        return (start_ms // self.config.fragment_ms) % self.config.pool_size

    def samples(self, index: int) -> tuple[Sample, ...]:
        """Coded frames of pool entry ``index`` (AVCC format)."""
        return self._fragments[index].samples

    def fragment_size(self, index: int) -> int:
        """Length of ``mp4_fragment(index, ...)``, padding included."""
        return len(self._fragments[index].data) + len(self._padding)

    # -- outputs ---------------------------------------------------------

    def mp4_fragment(
        self, index: int, sequence_number: int, decode_time_ms: int
    ) -> bytes:
        """Return moof + mdat (+ padding) with sequence number and decode time set."""
        if decode_time_ms < 0:
            raise ValueError("decode_time_ms must not be negative")
        fragment = self._fragments[index]
        data = memoryview(fragment.data)
        seq, tfdt = fragment.sequence_offset, fragment.tfdt_offset
        ticks = decode_time_ms * self.timescale // 1000
        # One join = one copy; the slices are zero-copy views.
        return b"".join(
            (
                data[:seq],
                # mfhd.sequence_number is 32 bits; wrap rather than fail.
                (sequence_number & 0xFFFFFFFF).to_bytes(4, "big"),
                data[seq + 4 : tfdt],
                ticks.to_bytes(8, "big"),
                data[tfdt + 8 :],
                self._padding,
            )
        )

    def ts_segment(self, index: int, start_ms: int) -> bytes:
        """Return the fragment as a standalone MPEG-TS segment from ``start_ms``."""
        samples = self._fragments[index].samples
        # Only the base is reduced modulo 2**33; the muxer writes the low 33
        # bits, so a segment straddling the wrap stays monotonic for it.
        base = (start_ms * _MPEGTS_CLOCK // 1000) % _MPEGTS_WRAP
        time_base = Fraction(1, _MPEGTS_CLOCK)
        output = io.BytesIO()
        with (
            av.open(io.BytesIO(self.init_segment), "r") as source,
            av.open(output, "w", format="mpegts") as container,
        ):
            # Template copies the avcC; the mpegts muxer then converts the
            # length-prefixed samples to Annex B and inserts SPS/PPS itself.
            stream = _add_stream_like(container, source.streams.video[0])
            for sample in samples:
                packet = av.Packet(sample.data)
                packet.stream = stream
                packet.time_base = time_base
                packet.pts = packet.dts = base + self._to_90k(sample.pts)
                packet.duration = self._to_90k(sample.duration)
                packet.is_keyframe = sample.keyframe
                container.mux(packet)
        return output.getvalue()

    def mkv_fragment(
        self, index: int, *, fragment_number: str, producer_ms: int, server_ms: int
    ) -> bytes:
        """One Matroska document as GetMediaForFragmentList returns it."""
        frames = [
            matroska.Frame(
                data=sample.data,
                offset_ms=sample.pts * 1000 // self.timescale,
                keyframe=sample.keyframe,
            )
            for sample in self._fragments[index].samples
        ]
        return matroska.fragment_document(
            codec_private=self.codec_private,
            width=self.config.width,
            height=self.config.height,
            fps=self.config.fps,
            frames=frames,
            fragment_number=fragment_number,
            producer_ms=producer_ms,
            server_ms=server_ms,
        )

    def image(
        self,
        index: int,
        offset_ms: int,
        *,
        width: int | None,
        height: int | None,
        image_format: str,
        jpeg_quality: int = 80,
    ) -> bytes:
        """Encode the frame at ``offset_ms`` into the fragment as JPEG or PNG.

        Picks the last frame at or before the offset; scales to the requested
        size, keeping the aspect ratio when only one dimension is given.
        """
        fmt = image_format.upper()
        if fmt not in ("JPEG", "PNG"):
            raise ValueError(f"unsupported image format {image_format!r}")
        cfg = self.config
        out_w, out_h = _target_size(cfg.width, cfg.height, width, height)
        frames = self._decoded(index)
        position = min(
            max(0, offset_ms * self.timescale // 1000) // self._frame_ticks,
            len(frames) - 1,
        )
        source = av.VideoFrame.from_ndarray(frames[position], format="yuv420p")
        if fmt == "PNG":
            context = av.CodecContext.create("png", "w")
            assert isinstance(context, av.VideoCodecContext)  # for PyAV 13 stubs
            context.pix_fmt = "rgb24"
            picture = source.reformat(out_w, out_h, "rgb24")
        else:
            context = av.CodecContext.create("mjpeg", "w")
            assert isinstance(context, av.VideoCodecContext)  # for PyAV 13 stubs
            context.pix_fmt = "yuv420p"
            context.color_range = 2  # full range, as JPEG expects
            qscale = str(_jpeg_qscale(jpeg_quality))
            context.options = {"qmin": qscale, "qmax": qscale}
            # H.264 output is limited range; JPEG wants full range.
            picture = source.reformat(
                out_w, out_h, "yuv420p", src_color_range=1, dst_color_range=2
            )
        context.width = out_w
        context.height = out_h
        context.time_base = Fraction(1, cfg.fps)
        packets = context.encode(picture) + context.encode(None)
        return b"".join(bytes(packet) for packet in packets)

    # -- internals -------------------------------------------------------

    def _to_90k(self, ticks: int) -> int:
        return ticks * _MPEGTS_CLOCK // self.timescale

    def _decoded(self, index: int) -> list[YUVArray]:
        """Return the decoded yuv420p frames of a pool entry (small LRU cache)."""
        with self._image_lock:
            cached = self._image_cache.get(index)
            if cached is not None:
                self._image_cache.move_to_end(index)
                return cached
        fragment = self._fragments[index]
        with av.open(io.BytesIO(self.init_segment + fragment.data), "r") as source:
            frames = [
                np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
                for frame in source.decode(video=0)
            ]
        if len(frames) != len(fragment.samples):
            raise RuntimeError(f"decoded {len(frames)} frames from entry {index}")
        with self._image_lock:
            self._image_cache[index] = frames
            self._image_cache.move_to_end(index)
            while len(self._image_cache) > _IMAGE_CACHE_ENTRIES:
                self._image_cache.popitem(last=False)
        return frames


def _add_stream_like(container: OutputContainer, template: Stream) -> Stream:
    """Add an output stream with ``template``'s codec parameters (no codec)."""
    from_template = getattr(container, "add_stream_from_template", None)
    if from_template is not None:  # PyAV >= 14
        stream: Stream = from_template(template)
        return stream
    # PyAV 13 (Home Assistant's minimum leg) spells it as a keyword argument.
    add_stream: Callable[..., Stream] = container.add_stream
    return add_stream(template=template)


def _target_size(
    native_w: int, native_h: int, width: int | None, height: int | None
) -> tuple[int, int]:
    if width is None and height is None:
        return native_w, native_h
    if (width is not None and width <= 0) or (height is not None and height <= 0):
        raise ValueError("image width and height must be positive")
    if width is None:
        assert height is not None
        return max(1, round(height * native_w / native_h)), height
    if height is None:
        return width, max(1, round(width * native_h / native_w))
    return width, height


def _jpeg_qscale(quality: int) -> int:
    """Map a 1..100 JPEG quality (100 = best) onto mjpeg's qscale 2..31."""
    quality = min(100, max(1, quality))
    return round(31 - (quality - 1) * 29 / 99)
