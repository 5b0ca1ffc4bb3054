"""Files for the archive actions: ranges, names, safe writes, lossless joins.

Plain Python (PyAV imported lazily), no Home Assistant imports: every function
here can be tested on its own. The blocking ones run in an executor.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import string
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final, Literal

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
# Of a target's name, this many bytes are kept in its part files' names (file names
# may have 255 bytes; the random tail needs room).
_PART_NAME_KEEP: Final = 120
_FIELDS: Final = ("stream", "start")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)

type NameProblem = Literal["template", "control", "empty"]


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


class InvalidNameError(ValueError):
    """A file name template that cannot be used; ``reason`` says why."""

    def __init__(self, reason: NameProblem, detail: str) -> None:
        """Keep the reason for a translated message."""
        super().__init__(detail)
        self.reason: NameProblem = reason


def _check_fields(template: str, *, nested: bool) -> None:
    """Allow ``{stream}`` and ``{start}`` / ``{start:<strftime>}``, nothing more.

    Format specs may hold fields of their own, which reach attribute access:
    every level is parsed, and a spec must be plain text.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise InvalidNameError("template", f"Malformed template: {err}") from err
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if nested:
            raise InvalidNameError(
                "template", f"Placeholder {{{name}}} inside a date format"
            )
        if name not in _FIELDS:
            raise InvalidNameError("template", f"Unknown placeholder {{{name}}}")
        if conversion is not None or (spec and name != "start"):
            raise InvalidNameError(
                "template", f"Placeholder {{{name}}} takes no conversion or format"
            )
        if spec:
            _check_fields(spec, nested=True)


def render_name(template: str, *, stream: str, start: datetime) -> str:
    """Fill ``{stream}`` and ``{start:<strftime>}`` in; InvalidNameError if not.

    Only those two names are allowed, without attribute or index access or
    nested fields, so a template cannot reach into Python objects. Control
    characters (NUL, line breaks) are refused, in the template and the result.
    """
    if _CONTROL.search(template):
        raise InvalidNameError("control", "Control character in the template")
    _check_fields(template, nested=False)
    try:
        rendered = template.format(stream=stream, start=start)
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise InvalidNameError("template", f"Cannot fill the template: {err}") from err
    if _CONTROL.search(rendered):
        raise InvalidNameError("control", "Control character in the file name")
    try:
        rendered.encode()
    except UnicodeEncodeError as err:  # a lone surrogate, from YAML
        raise InvalidNameError("control", f"Not a character: {err}") from err
    if not rendered.strip() or not PurePath(rendered).name.strip():
        raise InvalidNameError("empty", "Empty file name")
    return rendered


def has_parent_reference(path: str) -> bool:
    """True if the path climbs with ``..`` anywhere (checked before resolving)."""
    return ".." in PurePath(path).parts


class PathNotAllowedError(PermissionError):
    """The folder's real path is not one Home Assistant may write to."""


class FolderChangedError(OSError):
    """The folder was moved or replaced (by a symlink, say) while in use."""


# Where a process sees its open descriptors as paths (Linux). Opening
# /proc/self/fd/N reaches the very file descriptor N was opened on, whatever
# its name now leads to, so code that opens files by name (boto downloads,
# FFmpeg) cannot be redirected by a symlink put in its place. Elsewhere parts
# are reached through the folder's real path.
_FD_PATHS: Final = Path("/proc/self/fd")


@dataclass(frozen=True, slots=True)
class Part:
    """A part file: its ``name`` in the folder, and the ``path`` to open it by."""

    name: str
    path: Path


def _discard(folder_fd: int, parts: dict[str, int]) -> None:
    """Delete unpublished parts and close every descriptor (once)."""
    for name, part_fd in parts.items():
        with contextlib.suppress(OSError):  # best effort: keep the first error
            os.unlink(name, dir_fd=folder_fd)
        with contextlib.suppress(OSError):
            os.close(part_fd)
    parts.clear()
    with contextlib.suppress(OSError):
        os.close(folder_fd)


