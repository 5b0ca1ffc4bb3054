"""Contract tests of ListFragments, GetClip, GetMediaForFragmentList, GetImages."""

from __future__ import annotations

import base64
import io
import struct
import sys
import tracemalloc
from typing import Any

import av
import boto3
import pytest
from botocore.exceptions import ParamValidationError

from kvs_emulator.framecode import read_frame_index
from kvs_emulator.matroska import read_fragment_tags
from kvs_emulator.testing import EmulatorProcess

from .helpers import (
    FRAMES_PER_FRAGMENT,
    advance_clock,
    assert_continuous,
    decode_frames,
    epoch,
    error_of,
    expected_index,
    freeze_clock,
    list_all_fragments,
    time_range,
    tps_limits,
)

MIB = 1024 * 1024
INT64_MAX = 2**63 - 1


def _starts(
    fragments: list[dict[str, Any]], field: str = "ServerTimestamp"
) -> list[int]:
    return sorted(round(epoch(f[field])) for f in fragments)


def _fragments(
    archived: Any, start: float, end: float, kind: str = "SERVER_TIMESTAMP", **kw: Any
) -> list[dict[str, Any]]:
    response = archived.list_fragments(
        FragmentSelector=time_range(start, end, kind), MaxResults=1000, **kw
    )
    assert "NextToken" not in response
    fragments: list[dict[str, Any]] = response["Fragments"]
    return fragments


def _add_stream(emulator: EmulatorProcess, name: str, **spec: Any) -> None:
    emulator.admin("POST", "streams", {"name": name, **spec})


# --- ListFragments ---------------------------------------------------------


