"""clip.py on its own: planning, gaps, names, safe writes, joining."""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from custom_components.kinesis_video import safe_files
from custom_components.kinesis_video.clip import (
    CLIP_MAX_FRAGMENTS,
    find_gaps,
    plan_clip_parts,
    summarize,
)
from custom_components.kinesis_video.kvs import Fragment
from custom_components.kinesis_video.mp4join import join_mp4
from custom_components.kinesis_video.naming import InvalidNameError, render_name
from custom_components.kinesis_video.safe_files import (
    Folder,
    FolderChangedError,
    PathNotAllowedError,
    has_parent_reference,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _fragments(
    count: int, size: int = 1000, skip: set[int] | None = None
) -> list[Fragment]:
    return [
        Fragment(
            number=str(10**40 + index),
            producer_timestamp=T0 + timedelta(seconds=2 * index + 5),
            server_timestamp=T0 + timedelta(seconds=2 * index),
            duration_ms=2000,
            size=size,
        )
        for index in range(count)
        if index not in (skip or set())
    ]


def test_plan_splits_on_fragment_count() -> None:
    fragments = _fragments(450)
    parts = plan_clip_parts(fragments, "SERVER_TIMESTAMP")
    assert [p.fragments for p in parts] == [CLIP_MAX_FRAGMENTS, CLIP_MAX_FRAGMENTS, 50]
    ms = timedelta(milliseconds=1)
    assert parts[0].start == T0
    # Up to just before the next part's first fragment: no overlap, no hole.
    assert parts[0].end == T0 + timedelta(seconds=2 * 200) - ms
    assert parts[1].start == T0 + timedelta(seconds=2 * 200)
    # The last part ends 1 ms before its last fragment's media ends.
    assert parts[2].end == T0 + timedelta(seconds=2 * 450) - ms
    assert all(p.end > p.start for p in parts)
    producer = plan_clip_parts(fragments, "PRODUCER_TIMESTAMP")
    assert producer[0].start == T0 + timedelta(seconds=5)


def test_plan_never_asks_for_an_empty_range() -> None:
    """GetClip wants an end later than the start, even for one fragment."""
    one = plan_clip_parts(_fragments(201), "SERVER_TIMESTAMP")
    assert [p.fragments for p in one] == [200, 1]
    assert one[1].start == T0 + timedelta(seconds=400)
    assert one[1].end == T0 + timedelta(seconds=402) - timedelta(milliseconds=1)
    # A fragment without a duration still gets a 1 ms range of its own.
    instant = [replace(f, duration_ms=0) for f in _fragments(1)]
    only = plan_clip_parts(instant, "SERVER_TIMESTAMP")[0]
    assert only.end == only.start + timedelta(milliseconds=1)


def test_plan_splits_on_bytes() -> None:
    parts = plan_clip_parts(_fragments(10, size=30), "SERVER_TIMESTAMP", max_bytes=100)
    assert [p.fragments for p in parts] == [3, 3, 3, 1]
    assert [p.size for p in parts] == [90, 90, 90, 30]
    assert plan_clip_parts([], "SERVER_TIMESTAMP") == []
    # One fragment larger than the budget still gets a part of its own.
    assert (
        len(plan_clip_parts(_fragments(2, size=500), "SERVER_TIMESTAMP", max_bytes=100))
        == 2
    )


def test_gaps_and_summary() -> None:
    fragments = _fragments(10, skip={4, 5})
    gaps = find_gaps(fragments, "SERVER_TIMESTAMP")
    assert len(gaps) == 1
    assert gaps[0].start == T0 + timedelta(seconds=8)
    assert gaps[0].end == T0 + timedelta(seconds=12)
    assert gaps[0].seconds == 4
    summary = summarize(fragments, "SERVER_TIMESTAMP")
    assert summary.count == 8
    assert summary.recorded_seconds == 16
    assert summary.size == 8000
    assert summary.start == T0
    assert summary.end == T0 + timedelta(seconds=20)
    empty = summarize([], "SERVER_TIMESTAMP")
    assert (empty.count, empty.start, empty.end, empty.gaps) == (0, None, None, [])


def test_render_name() -> None:
    assert (
        render_name("{stream}_{start:%Y%m%d_%H%M%S}.mp4", stream="cam", start=T0)
        == "cam_20260101_120000.mp4"
    )
    assert render_name("plain.mp4", stream="cam", start=T0) == "plain.mp4"
    assert render_name("{start:%z}", stream="cam", start=T0) == "+0000"
    for bad, reason in (
        ("{", "template"),
        ("{other}", "template"),
        ("{start.tzinfo}", "template"),
        ("{stream[0]}", "template"),
        ("{stream:%Y}", "template"),
        ("{stream.x}", "template"),
        ("{stream!r}", "template"),
        ("{start!s:%Y}", "template"),
        ("{0}", "template"),
        ("{}", "template"),
        # Fields nested in a format spec reach attribute access.
        ("{start:{start.__class__}}", "template"),
        ("{start:%Y{stream}}", "template"),
        ("{start:{}}", "template"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("{start:%Y%n}", "control"),
        ("{start:%t}", "control"),
        ("", "empty"),
        (" ", "empty"),
        ("clips/ ", "empty"),
    ):
        with pytest.raises(InvalidNameError) as err:
            render_name(bad, stream="cam", start=T0)
        assert err.value.reason == reason, bad
        assert isinstance(err.value, ValueError)
    with pytest.raises(InvalidNameError, match="Cannot fill"):
        render_name("{start:%Y}", stream="cam", start=object())  # type: ignore[arg-type]


def test_parent_references() -> None:
    assert has_parent_reference("../x")
    assert has_parent_reference("a/../../x")
    assert has_parent_reference("/media/../etc/x")
    assert not has_parent_reference("a/..b/x..mp4")


def _allowed_under(root: Path) -> Callable[[str], bool]:
    return lambda path: Path(path).is_relative_to(root)


def test_folder_publish_never_touches_an_existing_file(tmp_path: Path) -> None:
    folder = Folder.open(tmp_path / "a", _allowed_under(tmp_path))
    assert folder.path == tmp_path / "a"
    (tmp_path / "a" / "clip.mp4").write_bytes(b"old")
    (tmp_path / "a" / "clip.mp4.part").write_bytes(b"the user's")
    part = folder.write_part("clip.mp4", b"new")
    other = folder.new_part("clip.mp4")
    # Each writer its own part, never a name a user could own.
    assert part.name != other.name
    assert part.name.startswith("clip.mp4.")
    assert part.name.endswith(".part")
    assert folder.exists("clip.mp4")
    assert not folder.exists("nothing.mp4")
    with pytest.raises(FileExistsError):
        folder.publish(part, "clip.mp4", overwrite=False)
    assert (tmp_path / "a" / "clip.mp4").read_bytes() == b"old"
    assert folder.publish(part, "clip.mp4", overwrite=True) == 3
    assert (tmp_path / "a" / "clip.mp4").read_bytes() == b"new"
    assert folder.publish(other, "empty.mp4", overwrite=False) == 0
    folder.close()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "clip.mp4",
        "clip.mp4.part",
        "empty.mp4",
    ]
    assert (tmp_path / "a" / "clip.mp4.part").read_bytes() == b"the user's"


def test_folder_parts_of_long_names(tmp_path: Path) -> None:
    """A part's name stays within the file system's 255 bytes."""
    folder = Folder.open(tmp_path, _allowed_under(tmp_path))
    name = "é" * 120 + ".mp4"  # 244 bytes
    part = folder.write_part(name, b"x")
    assert len(part.name.encode()) <= 255
    assert folder.publish(part, name, overwrite=False) == 1
    folder.close()
    assert (tmp_path / name).read_bytes() == b"x"


def test_folder_publish_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File systems without hard links (FAT, some shares) still get the file.

    Mocked: no such file system is available here; os.link fails as it would.
    """

    def no_link(*args: object, **kwargs: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    folder = Folder.open(tmp_path, _allowed_under(tmp_path))
    part = folder.write_part("clip.mp4", b"data")
    assert folder.publish(part, "clip.mp4", overwrite=False) == 4
    assert (tmp_path / "clip.mp4").read_bytes() == b"data"
    # The name is claimed exclusively: an existing file is never replaced.
    late = folder.write_part("clip.mp4", b"late")
    with pytest.raises(FileExistsError):
        folder.publish(late, "clip.mp4", overwrite=False)
    # A rename that fails leaves no empty claim behind.
    monkeypatch.setattr(os, "replace", no_link)
    with pytest.raises(PermissionError):
        folder.publish(late, "other.mp4", overwrite=False)
    folder.close()
    assert (tmp_path / "clip.mp4").read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        Folder.open(tmp_path / "file" / "x", _allowed_under(tmp_path))
    outside = tmp_path / "outside"
    outside.mkdir()
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "link").symlink_to(outside)
    with pytest.raises(PathNotAllowedError):
        Folder.open(allowed / "link", _allowed_under(allowed))
    assert list(outside.iterdir()) == []
    # Clean-up never raises, whatever is (not) there.
    folder = Folder.open(allowed, _allowed_under(allowed))
    (allowed / "dir").mkdir()
    folder.remove("missing", "dir")
    folder.close()


def test_folder_swapped_for_a_symlink(tmp_path: Path) -> None:
    """Writes stay in the folder that was checked; publishing then fails."""
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "clip.mp4").write_bytes(b"outside")
    folder = Folder.open(allowed / "clips", _allowed_under(allowed))
    (allowed / "clips").rename(allowed / "moved")
    (allowed / "clips").symlink_to(outside)
    part = folder.new_part("clip.mp4")
    # Code that opens the part by name (boto, FFmpeg) reaches the checked folder.
    part.path.write_bytes(b"new")
    assert [p.name for p in (allowed / "moved").iterdir()] == [part.name]
    for overwrite in (False, True):
        with pytest.raises(FolderChangedError):
            folder.publish(part, "clip.mp4", overwrite=overwrite)
    folder.close()
    assert list((allowed / "moved").iterdir()) == []
    assert [p.name for p in outside.iterdir()] == ["clip.mp4"]
    assert (outside / "clip.mp4").read_bytes() == b"outside"


def test_folder_removed_while_in_use(tmp_path: Path) -> None:
    folder = Folder.open(tmp_path / "gone", _allowed_under(tmp_path))
    part = folder.write_part("x.jpg", b"jpeg")
    os.unlink(tmp_path / "gone" / part.name)
    (tmp_path / "gone").rmdir()
    with pytest.raises(FolderChangedError):
        folder.publish(part, "x.jpg", overwrite=True)
    folder.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("swapped", ["clips", "parent"])
def test_folder_swapped_before_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    """A swap between the real-path check and the open: refused, nothing made.

    Mocked: the swap must land between two system calls; os.open is wrapped to
    swap just before it runs.
    """
    allowed = tmp_path / "allowed"
    (allowed / "parent" / "clips").mkdir(parents=True)
    outside = tmp_path / "outside"
    (outside / "clips").mkdir(parents=True)
    moved = allowed / "parent" / swapped if swapped == "clips" else allowed / swapped
    real_open = os.open

    def swap_then_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        moved.rename(moved.with_name("moved"))
        moved.symlink_to(outside / "clips" if swapped == "clips" else outside)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swap_then_open)
    with pytest.raises(OSError, match=r"directory|levels|clips") as err:
        Folder.open(allowed / "parent" / "clips", _allowed_under(allowed))
    monkeypatch.setattr(os, "open", real_open)
    if swapped == "clips":  # O_NOFOLLOW on the last step (Linux: ENOTDIR)
        assert err.value.errno in {errno.ELOOP, errno.ENOTDIR}
    else:  # opened outside through the parent: seen by the check
        assert isinstance(err.value, FolderChangedError)
    assert list((outside / "clips").iterdir()) == []


def test_folder_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /proc/self/fd (not Linux) parts are reached by the real path."""
    monkeypatch.setattr(safe_files, "_FD_PATHS", tmp_path / "no-proc")
    folder = Folder.open(tmp_path / "a", _allowed_under(tmp_path))
    part = folder.write_part("x.jpg", b"jpeg")
    assert part.path.parent == tmp_path / "a"
    assert folder.publish(part, "x.jpg", overwrite=False) == 4
    folder.close()


def _make_mp4(path: Path, first_index: int, frames: int, *, width: int = 64) -> None:
    """A small H.264 MP4 whose frames carry a gray level = index (for order)."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = width, 48, "yuv420p"
        video.options = {"g": "10", "bf": "0"}
        for index in range(first_index, first_index + frames):
            image = np.full((48, width, 3), (index * 8) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index - first_index
            frame.time_base = Fraction(1, 10)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)


def test_join_mp4_is_continuous(tmp_path: Path) -> None:
    pieces = [tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"]
    for number, piece in enumerate(pieces):
        _make_mp4(piece, number * 20, 20)
    output = tmp_path / "joined.mp4"
    seconds = join_mp4(pieces, output)
    assert seconds == pytest.approx(6.0)
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert len(frames) == 60
    times = [float(frame.time or 0) for frame in frames]
    assert times == pytest.approx([index / 10 for index in range(60)])
    levels = [int(frame.to_ndarray(format="rgb24")[24, 32, 0]) for frame in frames]
    expected = [(index * 8) % 256 for index in range(60)]
    assert all(abs(a - b) <= 6 for a, b in zip(levels, expected, strict=True))
    # Index first (faststart): players over HTTP need not read to the end.
    boxes = _top_level_boxes(output)
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def _top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order."""
    boxes: list[str] = []
    data = path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4])
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16])
        offset += size or len(data)
    return boxes


