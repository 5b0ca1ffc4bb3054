"""Lossless joins of MP4 pieces (PyAV, imported lazily), piece by piece.

Plain Python, no Home Assistant imports. Every call blocks: run it in an executor.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.stream import Stream


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


class Mp4Joiner:
    """Remux MP4 pieces one after another into ``output``, a piece per call.

    No re-encoding: packets are copied and their timestamps shifted so each
    piece starts where the previous one ended. Streams are matched by index;
    pieces must share their codec parameters (one camera, one stream). Memory
    stays flat: packets are read and written one at a time. A piece can be
    added as soon as it is downloaded, so joining runs beside the downloads;
    ``close`` writes the index at the front (faststart: the clip plays at once
    over HTTP). Media FFmpeg cannot read or write raises ValueError. Each call
    blocks (executor); calls must not overlap.
    """

    def __init__(self, output: Path) -> None:
        """Nothing is opened before the first piece."""
        self.output = output
        self.seconds = 0.0
        self._out: OutputContainer | None = None
        self._streams: list[Stream] = []
        self._layout: list[tuple[str, str, int, int]] = []

    def add(self, piece: Path) -> None:
        """Append one piece."""
        import av  # noqa: PLC0415 - heavy; Home Assistant's stream component has it
        import av.error  # noqa: PLC0415

        try:
            with av.open(str(piece), "r") as source:
                self._append(source)
        except av.error.FFmpegError as err:
            raise ValueError(f"Cannot join the clip parts: {err}") from err

    def _append(self, source: Any) -> None:
        import av  # noqa: PLC0415 - see add

        inputs = list(source.streams)
        if self._out is None:
            self._out = av.open(
                str(self.output), "w", format="mp4", options={"movflags": "faststart"}
            )
            self._streams = [_add_stream_like(self._out, s) for s in inputs]
            self._layout = _layout(inputs)
        elif _layout(inputs) != self._layout:
            raise ValueError("The clip parts have different streams")
        shift = end = self.seconds
        origin, packets = _piece_packets(source, inputs)
        for packet in packets:
            base = packet.time_base
            offset = round((shift - origin) / base)
            packet.pts += offset
            packet.dts += offset
            end = max(end, float((packet.pts + (packet.duration or 0)) * base))
            packet.stream = self._streams[packet.stream.index]
            self._out.mux(packet)
        self.seconds = end

    def close(self) -> float:
        """Finish the file; seconds of media joined."""
        import av.error  # noqa: PLC0415 - see add

        if (out := self._out) is not None:
            self._out = None
            try:
                out.close()
            except av.error.FFmpegError as err:
                raise ValueError(f"Cannot join the clip parts: {err}") from err
        return self.seconds


def join_mp4(pieces: Iterable[Path], output: Path) -> float:
    """Join MP4 pieces into ``output`` in one go; seconds of media (see Mp4Joiner)."""
    joiner = Mp4Joiner(output)
    try:
        for piece in pieces:
            joiner.add(piece)
    except BaseException:
        with contextlib.suppress(ValueError):  # the first error is the one to tell
            joiner.close()
        raise
    return joiner.close()
