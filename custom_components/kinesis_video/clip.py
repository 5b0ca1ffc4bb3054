"""Files for the archive actions: ranges, names, safe writes, lossless joins.

Plain Python (PyAV imported lazily), no Home Assistant imports: every function
here can be tested on its own. The blocking ones run in an executor.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final

from .api import Fragment, TimestampType

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.stream import Stream

# GetClip returns at most the first 200 fragments or 100 MB of a range. Keep a
# margin under the byte limit for the MP4 header the service adds.
CLIP_MAX_FRAGMENTS: Final = 200
CLIP_MAX_BYTES: Final = 100 * 1000 * 1000 - 1024 * 1024
# A hole between two fragments longer than this counts as a gap.
GAP_TOLERANCE: Final = timedelta(milliseconds=500)
PART_SUFFIX: Final = ".part"


@dataclass(frozen=True, slots=True)
class Gap:
    """Time with no media between two fragments."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        """Length of the gap."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class ClipPart:
    """One GetClip call's worth of fragments, on fragment boundaries."""

    start: datetime
    end: datetime
    fragments: int
    size: int


@dataclass(frozen=True, slots=True)
class Summary:
    """What a list of fragments covers."""

    count: int
    recorded_seconds: float
    size: int
    start: datetime | None
    end: datetime | None
    gaps: list[Gap]


_ONE_MS: Final = timedelta(milliseconds=1)


def fragment_time(fragment: Fragment, timestamp_type: TimestampType) -> datetime:
    """The fragment's start by the chosen clock."""
    if timestamp_type == "PRODUCER_TIMESTAMP":
        return fragment.producer_timestamp
    return fragment.server_timestamp


def fragment_end(fragment: Fragment, timestamp_type: TimestampType) -> datetime:
    """Where the fragment's media ends by the chosen clock."""
    return fragment_time(fragment, timestamp_type) + timedelta(
        milliseconds=fragment.duration_ms
    )


def plan_clip_parts(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    max_fragments: int = CLIP_MAX_FRAGMENTS,
    max_bytes: int = CLIP_MAX_BYTES,
) -> list[ClipPart]:
    """Split time-ordered fragments into GetClip-sized runs.

    GetClip selects fragments by their start, end inclusive, and wants an end
    later than the start (a one-fragment part must not have start == end). So a
    part ends 1 ms before its last fragment's media ends, but always before the
    next part's first fragment starts: the parts neither overlap nor leave a
    fragment out.
    """
    parts: list[ClipPart] = []
    run: list[Fragment] = []
    size = 0

    def close(following: Fragment | None) -> None:
        start = fragment_time(run[0], timestamp_type)
        end = fragment_end(run[-1], timestamp_type) - _ONE_MS
        if following is not None:
            end = min(end, fragment_time(following, timestamp_type) - _ONE_MS)
        end = max(end, fragment_time(run[-1], timestamp_type), start + _ONE_MS)
        parts.append(ClipPart(start=start, end=end, fragments=len(run), size=size))

    for fragment in fragments:
        if run and (len(run) >= max_fragments or size + fragment.size > max_bytes):
            close(fragment)
            run, size = [], 0
        run.append(fragment)
        size += fragment.size
    if run:
        close(None)
    return parts


def find_gaps(
    fragments: Sequence[Fragment],
    timestamp_type: TimestampType,
    *,
    tolerance: timedelta = GAP_TOLERANCE,
) -> list[Gap]:
    """Holes between consecutive (time-ordered) fragments longer than tolerance."""
    gaps: list[Gap] = []
    for previous, current in itertools.pairwise(fragments):
        end = fragment_end(previous, timestamp_type)
        start = fragment_time(current, timestamp_type)
        if start - end > tolerance:
            gaps.append(Gap(end, start))
    return gaps


def summarize(fragments: Sequence[Fragment], timestamp_type: TimestampType) -> Summary:
    """Count, recorded time, bytes, first start, last end and gaps."""
    return Summary(
        count=len(fragments),
        recorded_seconds=sum(f.duration_ms for f in fragments) / 1000,
        size=sum(f.size for f in fragments),
        start=fragment_time(fragments[0], timestamp_type) if fragments else None,
        end=fragment_end(fragments[-1], timestamp_type) if fragments else None,
        gaps=find_gaps(fragments, timestamp_type),
    )