def test_join_mp4_refuses_different_streams(tmp_path: Path) -> None:
    _make_mp4(tmp_path / "a.mp4", 0, 10)
    _make_mp4(tmp_path / "b.mp4", 10, 10, width=32)
    with pytest.raises(ValueError, match="different streams"):
        join_mp4([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out.mp4")


def _make_av_mp4(path: Path, seconds: int) -> None:
    """H.264 with B-frames (first dts before first pts) plus AAC audio."""
    rate = 8000
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"g": "10", "bf": "2"}
        audio = out.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for index in range(seconds * 10):
            image = np.full((48, 64, 3), 128, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 10)
            out.mux(list(video.encode(frame)))
        out.mux(list(video.encode()))
        samples = 1024
        for index in range(seconds * rate // samples):
            tone = np.zeros((1, samples), dtype=np.float32)
            sound = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            sound.sample_rate = rate
            sound.pts = index * samples
            sound.time_base = Fraction(1, rate)
            out.mux(list(audio.encode(sound)))
        out.mux(list(audio.encode()))


def _first_packet_times(path: Path) -> dict[str, list[float]]:
    """Per stream kind: every packet's pts in seconds, in file order."""
    times: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                times[packet.stream.type].append(float(packet.pts * packet.time_base))
    return times


def test_join_mp4_keeps_audio_with_video(tmp_path: Path) -> None:
    """Audio and B-frame video keep their offset across every join."""
    pieces = [tmp_path / f"{name}.mp4" for name in "abc"]
    for piece in pieces:
        _make_av_mp4(piece, 2)
    alone = _first_packet_times(pieces[0])
    lead = min(alone["audio"]) - min(alone["video"])
    output = tmp_path / "joined.mp4"
    join_mp4(pieces, output)
    joined = _first_packet_times(output)
    video = sorted(joined["video"])
    audio = sorted(joined["audio"])
    per_piece_video = len(alone["video"])
    per_piece_audio = len(alone["audio"])
    assert len(video) == 3 * per_piece_video
    assert len(audio) == 3 * per_piece_audio
    for index in range(3):
        video_start = video[index * per_piece_video]
        audio_start = audio[index * per_piece_audio]
        assert audio_start - video_start == pytest.approx(lead, abs=0.002)


def test_join_mp4_reports_unreadable_media_as_value_error(tmp_path: Path) -> None:
    """What FFmpeg cannot read is a ValueError the action turns into its message."""
    (tmp_path / "a.mp4").write_bytes(b"not an mp4 at all" * 64)
    with pytest.raises(ValueError, match="Cannot join"):
        join_mp4([tmp_path / "a.mp4"], tmp_path / "out.mp4")


def test_folder_failed_write_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A still that cannot be written (disk full) leaves no part behind.

    Mocked: a full disk; the write fails as it would.
    """
    folder = Folder.open(tmp_path, _allowed_under(tmp_path))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(OSError, match="No space"):
        folder.write_part("x.jpg", b"jpeg")
    folder.close()
    assert list(tmp_path.iterdir()) == []


def test_folder_dropped_without_close(tmp_path: Path) -> None:
    """A folder nobody closes (its action was cancelled) cleans up when dropped."""
    descriptors = len(os.listdir("/proc/self/fd"))
    folder = Folder.open(tmp_path / "a", _allowed_under(tmp_path))
    folder.new_part("clip.mp4")
    folder.write_part("x.jpg", b"jpeg")
    del folder
    gc.collect()
    assert list((tmp_path / "a").iterdir()) == []
    assert len(os.listdir("/proc/self/fd")) == descriptors


def test_folder_makes_no_part_once_closed(tmp_path: Path) -> None:
    """A part asked for after the action ended (cancelled) is refused."""
    folder = Folder.open(tmp_path, _allowed_under(tmp_path))
    folder.close()
    with pytest.raises(FolderChangedError):
        folder.new_part("clip.mp4")
    assert list(tmp_path.iterdir()) == []
