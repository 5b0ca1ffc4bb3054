"""Export pipelines: a range of a stream saved into a file of an open folder.

No Home Assistant imports. Each pipeline takes a ``Source`` (client, stream,
executor), what to save and a ``Destination``, and returns what it saved.
Blocking steps (files, PyAV) run through the source's executor. Nothing is
published unless the whole export succeeded, and a failed or cancelled export
deletes the part files it made: it leaves no file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

from .clip import ClipPart, plan_clip_parts
from .kvs import (
    FragmentList,
    Image,
    ImageFormat,
    KinesisVideoClient,
    NoMediaError,
    RunInExecutor,
    StillsRequest,
    TimestampType,
)
from .mp4join import Mp4Joiner
from .safe_files import Folder, Part

# GetClip downloads at once: their starts are paced 1.1 s apart per stream
# anyway, so a second one in flight keeps the network busy while a part is
# joined.
CLIP_DOWNLOADS_IN_FLIGHT: Final = 2
# Downloaded parts waiting to be joined, at most: the disk holds the output
# and a few parts, not the whole clip twice, if joining falls behind.
CLIP_PARTS_AHEAD: Final = 3
# GetImages: at most 300 s per call.
IMAGES_WINDOW: Final = timedelta(seconds=300)
_ONE_MS: Final = timedelta(milliseconds=1)


class FileTakenError(FileExistsError):
    """A file of the export appeared (or was there) where it must not be replaced."""

    def __init__(self, path: Path) -> None:
        """Name the file that is in the way."""
        super().__init__(str(path))
        self.path = path


class MediaJoinError(ValueError):
    """The downloaded parts of a clip could not be joined (FFmpeg refused them)."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where an export reads: a stream, its times read as ``timestamp_type``."""

    client: KinesisVideoClient
    arn: str
    run: RunInExecutor
    timestamp_type: TimestampType = "SERVER_TIMESTAMP"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an export lands: a file (or, for stills, a prefix) of an open folder."""

    folder: Folder
    name: str
    overwrite: bool


@dataclass(frozen=True, slots=True)
class ClipExport:
    """A published clip and the fragments it holds."""

    size: int
    fragments: FragmentList
    parts: int


@dataclass(frozen=True, slots=True)
class FragmentsExport:
    """A published Matroska file of the asked fragments."""

    size: int
    count: int
    # A range's fragments, oldest first (none when numbers were asked).
    fragments: FragmentList | None = None


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What GetImages is asked for, and how each still is named."""

    interval: timedelta
    image_format: ImageFormat
    name: Callable[[Image], str]
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class ImagesExport:
    """Published stills (their paths), and the sampled times that had none."""

    files: list[str]
    no_media: list[datetime]
    errors: list[tuple[datetime, str]]


@dataclass(slots=True)
class _Parts:
    """The part files an export made, deleted again unless it succeeds."""

    source: Source
    into: Destination
    made: list[Part] = field(default_factory=list)

    async def new(self) -> Part:
        making = asyncio.ensure_future(
            self.source.run(self.into.folder.new_part, self.into.name)
        )
        try:
            part = await asyncio.shield(making)
        except asyncio.CancelledError:
            # Cancelled while the file was being made: it is deleted with the rest.
            await _finish(asyncio.wait([making]))
            if not making.cancelled() and making.exception() is None:
                self.made.append(making.result())
            raise
        self.made.append(part)
        return part

    async def drop(self, part: Part) -> None:
        await self.source.run(self.into.folder.drop, part)

    async def publish(self, part: Part) -> int:
        into = self.into
        publish = partial(
            into.folder.publish, part, into.name, overwrite=into.overwrite
        )
        return await self.source.run(publish)

    async def drop_all(self) -> None:
        """Delete every part made (a published one is gone already)."""
        folder = self.into.folder

        def drop() -> None:
            for part in self.made:
                folder.drop(part)

        await _finish(self.source.run(drop))