def render_name(template: str, *, stream: str, start: datetime) -> str:
    """Fill ``{stream}`` and ``{start:<strftime>}`` in; ValueError if it cannot.

    Only those two names are allowed, without attribute or index access, so a
    template cannot reach into Python objects.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template)]
    except ValueError as err:
        raise ValueError(f"Malformed template: {err}") from err
    for name in fields:
        if name is not None and name not in ("stream", "start"):
            raise ValueError(f"Unknown placeholder {{{name}}}")
    try:
        rendered = template.format(stream=stream, start=start)
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(f"Cannot fill the template: {err}") from err
    if not rendered.strip() or "\x00" in rendered:
        raise ValueError("Empty file name")
    return rendered


def has_parent_reference(path: str) -> bool:
    """True if the path climbs with ``..`` anywhere (checked before resolving)."""
    return ".." in PurePath(path).parts


def part_path(target: Path) -> Path:
    """Where ``target`` is written until it is complete."""
    return target.with_name(target.name + PART_SUFFIX)


def remove_quietly(*paths: Path) -> None:
    """Delete files that may or may not exist (executor)."""
    for path in paths:
        with contextlib.suppress(OSError):  # best effort: keep the first error
            path.unlink(missing_ok=True)


def prepare_target(target: Path, *, overwrite: bool) -> None:
    """Create the folder; FileExistsError if ``target`` exists and must stay."""
    if not overwrite and target.exists():
        raise FileExistsError(str(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # a file where the folder should be
        raise NotADirectoryError(str(target.parent)) from err


def publish(part: Path, target: Path, *, overwrite: bool) -> int:
    """Move a finished ``part`` onto ``target`` atomically; its size.

    Without ``overwrite`` a hard link makes the step fail if ``target`` appeared
    in the meantime (FileExistsError), and an existing file is never touched.
    """
    size = part.stat().st_size
    if overwrite:
        part.replace(target)
        return size
    try:
        os.link(part, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some shares)
        if target.exists():  # pragma: no cover - raced with another writer
            raise FileExistsError(str(target)) from None
        part.replace(target)
        return size
    part.unlink()
    return size


def write_file(target: Path, data: bytes, *, overwrite: bool) -> int:
    """Write ``data`` to ``target`` through a part file (executor); its size."""
    prepare_target(target, overwrite=overwrite)
    part = part_path(target)
    try:
        part.write_bytes(data)
        return publish(part, target, overwrite=overwrite)
    finally:
        remove_quietly(part)


def _add_stream_like(container: OutputContainer, template: Stream) -> Stream:
    """An output stream with ``template``'s codec parameters (no re-encoding)."""
    # PyAV >= 14 has add_stream_from_template; PyAV 13 (Home Assistant 2025.4)
    # spells it add_stream(template=...).
    from_template: Any = getattr(container, "add_stream_from_template", None)
    add_stream: Any = container.add_stream
    stream: Stream = (
        from_template(template) if from_template else add_stream(template=template)
    )
    return stream


def _layout(streams: Sequence[Stream]) -> list[tuple[str, str, int, int]]:
    """What must match for packets to be copied: kind, codec, picture size."""
    return [
        (
            stream.type,
            stream.codec_context.name,
            getattr(stream.codec_context, "width", 0),
            getattr(stream.codec_context, "height", 0),
        )
        for stream in streams
    ]


# Packets read ahead to find where a piece starts (every stream's first dts).
_ORIGIN_LOOKAHEAD: Final = 64


def _piece_packets(source: Any, inputs: list[Stream]) -> tuple[float, Iterable[Any]]:
    """A piece's packets and its origin: the earliest first dts of any stream.

    One origin per piece, in seconds, keeps audio and video (and B-frames,
    whose first dts precedes their first pts) where they were relative to each
    other. Only a few packets are held to find it.
    """
    packets = (
        p for p in source.demux(*inputs) if p.dts is not None and p.pts is not None
    )
    ahead: list[Any] = []
    firsts: dict[int, float] = {}
    for packet in packets:
        ahead.append(packet)
        firsts.setdefault(packet.stream.index, float(packet.dts * packet.time_base))
        if len(firsts) == len(inputs) or len(ahead) >= _ORIGIN_LOOKAHEAD:
            break
    origin = min(firsts.values(), default=0.0)
    return origin, itertools.chain(ahead, packets)


def join_mp4(pieces: Iterable[Path], output: Path) -> float:
    """Remux MP4 pieces one after another into ``output``; seconds of media.

    No re-encoding: packets are copied and their timestamps shifted so each
    piece starts where the previous one ended. Streams are matched by index;
    pieces must share their codec parameters (one camera, one stream).
    Memory stays flat: packets are read and written one at a time. Media
    FFmpeg cannot read or write raises ValueError.
    """
    import av  # noqa: PLC0415 - heavy; Home Assistant's stream component has it
    import av.error  # noqa: PLC0415

    try:
        return _join(pieces, output)
    except av.error.FFmpegError as err:
        raise ValueError(f"Cannot join the clip parts: {err}") from err


def _join(pieces: Iterable[Path], output: Path) -> float:
    import av  # noqa: PLC0415 - see join_mp4

    shift = 0.0
    with av.open(str(output), "w", format="mp4") as out:
        streams: list[Stream] = []
        layout: list[tuple[str, str, int, int]] = []
        for piece in pieces:
            with av.open(str(piece), "r") as source:
                inputs = list(source.streams)
                if not streams:
                    streams = [_add_stream_like(out, s) for s in inputs]
                    layout = _layout(inputs)
                elif _layout(inputs) != layout:
                    raise ValueError("The clip parts have different streams")
                end = shift
                origin, packets = _piece_packets(source, inputs)
                for packet in packets:
                    base = packet.time_base
                    offset = round((shift - origin) / base)
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, float((packet.pts + (packet.duration or 0)) * base))
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
                shift = end
    return shift