def test_list_fragments_every_page_unordered_and_complete(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    selector = time_range(now - 1200, now - 2)  # fragment starts: 600 of them

    pages = list_all_fragments(archived, "front-door", selector, page_size=250)
    assert [len(page) for page in pages] == [250, 250, 100]
    numbers = [f["FragmentNumber"] for page in pages for f in page]
    # No fixed order, within a page or across pages...
    assert [f["FragmentNumber"] for f in pages[0]] != sorted(
        (f["FragmentNumber"] for f in pages[0]), key=int
    )
    assert numbers != sorted(numbers, key=int)
    # ...but together exactly the range, each fragment once.
    assert len(set(numbers)) == len(numbers) == 600
    every = [f for page in pages for f in page]
    assert _starts(every) == list(range(now - 1200, now, 2))

    single = archived.list_fragments(
        StreamName="front-door", FragmentSelector=selector, MaxResults=1000
    )
    assert "NextToken" not in single
    assert sorted(f["FragmentNumber"] for f in single["Fragments"]) == sorted(numbers)


def test_list_fragments_two_second_grid_and_long_numbers(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    fragments = _fragments(archived, now - 60, now - 2, StreamName="backyard")
    fragments.sort(key=lambda f: f["ServerTimestamp"])
    assert len(fragments) == 30
    starts = [epoch(f["ServerTimestamp"]) for f in fragments]
    assert starts == [float(now - 60 + 2 * i) for i in range(30)]
    for fragment in fragments:
        assert fragment["FragmentLengthInMilliseconds"] == 2000
        assert fragment["FragmentSizeInBytes"] > 0
        assert fragment["ProducerTimestamp"] == fragment["ServerTimestamp"]
        number = fragment["FragmentNumber"]
        assert number.isdigit()
        assert len(number) > 19
        assert int(number) > INT64_MAX
    # Numeric order of the (int64-overflowing) numbers is time order.
    assert [int(f["FragmentNumber"]) for f in fragments] == sorted(
        int(f["FragmentNumber"]) for f in fragments
    )


def test_list_fragments_without_selector_lists_the_archive(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    state = emulator.admin("GET", "state")
    history_start_ms = round(
        next(s for s in state["streams"] if s["StreamName"] == "front-door")[
            "history_start"
        ]
        * 1000
    )
    first = -(-history_start_ms // 2000)
    last = (now * 1000 - 2000) // 2000
    pages = list_all_fragments(archived, "front-door", None, page_size=1000)
    assert len(pages) == 4
    numbers = {f["FragmentNumber"] for page in pages for f in page}
    assert len(numbers) == last - first + 1 > 3500


def test_list_fragments_selects_by_start_with_inclusive_end(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 40
    kw = {"StreamName": "front-door"}
    # End equal to a fragment's start includes that fragment.
    assert _starts(_fragments(archived, start, start + 4, **kw)) == [
        start,
        start + 2,
        start + 4,
    ]
    assert _starts(_fragments(archived, start, start + 3.999, **kw)) == [
        start,
        start + 2,
    ]
    # A fragment that starts before StartTimestamp is out, even if it overlaps
    # (whole seconds: the botocore Home Assistant pins sends no fractions).
    assert _starts(_fragments(archived, start + 1, start + 4, **kw)) == [
        start + 2,
        start + 4,
    ]
    assert _starts(_fragments(archived, start + 1, start + 1.5, **kw)) == []
    # Start == end selects exactly the fragment starting there.
    assert _starts(_fragments(archived, start, start, **kw)) == [start]


def test_list_fragments_producer_vs_server_timestamps(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    # The camera's clock runs 5 s ahead of the service's.
    _add_stream(emulator, "skewed", history=600, producer_offset_ms=5000)
    kw = {"StreamName": "skewed"}

    by_server = _fragments(archived, now - 61, now - 57, **kw)
    by_producer = _fragments(archived, now - 61, now - 57, "PRODUCER_TIMESTAMP", **kw)
    for fragment in by_server + by_producer:
        skew = epoch(fragment["ProducerTimestamp"]) - epoch(fragment["ServerTimestamp"])
        assert skew == pytest.approx(5.0)
    assert _starts(by_server) == [now - 61, now - 59, now - 57]
    assert _starts(by_server, "ProducerTimestamp") == [now - 56, now - 54, now - 52]
    assert _starts(by_producer, "ProducerTimestamp") == [now - 60, now - 58]
    assert _starts(by_producer) == [now - 65, now - 63]
    assert not {f["FragmentNumber"] for f in by_server} & {
        f["FragmentNumber"] for f in by_producer
    }


def test_list_fragments_gap_shows_missing_fragments(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    emulator.admin("POST", "streams/front-door", {"gaps": [[now - 100, now - 80]]})
    starts = _starts(_fragments(archived, now - 120, now - 62, StreamName="front-door"))
    expected = [
        t for t in range(now - 120, now - 61, 2) if not now - 100 <= t < now - 80
    ]
    assert starts == expected
    assert len(starts) == 20
    # The other stream is untouched.
    assert len(_fragments(archived, now - 120, now - 62, StreamName="backyard")) == 30


def test_list_fragments_errors(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)

    def listing(start: float, end: float, **kw: Any) -> Any:
        return lambda: archived.list_fragments(
            StreamName=kw.pop("stream", "front-door"),
            FragmentSelector=time_range(start, end),
            **kw,
        )

    assert error_of(listing(now - 25 * 3600, now))[:2] == (
        "InvalidArgumentException",
        400,
    )
    assert error_of(listing(now, now - 10))[:2] == ("InvalidArgumentException", 400)
    # botocore checks only minimums; the service enforces MaxResults <= 1000.
    assert error_of(listing(now - 10, now, MaxResults=1001))[:2] == (
        "InvalidArgumentException",
        400,
    )
    with pytest.raises(ParamValidationError):
        listing(now - 10, now, MaxResults=0)()
    assert error_of(listing(now - 10, now, stream="ghost"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    # Exactly 24 h is allowed.
    archived.list_fragments(
        StreamName="front-door",
        FragmentSelector=time_range(now - 24 * 3600, now),
        MaxResults=1,
    )


def _pages_by_token(
    archived: Any,
    stream: str,
    selector: dict[str, Any] | None,
    page_size: int,
    between_pages: Any = None,
) -> list[list[dict[str, Any]]]:
    """Every page; the pages after the first send only NextToken, as AWS allows."""
    response = archived.list_fragments(
        StreamName=stream,
        MaxResults=page_size,
        **({} if selector is None else {"FragmentSelector": selector}),
    )
    pages = [response["Fragments"]]
    while "NextToken" in response:
        if between_pages is not None:
            between_pages()
        response = archived.list_fragments(
            StreamName=stream, MaxResults=page_size, NextToken=response["NextToken"]
        )
        pages.append(response["Fragments"])
    return pages


def test_list_fragments_next_token_alone_continues_the_query(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    selector = time_range(now - 600, now - 302)  # fragment starts: 150 of them
    one_shot = _fragments(archived, now - 600, now - 302, StreamName="front-door")

    pages = _pages_by_token(archived, "front-door", selector, page_size=40)
    assert [len(page) for page in pages] == [40, 40, 40, 30]
    numbers = [f["FragmentNumber"] for page in pages for f in page]
    assert len(set(numbers)) == len(numbers)
    assert set(numbers) == {f["FragmentNumber"] for f in one_shot}
    every = [f for page in pages for f in page]
    assert _starts(every) == list(range(now - 600, now - 300, 2))

    # The timestamp type travels in the token too.
    _add_stream(emulator, "skewed", history=600, producer_offset_ms=5000)
    by_producer = time_range(now - 100, now - 42, "PRODUCER_TIMESTAMP")
    pages = _pages_by_token(archived, "skewed", by_producer, page_size=7)
    every = [f for page in pages for f in page]
    assert _starts(every, "ProducerTimestamp") == list(range(now - 100, now - 41, 2))
    assert len(every) == len({f["FragmentNumber"] for f in every}) == 30


def test_list_fragments_pages_stay_one_listing_while_the_stream_grows(
    emulator: EmulatorProcess, archived: Any
) -> None:
    freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    _add_stream(emulator, "short", history=300)
    first_listing = {
        f["FragmentNumber"]
        for page in list_all_fragments(archived, "short", None, page_size=1000)
        for f in page
    }
    assert len(first_listing) == 150

    # New fragments arrive between pages: the pages still split the listing
    # the first page started, each fragment once.
    pages = _pages_by_token(
        archived,
        "short",
        None,
        page_size=20,
        between_pages=lambda: advance_clock(emulator, 10),
    )
    numbers = [f["FragmentNumber"] for page in pages for f in page]
    assert len(numbers) == len(set(numbers)) == 150
    assert set(numbers) == first_listing


def test_list_fragments_next_token_errors(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    selector = time_range(now - 600, now - 302)
    token = archived.list_fragments(
        StreamName="front-door", FragmentSelector=selector, MaxResults=10
    )["NextToken"]

    # Repeating the selector with the token is fine; another selector is not.
    page = archived.list_fragments(
        StreamName="front-door",
        FragmentSelector=selector,
        MaxResults=10,
        NextToken=token,
    )
    assert len(page["Fragments"]) == 10
    for other in (
        time_range(now - 500, now - 302),
        time_range(now - 600, now - 302, "PRODUCER_TIMESTAMP"),
    ):
        assert error_of(
            lambda other=other: archived.list_fragments(
                StreamName="front-door", FragmentSelector=other, NextToken=token
            )
        )[:2] == ("InvalidArgumentException", 400)
    # A token belongs to its stream.
    assert error_of(
        lambda: archived.list_fragments(StreamName="backyard", NextToken=token)
    )[:2] == ("InvalidArgumentException", 400)
    malformed = [
        "not base64!",
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"offset": "x"}').decode(),
        token[: len(token) // 2],
    ]
    for bad in malformed:
        assert error_of(
            lambda bad=bad: archived.list_fragments(
                StreamName="front-door", NextToken=bad
            )
        )[:2] == ("InvalidArgumentException", 400), bad


# --- GetClip ---------------------------------------------------------------


def _clip(archived: Any, start: float, end: float, stream: str = "front-door") -> Any:
    return archived.get_clip(
        StreamName=stream, ClipFragmentSelector=time_range(start, end)
    )


def test_get_clip_decodes_with_counter_matching_wall_clock(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 46  # 14 s into a minute: the first frame shows 140
    response = _clip(archived, start, start + 10)
    assert response["ContentType"] == "video/mp4"
    data = response["Payload"].read()
    assert len(data) == int(
        response["ResponseMetadata"]["HTTPHeaders"]["content-length"]
    )

    indices, times = decode_frames(data)
    values = assert_continuous(indices)
    # Fragments starting in [start, start + 10]: six of 2 s.
    assert len(values) == 6 * FRAMES_PER_FRAGMENT
    assert values[0] == expected_index(start * 1000) == 140
    assert times[0] == 0.0
    duration = times[-1] + 0.1
    assert 10 <= duration <= 12 + 1e-6  # asked 10 s: within one fragment


def test_get_clip_starts_at_first_fragment_after_an_unaligned_start(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    # Whole seconds: the botocore Home Assistant pins sends no fractions.
    data = _clip(archived, now - 45, now - 40)["Payload"].read()
    values = assert_continuous(decode_frames(data)[0])
    assert len(values) == 3 * FRAMES_PER_FRAGMENT
    assert values[0] == expected_index((now - 44) * 1000)


def test_get_clip_is_cut_at_200_fragments(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 898
    data = _clip(archived, start, start + 600)["Payload"].read()  # 301 fragments
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        keyframes = sum(1 for p in packets if p.is_keyframe)
        last = packets[-1]
        assert last.pts is not None
        assert last.duration is not None
        end_s = float((last.pts + last.duration) * stream.time_base)
    assert keyframes == 200
    assert len(packets) == 200 * FRAMES_PER_FRAGMENT
    assert end_s == pytest.approx(400.0)
    indices, _ = decode_frames(data, limit=1)
    assert indices[0] == expected_index(start * 1000) == 20


def test_get_clip_errors(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    # Before the stream's history began: no media in the range.
    assert error_of(lambda: _clip(archived, now - 3 * 3600, now - 2.5 * 3600))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(lambda: _clip(archived, now - 10, now - 20))[:2] == (
        "InvalidArgumentException",
        400,
    )
    # As AWS documents: the end must be later than the start, not equal to it.
    assert error_of(lambda: _clip(archived, now - 10, now - 10))[:2] == (
        "InvalidArgumentException",
        400,
    )
    assert error_of(lambda: _clip(archived, now - 25 * 3600, now))[:2] == (
        "InvalidArgumentException",
        400,
    )
    assert error_of(lambda: _clip(archived, now - 20, now - 10, "ghost"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    _add_stream(emulator, "ephemeral", history=600, retention_hours=0)
    assert error_of(lambda: _clip(archived, now - 20, now - 10, "ephemeral"))[:2] == (
        "NoDataRetentionException",
        400,
    )


def test_get_clip_of_a_stream_created_through_the_api_has_no_retention(
    emulator: EmulatorProcess, kvs: Any, archived: Any
) -> None:
    now = freeze_clock(emulator)
    kvs.create_stream(StreamName="fresh")  # DataRetentionInHours defaults to 0
    assert error_of(lambda: _clip(archived, now - 20, now - 10, "fresh"))[:2] == (
        "NoDataRetentionException",
        400,
    )
    kvs.create_stream(StreamName="kept", DataRetentionInHours=1)
    # Retained, but its camera never sent anything.
    assert error_of(lambda: _clip(archived, now - 20, now - 10, "kept"))[:2] == (
        "ResourceNotFoundException",
        404,
    )


class _BoxCounter:
    """Count top-level MP4 boxes in a byte stream without keeping it."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self._header = b""
        self._skip = 0

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            need = 8 - len(self._header)
            self._header += bytes(view[:need])
            view = view[need:]
            if len(self._header) == 8:
                size, box_type = struct.unpack(">I4s", self._header)
                assert size >= 8, f"box {box_type!r} of size {size}"
                self.counts[box_type] = self.counts.get(box_type, 0) + 1
                self._skip = size - 8
                self._header = b""

    @property
    def complete(self) -> bool:
        return not self._skip and not self._header


def test_get_clip_is_cut_below_100_mib(socket_enabled: None) -> None:
    """1 MB fragments: a 5-minute clip (150 fragments) stops under 100 MiB."""
    with EmulatorProcess(
        "--padding-bytes",
        "1000000",
        "--streams",
        "big",
        "--history",
        "10m",
        "--no-tps-limits",
        python=sys.executable,
    ) as big:
        archived = boto3.client("kinesis-video-archived-media", **big.boto3_kwargs())
        now = freeze_clock(big)
        fragments = _fragments(archived, now - 300, now - 2, StreamName="big")
        assert len(fragments) == 150
        fragment_size = max(f["FragmentSizeInBytes"] for f in fragments)
        assert fragment_size > 1_000_000

        tracemalloc.start()
        try:
            response = _clip(archived, now - 300, now - 2, "big")
            length = int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
            boxes = _BoxCounter()
            received = 0
            for chunk in response["Payload"].iter_chunks(MIB):
                received += len(chunk)
                boxes.feed(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert received == length
    assert boxes.complete
    assert received <= 100 * MIB
    assert received + fragment_size > 100 * MIB  # cut at the limit, not before
    moofs = boxes.counts[b"moof"]
    assert moofs == boxes.counts[b"mdat"] == boxes.counts[b"free"]
    assert 90 < moofs < 150
    assert boxes.counts[b"ftyp"] == boxes.counts[b"moov"] == 1
    # Streamed, not buffered: the test never held more than a few chunks.
    assert peak < 16 * MIB


# --- GetMediaForFragmentList -----------------------------------------------


def test_get_media_for_fragment_list_tags_match_list_fragments(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    _add_stream(emulator, "skewed", history=600, producer_offset_ms=5000)
    listed = _fragments(archived, now - 21, now - 13, StreamName="skewed")
    assert len(listed) == 5
    # Ask in a deliberately unsorted order: the documents come back in it.
    listed.sort(key=lambda f: f["FragmentNumber"])
    wanted = [listed[i] for i in (3, 0, 4, 1, 2)]
    response = archived.get_media_for_fragment_list(
        StreamName="skewed", Fragments=[f["FragmentNumber"] for f in wanted]
    )
    assert response["ContentType"] == "video/webm"
    data = response["Payload"].read()

    tags = read_fragment_tags(data)
    assert len(tags) == len(wanted)
    for tag, fragment in zip(tags, wanted, strict=True):
        assert tag["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] == fragment["FragmentNumber"]
        server = float(tag["AWS_KINESISVIDEO_SERVER_TIMESTAMP"])
        producer = float(tag["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"])
        assert server == pytest.approx(epoch(fragment["ServerTimestamp"]))
        assert producer == pytest.approx(epoch(fragment["ProducerTimestamp"]))
        assert producer - server == pytest.approx(5.0)

    indices, _ = decode_frames(data, "matroska")
    assert len(indices) == len(wanted) * FRAMES_PER_FRAGMENT
    for position, fragment in enumerate(wanted):
        chunk = indices[
            position * FRAMES_PER_FRAGMENT : (position + 1) * FRAMES_PER_FRAGMENT
        ]
        values = assert_continuous(chunk)
        # The camera draws its own (producer) clock into the picture.
        producer_ms = round(epoch(fragment["ProducerTimestamp"]) * 1000)
        assert values[0] == expected_index(producer_ms)


def test_get_media_for_fragment_list_errors(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    real = _fragments(archived, now - 10, now - 10, StreamName="front-door")
    number = real[0]["FragmentNumber"]

    def media(numbers: list[str], stream: str = "front-door") -> Any:
        return lambda: archived.get_media_for_fragment_list(
            StreamName=stream, Fragments=numbers
        )

    # A well-formed number of a fragment that does not exist (in the future).
    future = str(int(number) + 1000)
    for unknown in (future, "12345", number[:-1]):
        code, status, _ = error_of(media([number, unknown]))
        assert (code, status) == ("ResourceNotFoundException", 404)
    # Another stream's fragment is not this stream's.
    assert error_of(media([number], "backyard"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    # botocore enforces only the minimum list length: 1001 reach the service.
    code, status, message = error_of(media([number] * 1001))
    assert (code, status) == ("InvalidArgumentException", 400)
    assert "1000" in message
    with pytest.raises(ParamValidationError):
        media([])()
    # Exactly 1000 (repeats allowed) is fine.
    many = archived.get_media_for_fragment_list(
        StreamName="front-door", Fragments=[number] * 1000
    )["Payload"].read()
    assert len(read_fragment_tags(many)) == 1000

    _add_stream(emulator, "ephemeral", history=600, retention_hours=0)
    assert error_of(media([number], "ephemeral"))[:2] == (
        "NoDataRetentionException",
        400,
    )


# --- GetImages -------------------------------------------------------------


def _images(archived: Any, start: float, end: float, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "StreamName": "front-door",
        "ImageSelectorType": "SERVER_TIMESTAMP",
        "StartTimestamp": start,
        "EndTimestamp": end,
        "SamplingInterval": 3000,
        "Format": "JPEG",
    }
    args.update(kw)
    result: dict[str, Any] = archived.get_images(**args)
    return result


def _picture(content: str) -> tuple[str, int, int, int | None]:
    data = base64.b64decode(content)
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return (
            str(container.format.name),
            frame.width,
            frame.height,
            read_frame_index(frame.to_ndarray(format="rgb24")),
        )


@pytest.mark.parametrize(
    ("fmt", "magic", "demuxer"),
    [("JPEG", b"\xff\xd8\xff", "jpeg_pipe"), ("PNG", b"\x89PNG\r\n", "png_pipe")],
)
def test_get_images_format_and_size(
    emulator: EmulatorProcess, archived: Any, fmt: str, magic: bytes, demuxer: str
) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    # Whole seconds (the botocore Home Assistant pins sends no fractions), off
    # the 2 s fragment grid.
    moment = now - 33
    sizes = {
        (): (320, 180),
        (("WidthPixels", 160), ("HeightPixels", 90)): (160, 90),
        (("WidthPixels", 200), ("HeightPixels", 200)): (200, 200),  # as asked
        (("WidthPixels", 128),): (128, 72),  # aspect kept
        (("HeightPixels", 54),): (96, 54),
    }
    for size, (width, height) in sizes.items():
        images = _images(archived, moment, moment, Format=fmt, **dict(size))["Images"]
        assert len(images) == 1
        image = images[0]
        assert epoch(image["TimeStamp"]) == pytest.approx(moment)
        assert "Error" not in image
        assert base64.b64decode(image["ImageContent"]).startswith(magic)
        name, got_w, got_h, index = _picture(image["ImageContent"])
        assert (name, got_w, got_h) == (demuxer, width, height), size
        assert index == expected_index(round(moment * 1000))


def test_get_images_jpeg_quality(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)

    def size(quality: str) -> int:
        (image,) = _images(
            archived, now - 20, now - 20, FormatConfig={"JPEGQuality": quality}
        )["Images"]
        return len(base64.b64decode(image["ImageContent"]))

    assert size("10") < size("100")
    assert error_of(
        lambda: _images(archived, now - 20, now - 20, FormatConfig={"JPEGQuality": "0"})
    )[:2] == ("InvalidArgumentException", 400)


def test_get_images_pages_give_every_sample_with_matching_counter(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 31  # off the fragment grid, in whole seconds (see above)
    pages: list[list[dict[str, Any]]] = []
    kw: dict[str, Any] = {"SamplingInterval": 500, "MaxResults": 100, "Format": "PNG"}
    while True:
        response = _images(archived, start, start + 20, **kw)
        pages.append(response["Images"])
        if "NextToken" not in response:
            break
        kw["NextToken"] = response["NextToken"]
    assert [len(page) for page in pages] == [25, 16]
    images = [image for page in pages for image in page]
    stamps = [round(epoch(image["TimeStamp"]) * 1000) for image in images]
    assert stamps == [round(start * 1000) + 500 * i for i in range(41)]
    for image, stamp in zip(images, stamps, strict=True):
        assert "Error" not in image
        _, width, height, index = _picture(image["ImageContent"])
        assert (width, height) == (320, 180)
        assert index == expected_index(stamp), stamp


def test_get_images_max_results_smaller_than_a_page(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    first = _images(archived, now - 20, now - 10, SamplingInterval=1000, MaxResults=4)
    assert len(first["Images"]) == 4
    rest = _images(
        archived,
        now - 20,
        now - 10,
        SamplingInterval=1000,
        MaxResults=25,
        NextToken=first["NextToken"],
    )
    assert "NextToken" not in rest
    stamps = [epoch(i["TimeStamp"]) for i in first["Images"] + rest["Images"]]
    assert stamps == [float(now - 20 + i) for i in range(11)]


def test_get_images_no_media_in_a_gap(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    start = now - 40
    emulator.admin("POST", "streams/front-door", {"gaps": [[start + 4, start + 10]]})
    images = _images(archived, start, start + 14, SamplingInterval=1000)["Images"]
    assert len(images) == 15
    for image in images:
        offset = epoch(image["TimeStamp"]) - start
        if 4 <= offset < 10:
            assert image["Error"] == "NO_MEDIA"
            assert "ImageContent" not in image
        else:
            assert "Error" not in image
            index = _picture(image["ImageContent"])[3]
            assert index == expected_index(round(epoch(image["TimeStamp"]) * 1000))


def test_get_images_errors(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    assert error_of(lambda: _images(archived, now - 301, now))[:2] == (
        "InvalidArgumentException",
        400,
    )
    full = _images(archived, now - 300, now, SamplingInterval=20000)["Images"]
    assert len(full) == 16  # exactly 300 s is allowed
    # SamplingInterval has no minimum in botocore's model: the service says no.
    code, status, message = error_of(
        lambda: _images(archived, now - 10, now, SamplingInterval=199)
    )
    assert (code, status) == ("InvalidArgumentException", 400)
    assert "SamplingInterval" in message
    assert (
        len(_images(archived, now - 10, now - 9, SamplingInterval=200)["Images"]) == 6
    )
    assert error_of(lambda: _images(archived, now, now - 10))[:2] == (
        "InvalidArgumentException",
        400,
    )
    with pytest.raises(ParamValidationError):
        _images(archived, now - 10, now, WidthPixels=0)
    assert error_of(lambda: _images(archived, now - 10, now, StreamName="ghost"))[
        :2
    ] == ("ResourceNotFoundException", 404)
    _add_stream(emulator, "ephemeral", history=600, retention_hours=0)
    assert error_of(lambda: _images(archived, now - 10, now, StreamName="ephemeral"))[
        :2
    ] == ("NoDataRetentionException", 400)


def test_get_images_producer_timestamps(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    _add_stream(emulator, "skewed", history=600, producer_offset_ms=5000)
    moment = now - 31  # off the fragment grid, in whole seconds
    (by_producer,) = _images(
        archived,
        moment,
        moment,
        StreamName="skewed",
        ImageSelectorType="PRODUCER_TIMESTAMP",
    )["Images"]
    (by_server,) = _images(archived, moment, moment, StreamName="skewed")["Images"]
    # The picture shows the camera's clock: PRODUCER time t shows t itself,
    # SERVER time t shows the camera's t + 5 s.
    assert _picture(by_producer["ImageContent"])[3] == expected_index(
        round(moment * 1000)
    )
    assert _picture(by_server["ImageContent"])[3] == expected_index(
        round(moment * 1000) + 5000
    )
