"""clip.py on its own: planning, gaps, names, safe writes, joining."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from custom_components.kinesis_video.api import Fragment
from custom_components.kinesis_video.clip import (
    CLIP_MAX_FRAGMENTS,
    find_gaps,
    has_parent_reference,
    join_mp4,
    part_path,
    plan_clip_parts,
    prepare_target,
    publish,
    remove_quietly,
    render_name,
    summarize,
    write_file,
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
    for bad in (
        "{",
        "{other}",
        "{start.tzinfo}",
        "{stream[0]}",
        "{stream:%Y}",
        "{0}",
        "",
    ):
        with pytest.raises(ValueError, match=r"emplate|laceholder|name"):
            render_name(bad, stream="cam", start=T0)


def test_parent_references() -> None:
    assert has_parent_reference("../x")
    assert has_parent_reference("a/../../x")
    assert has_parent_reference("/media/../etc/x")
    assert not has_parent_reference("a/..b/x..mp4")


def test_publish_never_touches_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    part = part_path(target)
    part.write_bytes(b"new")
    with pytest.raises(FileExistsError):
        prepare_target(target, overwrite=False)
    with pytest.raises(FileExistsError):
        publish(part, target, overwrite=False)
    assert target.read_bytes() == b"old"
    assert publish(part, target, overwrite=True) == 3
    assert target.read_bytes() == b"new"
    assert not part.exists()


def test_publish_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File systems without hard links (FAT, some shares) still get the file.

    Mocked: no such file system is available here; os.link fails as it would.
    """

    def no_link(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "clip.mp4"
    part = part_path(target)
    part.write_bytes(b"data")
    assert publish(part, target, overwrite=False) == 4
    assert target.read_bytes() == b"data"
    assert not part.exists()


def test_write_file_and_folder_errors(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.jpg"
    assert write_file(target, b"jpeg", overwrite=False) == 4
    assert target.read_bytes() == b"jpeg"
    assert not part_path(target).exists()
    with pytest.raises(FileExistsError):
        write_file(target, b"other", overwrite=False)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        prepare_target(tmp_path / "file" / "x.jpg", overwrite=False)
    # Clean-up never raises, whatever is (not) there.
    (tmp_path / "dir").mkdir()
    remove_quietly(tmp_path / "missing", tmp_path / "dir")


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
