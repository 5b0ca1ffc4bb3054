"""Contract tests of HLS and DASH sessions: session URLs, playlists, media."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from botocore.exceptions import ParamValidationError

from kvs_emulator.testing import EmulatorProcess

from .helpers import (
    CYCLE,
    FPS,
    FRAGMENT_S,
    FRAMES_PER_FRAGMENT,
    advance_clock,
    assert_continuous,
    decode_frames,
    epoch,
    error_of,
    expected_index,
    freeze_clock,
    http_get,
    time_range,
    tps_limits,
)

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


@dataclass
class Segment:
    """One media segment of an HLS media playlist and the tags before it."""

    uri: str
    tags: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        return parse_qs(urlsplit(self.uri).query)["FragmentNumber"][0]


@dataclass
class Playlist:
    """A parsed HLS media playlist."""

    url: str
    text: str
    header: list[str]
    segments: list[Segment]

    def tag(self, name: str) -> str | None:
        for line in self.header:
            if line.startswith(f"{name}:"):
                return line.split(":", 1)[1]
        return None

    @property
    def sequence(self) -> int:
        value = self.tag("#EXT-X-MEDIA-SEQUENCE")
        assert value is not None
        return int(value)

    @property
    def numbers(self) -> list[str]:
        return [segment.number for segment in self.segments]


def parse_playlist(url: str, text: str) -> Playlist:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    header: list[str] = []
    segments: list[Segment] = []
    pending: list[str] = []
    for line in lines[1:]:
        if line.startswith("#"):
            if segments or line.startswith(
                ("#EXTINF", "#EXT-X-DISCONTINUITY", "#EXT-X-PROGRAM-DATE-TIME")
            ):
                if line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE"):
                    header.append(line)
                else:
                    pending.append(line)
            else:
                header.append(line)
        else:
            segments.append(Segment(line, pending))
            pending = []
    # Anything after the last segment (#EXT-X-ENDLIST) is trailer.
    header += pending
    return Playlist(url, text, header, segments)


def hls_url(archived: Any, **kw: Any) -> str:
    url: str = archived.get_hls_streaming_session_url(
        StreamName=kw.pop("StreamName", "front-door"), **kw
    )["HLSStreamingSessionURL"]
    return url


def dash_url(archived: Any, **kw: Any) -> str:
    url: str = archived.get_dash_streaming_session_url(
        StreamName=kw.pop("StreamName", "front-door"), **kw
    )["DASHStreamingSessionURL"]
    return url


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["SessionToken"][0]


def fetch_text(url: str) -> str:
    status, _, body = http_get(url)
    assert status == 200, (url, body)
    return body.decode()


def media_playlist_url(master_url: str) -> str:
    master = fetch_text(master_url)
    uris = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert len(uris) == 1
    return urljoin(master_url, uris[0])


def media_playlist(master_url: str) -> Playlist:
    url = media_playlist_url(master_url)
    return parse_playlist(url, fetch_text(url))


def refetch(playlist: Playlist) -> Playlist:
    return parse_playlist(playlist.url, fetch_text(playlist.url))


def starts_by_number(
    archived: Any, start: float, end: float, stream: str = "front-door"
) -> dict[str, int]:
    response = archived.list_fragments(
        StreamName=stream, FragmentSelector=time_range(start, end), MaxResults=1000
    )
    return {
        f["FragmentNumber"]: round(epoch(f["ServerTimestamp"]))
        for f in response["Fragments"]
    }


def on_demand(start: float, end: float, **kw: Any) -> dict[str, Any]:
    return {
        "PlaybackMode": "ON_DEMAND",
        "HLSFragmentSelector": time_range(start, end),
        **kw,
    }


# --- HLS: shapes ---------------------------------------------------------------


def test_hls_master_and_media_playlist_shapes(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    url = hls_url(archived, PlaybackMode="LIVE")
    parts = urlsplit(url)
    assert url.startswith(emulator.url)
    assert parts.path == "/hls/v1/getHLSMasterPlaylist.m3u8"
    token = token_of(url)

    master = fetch_text(url)
    assert master.startswith("#EXTM3U\n")
    assert "#EXT-X-STREAM-INF:" in master
    assert re.search(r'CODECS="avc1\.[0-9a-f]{6}"', master)
    assert "RESOLUTION=320x180" in master
    uri = next(line for line in master.splitlines() if not line.startswith("#"))
    assert uri == f"getHLSMediaPlaylist.m3u8?SessionToken={token}&TrackNumber=1"

    playlist = media_playlist(url)
    assert playlist.tag("#EXT-X-TARGETDURATION") == "2"
    assert playlist.tag("#EXT-X-MAP") == (
        f'URI="getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=1"'
    )
    assert "#EXT-X-ENDLIST" not in playlist.text
    assert len(playlist.segments) == 5
    for segment in playlist.segments:
        assert re.fullmatch(
            rf"getMP4MediaFragment\.mp4\?FragmentNumber=\d{{20,}}"
            rf"&SessionToken={re.escape(token)}&TrackNumber=1",
            segment.uri,
        )
        assert "#EXTINF:2.000," in segment.tags
    # The window is the newest five fragments, oldest first.
    starts = starts_by_number(archived, now - 10, now - 2)
    assert playlist.numbers == sorted(starts, key=starts.__getitem__)

    status, headers, init = http_get(
        urljoin(playlist.url, "getMP4InitFragment.mp4")
        + f"?SessionToken={token}&TrackNumber=1"
    )
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert init[4:8] == b"ftyp"
    status, headers, body = http_get(urljoin(playlist.url, playlist.segments[-1].uri))
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert body[4:8] == b"moof"
    indices, _ = decode_frames(init + body)
    values = assert_continuous(indices)
    assert len(values) == FRAMES_PER_FRAGMENT
    assert values[0] == expected_index((now - 2) * 1000)


def test_hls_live_plays_in_pyav(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    url = hls_url(archived, PlaybackMode="LIVE")
    # A live playlist never ends: stop after 20 frames (the clock is frozen,
    # so ffmpeg would otherwise wait for new segments).
    indices, _ = decode_frames(url, limit=20)
    values = assert_continuous(indices)
    assert len(values) == 20
    window = {expected_index((now - 10) * 1000 + 100 * i) for i in range(100)}
    assert set(values) <= window


def test_hls_live_window_slides_as_the_clock_advances(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    url = hls_url(archived, PlaybackMode="LIVE")
    before = media_playlist(url)
    assert len(before.segments) == 5

    advance_clock(emulator, 4)
    after = refetch(before)
    assert len(after.segments) == 5
    assert after.sequence == before.sequence + 2
    assert after.numbers[:3] == before.numbers[2:]
    newest = starts_by_number(archived, now, now + 2)
    assert sorted(newest, key=newest.__getitem__) == after.numbers[3:]

    advance_clock(emulator, 60)
    later = refetch(before)
    assert later.sequence == before.sequence + 32
    assert not set(later.numbers) & set(before.numbers)


def test_hls_live_max_results(emulator: EmulatorProcess, archived: Any) -> None:
    freeze_clock(emulator)
    url = hls_url(archived, PlaybackMode="LIVE", MaxMediaPlaylistFragmentResults=2)
    assert len(media_playlist(url).segments) == 2


def test_hls_on_demand_lists_the_range_and_plays(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 52  # 8 s into a minute
    url = hls_url(archived, **on_demand(start, start + 10))
    playlist = media_playlist(url)
    assert playlist.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert playlist.tag("#EXT-X-PLAYLIST-TYPE") == "VOD"
    starts = starts_by_number(archived, start, start + 10)
    assert playlist.numbers == sorted(starts, key=starts.__getitem__)
    assert len(playlist.segments) == 6

    indices, times = decode_frames(url)
    values = assert_continuous(indices)
    assert len(values) == 6 * FRAMES_PER_FRAGMENT
    assert values[0] == expected_index(start * 1000) == 80
    assert times[-1] - times[0] + 0.1 == pytest.approx(12.0)


def test_hls_on_demand_max_results(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    url = hls_url(
        archived, **on_demand(now - 100, now - 20), MaxMediaPlaylistFragmentResults=3
    )
    playlist = media_playlist(url)
    starts = starts_by_number(archived, now - 100, now - 96)
    assert playlist.numbers == sorted(starts, key=starts.__getitem__)
    assert "#EXT-X-ENDLIST" in playlist.text


def test_hls_live_replay_follows_the_clock(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 60
    url = hls_url(
        archived,
        PlaybackMode="LIVE_REPLAY",
        HLSFragmentSelector={
            "FragmentSelectorType": "SERVER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": start, "EndTimestamp": start + 8},
        },
    )
    playlist = media_playlist(url)
    starts = starts_by_number(archived, start, start + 8)
    ordered = sorted(starts, key=starts.__getitem__)
    assert playlist.numbers == ordered[:1]
    assert "#EXT-X-ENDLIST" not in playlist.text

    advance_clock(emulator, 4)
    playlist = refetch(playlist)
    assert playlist.numbers == ordered[:3]
    assert "#EXT-X-ENDLIST" not in playlist.text

    advance_clock(emulator, 10)
    playlist = refetch(playlist)
    assert playlist.numbers == ordered
    assert playlist.text.rstrip().endswith("#EXT-X-ENDLIST")


def test_hls_program_date_time(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    url = hls_url(
        archived, **on_demand(now - 30, now - 24), DisplayFragmentTimestamp="ALWAYS"
    )
    playlist = media_playlist(url)
    starts = starts_by_number(archived, now - 30, now - 24)
    assert len(playlist.segments) == 4
    for segment in playlist.segments:
        (stamp,) = [t for t in segment.tags if t.startswith("#EXT-X-PROGRAM-DATE-TIME")]
        shown = datetime.fromisoformat(stamp.split(":", 1)[1])
        assert shown.timestamp() == starts[segment.number]

    plain = media_playlist(hls_url(archived, **on_demand(now - 30, now - 24)))
    assert "#EXT-X-PROGRAM-DATE-TIME" not in plain.text


def test_hls_discontinuity_modes(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    start = now - 40
    emulator.admin("POST", "streams/front-door", {"gaps": [[start + 6, start + 10]]})
    starts = starts_by_number(archived, start, start + 20)
    assert sorted(starts.values()) == [
        start + t for t in (0, 2, 4, 10, 12, 14, 16, 18, 20)
    ]

    def playlist(**kw: Any) -> Playlist:
        return media_playlist(hls_url(archived, **on_demand(start, start + 20, **kw)))

    gapped = playlist(DiscontinuityMode="ON_DISCONTINUITY")
    marked = [
        starts[s.number] for s in gapped.segments if "#EXT-X-DISCONTINUITY" in s.tags
    ]
    assert marked == [start + 10]  # right after the gap, nowhere else
    assert gapped.text.count("#EXT-X-DISCONTINUITY\n") == 1

    never = playlist(DiscontinuityMode="NEVER")
    assert "#EXT-X-DISCONTINUITY\n" not in never.text
    assert len(never.segments) == 9

    always = playlist(DiscontinuityMode="ALWAYS")
    assert always.text.count("#EXT-X-DISCONTINUITY\n") >= len(always.segments) - 1

    # Without a gap in the range, ON_DISCONTINUITY marks nothing.
    smooth = media_playlist(
        hls_url(
            archived,
            **on_demand(start + 10, start + 20, DiscontinuityMode="ON_DISCONTINUITY"),
        )
    )
    assert "#EXT-X-DISCONTINUITY\n" not in smooth.text
    assert len(smooth.segments) == 6


def test_hls_mpeg_ts(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    start = now - 36
    url = hls_url(archived, **on_demand(start, start + 6, ContainerFormat="MPEG_TS"))
    playlist = media_playlist(url)
    assert playlist.tag("#EXT-X-MAP") is None
    assert len(playlist.segments) == 4
    token = token_of(url)
    for segment in playlist.segments:
        assert re.fullmatch(
            rf"getTSFragment\.ts\?FragmentNumber=\d+&SessionToken={re.escape(token)}"
            r"&TrackNumber=1",
            segment.uri,
        )
    starts = starts_by_number(archived, start, start + 6)
    segment = playlist.segments[1]
    status, headers, body = http_get(urljoin(playlist.url, segment.uri))
    assert status == 200
    assert headers["Content-Type"] == "video/mp2t"
    assert body[0] == 0x47
    assert len(body) % 188 == 0
    values = assert_continuous(decode_frames(body, "mpegts")[0])
    assert len(values) == FRAMES_PER_FRAGMENT
    assert values[0] == expected_index(starts[segment.number] * 1000)

    values = assert_continuous(decode_frames(url)[0])
    assert len(values) == 4 * FRAMES_PER_FRAGMENT
    assert values[0] == expected_index(start * 1000)


# --- HLS: errors and session lifetime -----------------------------------------


def test_hls_live_on_an_offline_camera(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    emulator.admin("POST", "streams/front-door", {"online": False})
    advance_clock(emulator, 10)
    assert hls_url(archived, PlaybackMode="LIVE")  # the last fragment is recent
    advance_clock(emulator, 21)  # 31 s without a fragment
    for call in (
        lambda: hls_url(archived, PlaybackMode="LIVE"),
        lambda: dash_url(archived, PlaybackMode="LIVE"),
    ):
        assert error_of(call)[:2] == ("ResourceNotFoundException", 404)
    # The archive is still there.
    assert hls_url(archived, **on_demand(now - 20, now - 10))
    assert hls_url(archived, PlaybackMode="LIVE", StreamName="backyard")


def test_hls_argument_errors(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    bad = {
        "live with a range": {
            "PlaybackMode": "LIVE",
            "HLSFragmentSelector": time_range(now - 20, now - 10),
        },
        "on demand without a range": {"PlaybackMode": "ON_DEMAND"},
        "live replay without a start": {"PlaybackMode": "LIVE_REPLAY"},
        "range over 24 h": on_demand(now - 25 * 3600, now),
        "end before start": on_demand(now - 10, now - 20),
        "end equal to start": on_demand(now - 10, now - 10),
        "expires above 12 h": {"PlaybackMode": "LIVE", "Expires": 43201},
        "max results above 5000": {
            "PlaybackMode": "LIVE",
            "MaxMediaPlaylistFragmentResults": 5001,
        },
        "unknown container": {"ContainerFormat": "MKV"},
    }
    for name, kwargs in bad.items():
        assert error_of(lambda kw=kwargs: hls_url(archived, **kw))[:2] == (
            "InvalidArgumentException",
            400,
        ), name
    # botocore validates the minimum of Expires itself: no request is sent.
    with pytest.raises(ParamValidationError, match="Expires"):
        hls_url(archived, PlaybackMode="LIVE", Expires=299)
    with pytest.raises(ParamValidationError, match="Expires"):
        dash_url(archived, PlaybackMode="LIVE", Expires=299)
    assert error_of(lambda: dash_url(archived, PlaybackMode="LIVE", Expires=43201))[
        :2
    ] == ("InvalidArgumentException", 400)
    for expires in (300, 43200):
        assert hls_url(archived, PlaybackMode="LIVE", Expires=expires)
    # No media in the range.
    assert error_of(
        lambda: hls_url(archived, **on_demand(now - 3 * 3600, now - 2.5 * 3600))
    )[:2] == ("ResourceNotFoundException", 404)
    assert error_of(lambda: hls_url(archived, StreamName="ghost"))[:2] == (
        "ResourceNotFoundException",
        404,
    )


def test_unsupported_media_type(emulator: EmulatorProcess, archived: Any) -> None:
    freeze_clock(emulator)
    emulator.admin("POST", "streams", {"name": "mic", "history": 600})
    emulator.admin("POST", "streams/mic", {"media_type": "audio/aac"})
    for call in (
        lambda: hls_url(archived, StreamName="mic"),
        lambda: dash_url(archived, StreamName="mic"),
    ):
        assert error_of(call)[:2] == ("UnsupportedStreamMediaTypeException", 400)


def test_session_expires(emulator: EmulatorProcess, archived: Any) -> None:
    now = freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    url = hls_url(archived, **on_demand(now - 20, now - 10), Expires=300)
    playlist = media_playlist(url)
    token = token_of(url)
    urls = [
        url,
        playlist.url,
        urljoin(url, f"getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=1"),
        urljoin(url, playlist.segments[0].uri),
    ]
    dash = dash_url(
        archived,
        PlaybackMode="ON_DEMAND",
        DASHFragmentSelector=time_range(now - 20, now - 10),
        Expires=300,
    )
    urls.append(dash)
    advance_clock(emulator, 299)
    for each in urls:
        assert http_get(each)[0] == 200, each
    advance_clock(emulator, 2)
    for each in urls:
        status, _, body = http_get(each)
        assert status == 403, each
        assert b"expired" in body


def test_eleventh_session_closes_the_first(
    emulator: EmulatorProcess, archived: Any
) -> None:
    freeze_clock(emulator)
    tps_limits(emulator, enabled=False)
    dash = dash_url(archived, PlaybackMode="LIVE")
    urls = [hls_url(archived, PlaybackMode="LIVE") for _ in range(10)]
    assert all(http_get(url)[0] == 200 for url in urls)
    urls.append(hls_url(archived, PlaybackMode="LIVE"))
    assert http_get(urls[0])[0] == 403
    assert http_get(media_playlist_url(urls[1]))[0] == 200
    assert all(http_get(url)[0] == 200 for url in urls[1:])
    # The cap is per stream and protocol.
    assert http_get(dash)[0] == 200
    assert (
        http_get(hls_url(archived, PlaybackMode="LIVE", StreamName="backyard"))[0]
        == 200
    )
    assert http_get(urls[1])[0] == 200


def test_unknown_session_token(emulator: EmulatorProcess, archived: Any) -> None:
    url = hls_url(archived, PlaybackMode="LIVE")
    forged = url.replace(token_of(url), "not-a-token")
    assert http_get(forged)[0] == 403
    assert http_get(url.split("?")[0])[0] == 403


# --- DASH --------------------------------------------------------------------


def parse_mpd(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    return root


def segment_list(root: ET.Element) -> ET.Element:
    found = root.find("d:Period/d:AdaptationSet/d:Representation/d:SegmentList", MPD_NS)
    assert found is not None
    return found


def test_dash_on_demand_manifest_plays(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    start = now - 44
    url = dash_url(
        archived,
        PlaybackMode="ON_DEMAND",
        DASHFragmentSelector=time_range(start, start + 10),
    )
    assert urlsplit(url).path == "/dash/v1/getDASHManifest.mpd"
    status, headers, body = http_get(url)
    assert status == 200
    assert headers["Content-Type"].startswith("application/dash+xml")
    root = parse_mpd(body.decode())
    assert root.get("type") == "static"
    assert root.get("mediaPresentationDuration") == "PT12.000S"
    representation = root.find("d:Period/d:AdaptationSet/d:Representation", MPD_NS)
    assert representation is not None
    assert representation.get("width") == "320"
    assert representation.get("height") == "180"
    assert re.fullmatch(r"avc1\.[0-9a-f]{6}", representation.get("codecs", ""))

    segments = segment_list(root)
    timescale = int(segments.get("timescale", "1"))
    offset = int(segments.get("presentationTimeOffset", "0"))
    init = segments.find("d:Initialization", MPD_NS)
    assert init is not None
    timeline = segments.findall("d:SegmentTimeline/d:S", MPD_NS)
    media = [s.get("media", "") for s in segments.findall("d:SegmentURL", MPD_NS)]
    assert len(timeline) == len(media) == 6
    starts = starts_by_number(archived, start, start + 10)
    numbers = [parse_qs(urlsplit(m).query)["FragmentNumber"][0] for m in media]
    assert numbers == sorted(starts, key=starts.__getitem__)
    # Period time of each segment: (S@t - presentationTimeOffset) / timescale.
    period_times = [(int(s.get("t", "0")) - offset) / timescale for s in timeline]
    assert period_times == [2.0 * i for i in range(6)]
    assert {int(s.get("d", "0")) for s in timeline} == {2 * timescale}

    # PyAV's FFmpeg has no DASH demuxer (built without libxml2), so play the
    # manifest as a DASH client does: resolve and fetch init + segments.
    status, _, init_bytes = http_get(urljoin(url, init.get("sourceURL", "")))
    assert status == 200
    payload = init_bytes
    for uri, entry in zip(media, timeline, strict=True):
        status, _, segment = http_get(urljoin(url, uri))
        assert status == 200
        assert segment[4:8] == b"moof"
        # The segment's media time (tfdt) is where the timeline says it is.
        _, times = decode_frames(init_bytes + segment, limit=1)
        assert times[0] == pytest.approx(int(entry.get("t", "0")) / timescale)
        payload += segment
    indices, _ = decode_frames(payload)
    values = assert_continuous(indices)
    assert len(values) == 6 * FRAMES_PER_FRAGMENT
    assert values[0] == expected_index(start * 1000) == 160


def _live_segments(root: ET.Element) -> dict[str, tuple[float, float]]:
    """SegmentURL -> (period start, duration) in seconds."""
    segments = segment_list(root)
    timescale = int(segments.get("timescale", "1"))
    offset = int(segments.get("presentationTimeOffset", "0"))
    timeline = segments.findall("d:SegmentTimeline/d:S", MPD_NS)
    media = segments.findall("d:SegmentURL", MPD_NS)
    assert len(timeline) == len(media)
    return {
        m.get("media", ""): (
            (int(s.get("t", "0")) - offset) / timescale,
            int(s.get("d", "0")) / timescale,
        )
        for m, s in zip(media, timeline, strict=True)
    }


def test_dash_live_manifest_is_dynamic(
    emulator: EmulatorProcess, archived: Any
) -> None:
    now = freeze_clock(emulator)
    url = dash_url(archived, PlaybackMode="LIVE")
    root = parse_mpd(fetch_text(url))
    assert root.get("type") == "dynamic"
    assert root.get("minimumUpdatePeriod")
    published = datetime.fromisoformat(root.get("publishTime", ""))
    assert published.timestamp() == now
    start = datetime.fromisoformat(root.get("availabilityStartTime", "")).timestamp()
    segments = _live_segments(root)
    numbers = [parse_qs(urlsplit(m).query)["FragmentNumber"][0] for m in segments]
    starts = starts_by_number(archived, now - 10, now - 2)
    assert numbers == sorted(starts, key=starts.__getitem__)
    # Each segment becomes available when its fragment has ended: the newest
    # one just now.
    ends = [start + period + duration for period, duration in segments.values()]
    assert ends == [float(now - 8 + 2 * i) for i in range(5)]

    advance_clock(emulator, 2)
    root = parse_mpd(fetch_text(url))
    assert datetime.fromisoformat(
        root.get("availabilityStartTime", "")
    ).timestamp() == (start)
    moved = _live_segments(root)
    assert list(moved)[:4] == list(segments)[1:]
    # A segment keeps its place on the period timeline across updates.
    for media in list(moved)[:4]:
        assert moved[media] == segments[media]


# --- admin: sessions and media shape ---------------------------------------------


def test_admin_expires_sessions_of_one_stream(
    emulator: EmulatorProcess, archived: Any
) -> None:
    freeze_clock(emulator)
    front = hls_url(archived, PlaybackMode="LIVE")
    back = hls_url(archived, PlaybackMode="LIVE", StreamName="backyard")
    expired = emulator.admin("POST", "sessions/expire", {"stream": "front-door"})
    assert expired == {"expired": 1}
    assert http_get(front)[0] == 403
    assert http_get(back)[0] == 200
    assert emulator.admin("POST", "sessions/expire", {}) == {"expired": 1}
    assert http_get(back)[0] == 403
    # A new session works again.
    assert http_get(hls_url(archived, PlaybackMode="LIVE"))[0] == 200


def test_admin_state_matches_what_the_tests_assume(
    emulator: EmulatorProcess,
) -> None:
    state = emulator.admin("GET", "state")
    assert not state["clock_frozen"]
    assert state["tps_limits"]
    assert state["fragment_ms"] == FRAGMENT_S * 1000
    assert state["fps"] == FPS
    assert state["frames_per_cycle"] == CYCLE
    assert (state["width"], state["height"]) == (320, 180)
    assert [s["StreamName"] for s in state["streams"]] == ["backyard", "front-door"]
    assert all(s["online"] for s in state["streams"])
    now = freeze_clock(emulator)
    state = emulator.admin("GET", "state")
    assert state["clock_frozen"]
    assert state["now"] == now
    latest = state["streams"][0]["latest_fragment"]
    assert latest["server"] == now - FRAGMENT_S


# --- CORS: a browser on another origin fetches the session URLs -----------------

ORIGIN = "http://homeassistant.local:8123"


def cors_request(
    url: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """A request as a browser's player sends it from another origin."""
    request = urllib.request.Request(
        url, method=method, headers={"Origin": ORIGIN, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def playback_urls(emulator: EmulatorProcess, archived: Any) -> dict[str, str]:
    """One URL of every kind a player fetches: HLS (fMP4 and TS), DASH, errors."""
    now = freeze_clock(emulator)
    master = hls_url(archived, **on_demand(now - 20, now - 10))
    playlist = media_playlist(master)
    ts_master = hls_url(
        archived, **on_demand(now - 20, now - 10, ContainerFormat="MPEG_TS")
    )
    ts_playlist = media_playlist(ts_master)
    mpd = dash_url(
        archived,
        PlaybackMode="ON_DEMAND",
        DASHFragmentSelector=time_range(now - 20, now - 10),
    )
    segments = segment_list(parse_mpd(fetch_text(mpd)))
    dash_init = segments.find("d:Initialization", MPD_NS)
    dash_media = segments.find("d:SegmentURL", MPD_NS)
    assert dash_init is not None
    assert dash_media is not None
    init = playlist.tag("#EXT-X-MAP")
    assert init is not None
    missing = urljoin(playlist.url, playlist.segments[0].uri).replace(
        f"FragmentNumber={playlist.numbers[0]}", "FragmentNumber=1"
    )
    return {
        "master playlist": master,
        "media playlist": playlist.url,
        "init segment": urljoin(playlist.url, init.removeprefix('URI="')[:-1]),
        "media segment": urljoin(playlist.url, playlist.segments[0].uri),
        "TS segment": urljoin(ts_playlist.url, ts_playlist.segments[0].uri),
        "DASH manifest": mpd,
        "DASH init segment": urljoin(mpd, dash_init.get("sourceURL", "")),
        "DASH media segment": urljoin(mpd, dash_media.get("media", "")),
        "missing fragment (404)": missing,
        "unknown session (403)": master.replace(token_of(master), "not-a-token"),
    }


def test_playback_urls_allow_any_origin(
    emulator: EmulatorProcess, archived: Any
) -> None:
    """Playback URLs carry their credential (the token): any page may read them."""
    for name, url in playback_urls(emulator, archived).items():
        for method in ("GET", "HEAD"):
            status, headers, body = cors_request(url, method)
            expected = {"404": 404, "403": 403}.get(name[-4:-1], 200)
            assert status == expected, (name, method, body)
            assert headers.get("Access-Control-Allow-Origin") == "*", (name, method)
            exposed = {
                h.strip().lower()
                for h in headers.get("Access-Control-Expose-Headers", "").split(",")
            }
            assert "content-length" in exposed, (name, method)


def test_playback_urls_answer_the_preflight(
    emulator: EmulatorProcess, archived: Any
) -> None:
    """hls.js and dash.js may send Range: the browser asks first with OPTIONS."""
    urls = playback_urls(emulator, archived)
    calls_before = emulator.calls()["total"]
    for name, url in urls.items():
        status, headers, body = cors_request(
            url,
            "OPTIONS",
            **{
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range,x-player",
            },
        )
        assert status in (200, 204), (name, status, body)
        assert body == b""
        assert headers.get("Access-Control-Allow-Origin") == "*", name
        methods = {
            m.strip()
            for m in headers.get("Access-Control-Allow-Methods", "").split(",")
        }
        assert {"GET", "HEAD", "OPTIONS"} <= methods, name
        allowed = {
            h.strip().lower()
            for h in headers.get("Access-Control-Allow-Headers", "").split(",")
        }
        assert {"range", "x-player"} <= allowed, name
        assert int(headers.get("Access-Control-Max-Age", "0")) > 0, name
    # A preflight is no playback call: nothing is logged (or metered).
    assert emulator.calls()["total"] == calls_before