async def _finish[T](step: Awaitable[T]) -> None:
    """Run a clean-up step to its end, even if the caller is cancelled (again)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(asyncio.ensure_future(step))


async def export_clip(
    source: Source, start: datetime, end: datetime, into: Destination
) -> ClipExport:
    """Save [start, end] as one MP4; longer than one GetClip allows too.

    Parts are downloaded a few ahead, as GetClip's pacing allows, and each is
    appended to the output as soon as it (and those before it) arrived, so the
    join runs beside the downloads and the total is close to the downloads alone.
    """
    fragments, _ = await source.client.list_fragments(
        source.arn, start, end, timestamp_type=source.timestamp_type
    )
    if not fragments:
        raise NoMediaError("No fragments in the range")
    plan = plan_clip_parts(fragments, source.timestamp_type)
    parts = _Parts(source, into)
    try:
        if len(plan) == 1:
            output = await parts.new()
            await _download(source, plan[0], output)
        else:
            output = await _download_and_join(parts, plan)
        size = await parts.publish(output)
    except BaseException:
        await parts.drop_all()
        raise
    return ClipExport(size=size, fragments=fragments, parts=len(plan))


async def _download(source: Source, part: ClipPart, into: Part) -> None:
    await source.client.get_clip_to_file(
        source.arn,
        part.start,
        part.end,
        into.path,
        timestamp_type=source.timestamp_type,
    )


def _join(joiner: Mp4Joiner, piece: Path | None) -> None:
    """Append ``piece`` (None: finish the file); MediaJoinError if FFmpeg refuses."""
    try:
        if piece is None:
            joiner.close()
        else:
            joiner.add(piece)
    except ValueError as err:
        raise MediaJoinError(str(err)) from err


async def _download_and_join(parts: _Parts, plan: Sequence[ClipPart]) -> Part:
    """Download the parts (a few at once, in order) and join them as they come."""
    source = parts.source
    output = await parts.new()
    joiner = Mp4Joiner(output.path)
    ahead = asyncio.Semaphore(CLIP_PARTS_AHEAD)
    in_flight = asyncio.Semaphore(CLIP_DOWNLOADS_IN_FLIGHT)

    async def download(part: ClipPart) -> Part:
        # Semaphores are first come, first served: parts start in order.
        await ahead.acquire()  # released once the part is joined
        async with in_flight:
            piece = await parts.new()
            await _download(source, part, piece)
            return piece

    downloads = [asyncio.ensure_future(download(part)) for part in plan]
    # The join running in its thread: never two at once, nor a close beside it.
    joining: asyncio.Future[None] | None = None
    try:
        for pending in downloads:
            piece = await pending
            joining = asyncio.ensure_future(source.run(_join, joiner, piece.path))
            await asyncio.shield(joining)
            # The piece is in the output now: free its disk space at once.
            await parts.drop(piece)
            ahead.release()
        joining = asyncio.ensure_future(source.run(_join, joiner, None))
        await asyncio.shield(joining)
    except BaseException:
        for pending in downloads:
            pending.cancel()
        # Cancelled downloads delete their files before the parts go.
        await _finish(asyncio.gather(*downloads, return_exceptions=True))
        if joining is not None:
            await _finish(asyncio.wait([joining]))
        with contextlib.suppress(MediaJoinError, OSError):
            await _finish(source.run(_join, joiner, None))
        raise
    return output


async def export_fragments(
    source: Source, numbers: list[str], into: Destination
) -> FragmentsExport:
    """Save the fragments ``numbers`` as one Matroska file."""
    parts = _Parts(source, into)
    try:
        output = await parts.new()
        await source.client.get_media_for_fragments_to_file(
            source.arn, numbers, output.path
        )
        size = await parts.publish(output)
    except BaseException:
        await parts.drop_all()
        raise
    return FragmentsExport(size=size, count=len(numbers))


async def export_fragment_range(
    source: Source, start: datetime, end: datetime, into: Destination
) -> FragmentsExport:
    """Save the fragments that start in [start, end] as one Matroska file.

    Any length of range: GetMediaForFragmentList's 1000 numbers a call are
    the client's batches, appended to the one file.
    """
    fragments, _ = await source.client.list_fragments(
        source.arn, start, end, timestamp_type=source.timestamp_type
    )
    if not fragments:
        raise NoMediaError("No fragments in the range")
    saved = await export_fragments(source, fragments.numbers, into)
    return FragmentsExport(size=saved.size, count=saved.count, fragments=fragments)


async def export_images(
    source: Source,
    start: datetime,
    end: datetime,
    request: ImageRequest,
    into: Destination,
) -> ImagesExport:
    """Save a still every ``interval`` of [start, end]: all of them or none.

    GetImages covers at most 300 s a call: the range is read in windows of
    whole sampling steps, so the samples keep one rhythm. Every still is
    staged as a part; they are published together once every window came.
    Each still's name is ``into.name`` followed by ``request.name(image)``.
    """
    step = request.interval * (IMAGES_WINDOW // request.interval)
    stills = StillsRequest(
        sampling_ms=round(request.interval.total_seconds() * 1000),
        image_format=request.image_format,
        width=request.width,
        height=request.height,
        timestamp_type=source.timestamp_type,
    )
    staged: list[tuple[Part, str]] = []
    no_media: list[datetime] = []
    errors: list[tuple[datetime, str]] = []
    window = start
    try:
        while True:
            # The last window ends at ``end`` (inclusive): no extra, billed
            # call for a range of whole windows.
            last = window + step >= end
            window_end = end if last else window + step - _ONE_MS
            images = await source.client.get_images(
                source.arn, window, window_end, stills
            )
            for image in images:
                if image.content is None and image.error == "NO_MEDIA":
                    no_media.append(image.timestamp)
                elif image.content is None:
                    errors.append((image.timestamp, image.error or "unknown"))
            ready = [
                (into.name + request.name(i), i.content)
                for i in images
                if i.content is not None
            ]
            await source.run(_stage_images, into, ready, staged)
            if last:
                break
            window += step
        files = await source.run(_publish_images, into, staged)
    except BaseException:
        await _finish(source.run(_drop_staged, into.folder, staged))
        raise
    return ImagesExport(files=files, no_media=no_media, errors=errors)


def _stage_images(
    into: Destination,
    names_and_data: list[tuple[str, bytes]],
    staged: list[tuple[Part, str]],
) -> None:
    """Write stills as part files (executor), adding (part, name) to ``staged``."""
    folder = into.folder
    for name, data in names_and_data:
        if not into.overwrite and folder.exists(name):
            raise FileTakenError(folder.path / name)
        staged.append((folder.write_part(name, data), name))


def _publish_images(into: Destination, staged: list[tuple[Part, str]]) -> list[str]:
    """Move every staged still into place once all windows succeeded."""
    folder = into.folder
    published: list[str] = []
    try:
        for part, name in staged:
            try:
                folder.publish(part, name, overwrite=into.overwrite)
            except FileExistsError as err:  # appeared while the stills came
                raise FileTakenError(folder.path / name) from err
            published.append(name)
    except BaseException:
        if not into.overwrite:  # those are new files: the call leaves nothing
            folder.remove(*published)
        raise
    return [str(folder.path / name) for name in published]


def _drop_staged(folder: Folder, staged: list[tuple[Part, str]]) -> None:
    """Delete the stills' parts (published ones are gone already)."""
    for part, _ in staged:
        folder.drop(part)