class Folder:
    """A folder checked once, then written only through descriptors.

    Part files get a random name of their own, created exclusively and kept
    open, so two writers (or a user's ``name.part``) never share one, and a
    part swapped for a symlink is never written through. Publishing is an
    atomic link or rename inside the folder's descriptor, after checking the
    name still holds the part. Swapping the folder, or one of its parents, for
    a symlink after the check cannot redirect a write: publishing fails with
    FolderChangedError. Unpublished parts are deleted on ``close`` (or when the
    folder is dropped, e.g. by a cancelled action). Every method blocks: run
    them in an executor.
    """

    def __init__(self, path: Path, fd: int) -> None:
        """Use ``open``."""
        self.path = path
        self._fd = fd
        self._parts: dict[str, int] = {}  # unpublished part name -> its descriptor
        self._lock = threading.Lock()  # parts may be made in several threads
        self._closed = False
        self._finalizer = weakref.finalize(self, _discard, fd, self._parts)

    @classmethod
    def open(cls, path: Path, allowed: Callable[[str], bool]) -> Folder:
        """Create ``path`` if needed and open it if its real path is allowed."""
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:  # a file where the folder should be
            raise NotADirectoryError(str(path)) from err
        real = Path(os.path.realpath(path))
        if not allowed(str(real)):
            raise PathNotAllowedError(str(path))
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC)
        folder = cls(real, fd)
        try:
            folder.check()
        except BaseException:
            folder.close()
            raise
        return folder

    def check(self) -> None:
        """FolderChangedError unless the folder is still at its real path."""
        try:
            same = Path(os.path.realpath(self.path)) == self.path and (
                os.path.samestat(os.stat(self.path), os.fstat(self._fd))
            )
        except OSError:
            same = False
        if not same:
            raise FolderChangedError(str(self.path))

    def exists(self, name: str) -> bool:
        """True if anything (a symlink too) has ``name`` in the folder."""
        try:
            os.stat(name, dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def new_part(self, name: str) -> Part:
        """Create an empty part file for ``name``, kept open until published."""
        kept = name.encode()[:_PART_NAME_KEEP].decode(errors="ignore")
        part = f"{kept}.{secrets.token_hex(6)}{PART_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
        with self._lock:
            if self._closed:  # the action ended (cancelled) while this waited
                raise FolderChangedError(str(self.path))
            part_fd = os.open(part, flags, 0o666, dir_fd=self._fd)
            self._parts[part] = part_fd
        if _FD_PATHS.is_dir():
            return Part(part, _FD_PATHS / str(part_fd))
        return Part(part, self.path / part)

    def write_part(self, name: str, data: bytes) -> Part:
        """A new part file for ``name`` holding ``data``."""
        part = self.new_part(name)
        with os.fdopen(os.dup(self._parts[part.name]), "wb") as file:
            file.write(data)
        return part

    def publish(self, part: Part, name: str, *, overwrite: bool) -> int:
        """Move a finished part onto ``name`` atomically; its size.

        Without ``overwrite`` a hard link makes the step fail if ``name``
        appeared in the meantime (FileExistsError): an existing file is never
        touched. With it, a rename replaces the file (or a symlink, never
        followed) in one step.
        """
        self.check()
        fd = self._fd
        part_fd = self._parts[part.name]
        try:
            held = os.stat(part.name, dir_fd=fd, follow_symlinks=False)
        except OSError as err:
            raise FolderChangedError(str(self.path / part.name)) from err
        opened = os.fstat(part_fd)
        if not os.path.samestat(held, opened):  # the part's name was replaced
            raise FolderChangedError(str(self.path / part.name))
        if overwrite:
            os.replace(part.name, name, src_dir_fd=fd, dst_dir_fd=fd)
        else:
            self._publish_new(part.name, name)
        with self._lock:
            del self._parts[part.name]
        os.close(part_fd)
        return opened.st_size

    def _publish_new(self, part: str, name: str) -> None:
        """Publish ``part`` as ``name``, which must not exist."""
        fd = self._fd
        try:
            os.link(part, name, src_dir_fd=fd, dst_dir_fd=fd)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links (FAT, some shares)
            # Claim the name first: only one writer can create it.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
            os.close(os.open(name, flags, 0o666, dir_fd=fd))
            try:
                os.replace(part, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                self.remove(name)  # the empty claim, not someone's file
                raise
            return
        os.unlink(part, dir_fd=fd)

    def remove(self, *names: str) -> None:
        """Delete files of the folder that may or may not exist."""
        for name in names:
            with contextlib.suppress(OSError):  # best effort: keep the first error
                os.unlink(name, dir_fd=self._fd)

    def close(self) -> None:
        """Delete the parts not published, then let the folder go."""
        with self._lock:
            self._closed = True
            self._finalizer()


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
    # Index first (faststart): the joined clip plays at once over HTTP.
    with av.open(
        str(output), "w", format="mp4", options={"movflags": "faststart"}
    ) as out:
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
