"""Media browser: account -> stream -> day -> hour -> spans, playing over HLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import av
import pytest
from homeassistant.components import media_source
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSourceItem,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.kvs import Fragment
from custom_components.kinesis_video.media_source import (
    KinesisVideoMediaSource,
    async_get_archive,
)
from custom_components.kinesis_video.recordings import (
    CachePolicy,
    RecordingIndex,
    merge_spans,
    split_hours,
)
from kvs_emulator.framecode import read_frame_index
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, setup_entry

ROOT = f"media-source://{DOMAIN}"
DASH = "\u2013"


@pytest.fixture(autouse=True)
def whole_days(hass: HomeAssistant, tmp_path: Path) -> Iterator[None]:
    """Days answer once fully listed; thumbnails cached in the test's folder.

    The day view's time budget depends on the machine's speed; the budget itself
    is tested in test_media_thumbnails.py with a latency that makes it certain.
    """
    hass.config.config_dir = str(tmp_path / "config")
    with patch("custom_components.kinesis_video.media_source.DAY_BUDGET_S", None):
        yield


async def _browse(hass: HomeAssistant, identifier: str = "") -> BrowseMediaSource:
    result = await media_source.async_browse_media(
        hass, f"{ROOT}/{identifier}" if identifier else ROOT
    )
    assert isinstance(result, BrowseMediaSource)
    return result


def _ids(result: BrowseMediaSource) -> list[str]:
    return [child.media_content_id for child in result.children or []]


def _hour_start(value: datetime) -> datetime:
    local = dt_util.as_local(value)
    return local.replace(minute=0, second=0, microsecond=0)


def _decode(url: str, frames: int) -> list[int]:
    """Open the HLS URL with PyAV and decode a few frames (executor)."""
    indexes: list[int] = []
    with av.open(url, timeout=30) as container:
        for frame in container.decode(video=0):
            indexes.append(read_frame_index(frame.to_ndarray(format="rgb24")))
            if len(indexes) >= frames:
                break
    return indexes


async def test_browse_to_span_and_play(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Every level, a gap shown as a gap, and a span that plays."""
    now = datetime.fromtimestamp(time.time(), UTC)
    hour = _hour_start(now - timedelta(minutes=60))  # fully recorded, in the past
    gap = (hour + timedelta(minutes=20), hour + timedelta(minutes=21))
    # A second gap runs over the end of the hour: shown at its end.
    late = (hour + timedelta(minutes=59), hour + timedelta(minutes=61))
    # ... and two more leave a 20 s span at 45:30.
    short = [
        (hour + timedelta(minutes=45), hour + timedelta(minutes=45, seconds=30)),
        (hour + timedelta(minutes=45, seconds=50), hour + timedelta(minutes=46)),
    ]
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[t.timestamp() for t in pair] for pair in (gap, late, *short)]},
    )
    await setup_entry(hass, config_entry)
    entry_id = config_entry.entry_id

    root = await _browse(hass)
    assert _ids(root) == [f"{ROOT}/{entry_id}"]
    account = await _browse(hass, entry_id)
    assert account.title == config_entry.title
    assert _ids(account) == [
        f"{ROOT}/{entry_id}/front-door",
        f"{ROOT}/{entry_id}/backyard",
    ]

    stream = await _browse(hass, f"{entry_id}/front-door")
    day = hour.date().isoformat()
    assert f"{ROOT}/{entry_id}/front-door/{day}" in _ids(stream)
    assert all(not c.can_play for c in stream.children or [])

    day_result = await _browse(hass, f"{entry_id}/front-door/{day}")
    hour_id = f"{entry_id}/front-door/{day}/{hour.strftime('%H%z')}"
    assert f"{ROOT}/{hour_id}" in _ids(day_result)
    hour_item = next(
        c for c in day_result.children or [] if c.media_content_id.endswith(hour_id)
    )
    # Short titles for the gallery, the detail one level down.
    assert hour_item.title == f"{hour:%H:%M}"

    listing = await _browse(hass, hour_id)
    assert listing.title.endswith(": 57 min 20 s in 4 spans")
    children = listing.children or []
    assert [c.can_play for c in children] == [True, False] * 4
    first, hole, second = children[:3]
    assert children[4].title.endswith("(20 s)")
    assert first.title == f"{hour:%H:%M}{DASH}{gap[0]:%H:%M}"
    assert children[-1].title.startswith("No video ")
    assert hole.title.startswith("No video ")
    assert not hole.can_play
    assert not hole.can_expand
    # The media panel resolves whatever is clicked: a gap says there is no video.
    with pytest.raises(Unresolvable) as err:
        await media_source.async_resolve_media(hass, hole.media_content_id, None)
    assert err.value.translation_key == "media_no_video"
    assert err.value.translation_placeholders == {
        "start": dt_util.as_local(gap[0]).strftime("%H:%M:%S"),
        "end": dt_util.as_local(gap[1]).strftime("%H:%M:%S"),
    }
    start_ms, end_ms = (
        int(v) for v in first.media_content_id.rsplit("/", 1)[1].split("-")
    )
    assert start_ms == hour.timestamp() * 1000
    assert end_ms == gap[0].timestamp() * 1000
    second_start = int(second.media_content_id.rsplit("/", 1)[1].split("-")[0])
    assert second_start == gap[1].timestamp() * 1000

    # Listings are cached: browsing again asks nothing.
    before = (await calls(hass, emulator)).get("ListFragments")
    await _browse(hass, hour_id)
    await _browse(hass, f"{entry_id}/front-door/{day}")
    assert (await calls(hass, emulator)).get("ListFragments") == before

    played = await media_source.async_resolve_media(hass, second.media_content_id, None)
    assert played.mime_type == "application/x-mpegURL"
    assert "getHLSMasterPlaylist.m3u8" in played.url
    frames = await hass.async_add_executor_job(_decode, played.url, 5)
    assert len(frames) == 5
    # Consecutive frames of the emulator's test pattern: real, decodable video.
    assert frames == list(range(frames[0], frames[0] + 5))


def _afternoon_zone() -> str:
    """A fixed-offset zone where it is between 14:00 and 20:59 now."""
    utc_hour = dt_util.utcnow().hour
    offset = next(o for o in range(-12, 15) if 14 <= (utc_hour + o) % 24 <= 20)
    return f"Etc/GMT{-offset:+d}"  # POSIX signs: Etc/GMT-5 is UTC+5


async def test_day_listing_in_parallel(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A day is listed hour by hour, within the per-stream rate (no throttling).

    In a zone where it is afternoon now, whenever the test runs: the day then
    holds more empty hours (before the 2 h of history) than the listing's
    concurrency, which is what the one probe for them all is for.
    """
    await hass.config.async_set_time_zone(_afternoon_zone())
    await setup_entry(hass, config_entry)
    hour = _hour_start(dt_util.utcnow() - timedelta(minutes=60))
    day = hour.date().isoformat()
    await admin(hass, emulator, "DELETE", "calls")
    result = await _browse(hass, f"{config_entry.entry_id}/backyard/{day}")
    titles = [c.title for c in result.children or []]
    assert f"{hour:%H:%M}" in titles
    log = await hass.async_add_executor_job(emulator.calls)
    errors = [c for c in log["calls"] if c["error"]]
    assert errors == []
    # Every hour of the day up to now is known afterwards: the newest listed, the
    # older ones (before the 2 h of history) found empty by one probe for all.
    index = (await async_get_archive(hass)).indexes[config_entry.entry_id]
    arn = next(
        a for a in config_entry.runtime_data.coordinator.stream_arns if "backyard" in a
    )
    day_start = dt_util.as_utc(dt_util.start_of_local_day(hour))
    known = [
        index.known_spans(arn, a, b, "SERVER_TIMESTAMP")
        for a, b in split_hours(day_start, dt_util.as_utc(hour) + timedelta(hours=1))
    ]
    assert None not in known
    assert known[-1]  # the hour an hour ago holds video
    assert len(known) >= 14
    assert log["counts"]["ListFragments"] < len(known)
    # The hour being recorded ends with a span, not with a gap (once it holds
    # a fragment: in its first seconds it holds none yet).
    current = _hour_start(dt_util.utcnow())
    if (wait := 5 - (dt_util.utcnow() - current).total_seconds()) > 0:
        await asyncio.sleep(wait)
    listing = await _browse(
        hass,
        f"{config_entry.entry_id}/backyard/{current.date().isoformat()}"
        f"/{current.strftime('%H%z')}",
    )
    assert listing.children
    assert listing.children[-1].can_play
    # A day before the retention period lists nothing.
    assert (
        await _browse(hass, f"{config_entry.entry_id}/backyard/2020-01-01")
    ).children == []


async def test_cache_expires(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Listings are kept briefly, then asked again (and stale ones dropped)."""
    await setup_entry(hass, config_entry)
    arn = config_entry.runtime_data.coordinator.stream_arns[0]
    now = [0.0]
    index = RecordingIndex(
        config_entry.runtime_data.client,
        cache=CachePolicy(seconds=60, clock=lambda: now[0]),
    )
    # Ten seconds ago: no fragment of the range is still being recorded, so the
    # listing after the cache expired holds the same fragments.
    end = dt_util.utcnow() - timedelta(seconds=10)
    start = end - timedelta(minutes=2)
    await admin(hass, emulator, "DELETE", "calls")
    first = await index.fragments(arn, start, end, "SERVER_TIMESTAMP")
    assert await index.has_recordings(arn, start, end, "SERVER_TIMESTAMP")
    assert await index.fragments(arn, start, end, "SERVER_TIMESTAMP") == first
    assert (await calls(hass, emulator))["ListFragments"] == 2
    now[0] = 61.0
    assert await index.fragments(arn, start, end, "SERVER_TIMESTAMP") == first
    assert await index.has_recordings(arn, start, end, "SERVER_TIMESTAMP")
    assert (await calls(hass, emulator))["ListFragments"] == 4


async def test_cache_is_bounded(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Browsing many ranges within the cache's lifetime keeps only the newest."""
    await setup_entry(hass, config_entry)
    arn = config_entry.runtime_data.coordinator.stream_arns[0]
    now = [0.0]
    index = RecordingIndex(
        config_entry.runtime_data.client,
        cache=CachePolicy(
            max_fragments=40,  # one minute of 2 s fragments is 30
            max_probes=2,
            clock=lambda: now[0],
        ),
    )
    end = _hour_start(dt_util.utcnow())
    minutes = [
        (end - timedelta(minutes=m + 1), end - timedelta(minutes=m)) for m in range(3)
    ]
    await admin(hass, emulator, "DELETE", "calls")
    for start, stop in minutes:
        assert len(await index.fragments(arn, start, stop, "SERVER_TIMESTAMP")) == 30
        assert await index.has_recordings(arn, start, stop, "SERVER_TIMESTAMP")
        assert index.cached_fragments == 30
    assert (await calls(hass, emulator))["ListFragments"] == 6
    # The newest are still cached, the oldest were dropped to make room.
    await index.fragments(arn, *minutes[-1], "SERVER_TIMESTAMP")
    await index.has_recordings(arn, *minutes[-1], "SERVER_TIMESTAMP")
    await index.has_recordings(arn, *minutes[-2], "SERVER_TIMESTAMP")
    assert (await calls(hass, emulator))["ListFragments"] == 6
    await index.fragments(arn, *minutes[0], "SERVER_TIMESTAMP")
    await index.has_recordings(arn, *minutes[0], "SERVER_TIMESTAMP")
    assert (await calls(hass, emulator))["ListFragments"] == 8
    # Listed twice at once (both missed the cache): held once.
    await asyncio.gather(
        *(index.fragments(arn, *minutes[1], "SERVER_TIMESTAMP") for _ in range(2))
    )
    assert index.cached_fragments == 30
    # Expired listings go at the next look-up, whatever it looks up.
    now[0] = 61.0
    await index.has_recordings(arn, *minutes[1], "SERVER_TIMESTAMP")
    assert index.cached_fragments == 0


async def test_opened_hour_overtakes_the_listings_left_to_go_on(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """An hour opened while a day's other hours wait is listed first, and once.

    A stream recording all day, 0.3 s per ListFragments (a fault rule) and no
    time budget: the day answers with nothing listed and its listings go on in
    the background. The oldest hour, opened then, is listed while some of them
    are still under way, and the background listing of that hour takes its
    answer instead of listing it again.
    """
    await setup_entry(hass, config_entry)
    created = await admin(
        hass, emulator, "POST", "streams", {"name": "all-day", "history": 20 * 3600}
    )
    arn = created["StreamARN"]
    kind = "SERVER_TIMESTAMP"
    end = dt_util.as_utc(_hour_start(dt_util.utcnow()))
    hours = [(a, b, True) for a, b in split_hours(end - timedelta(hours=10), end)]
    client = config_entry.runtime_data.client
    await admin(hass, emulator, "DELETE", "calls")
    # What one hour costs (pages), with a fresh index.
    assert await RecordingIndex(client).spans(arn, *hours[0][:2], kind)
    per_hour = (await calls(hass, emulator, "all-day"))["ListFragments"]
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "ListFragments", "count": -1, "latency_s": 0.3},
    )
    await admin(hass, emulator, "DELETE", "calls")
    index = RecordingIndex(client)
    assert await index.hours(arn, hours, kind, budget=0) == [None] * len(hours)
    oldest = await index.spans(arn, *hours[0][:2], kind, final=True)
    assert oldest
    # Private: the background listings are what the test is about.
    assert index._inflight
    await asyncio.gather(*index._inflight.values(), *index._background)
    listed = await index.hours(arn, hours, kind, budget=0)
    assert all(listed)
    assert listed[0] == oldest
    # One probe for the older hours, then every hour listed once.
    # Its own stream's calls: the others' health polls may come meanwhile.
    listings = (await calls(hass, emulator, "all-day"))["ListFragments"]
    assert listings == 1 + per_hour * len(hours)


async def test_first_recorded_hour_found_by_halving(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A day's first span costs a few probes, not one per empty hour before it."""
    await setup_entry(hass, config_entry)
    arn = config_entry.runtime_data.coordinator.stream_arns[0]
    kind = "SERVER_TIMESTAMP"
    now = dt_util.utcnow()
    end = dt_util.as_utc(_hour_start(now)) + timedelta(hours=1)
    hours = [(a, b, False) for a, b in split_hours(end - timedelta(hours=20), end)]
    index = RecordingIndex(config_entry.runtime_data.client)
    await admin(hass, emulator, "DELETE", "calls")
    spans = await index.first_spans(arn, hours, kind)
    assert spans
    # The emulator's 2 h of history began within the first recorded hour.
    state = await admin(hass, emulator, "GET", "state")
    began = next(s for s in state["streams"] if s["StreamARN"] == arn)
    began_ms = round(began["history_start"] * 1000)
    assert spans[0].start_ms - began_ms < 3000
    first = next(
        i for i, (a, b, _) in enumerate(hours) if b.timestamp() * 1000 > began_ms
    )
    # Every hour before it is known empty, with no call now.
    assert all(index.known_spans(arn, a, b, kind) == [] for a, b, _ in hours[:first])
    made = (await calls(hass, emulator))["ListFragments"]
    assert made <= 2 + len(hours).bit_length() + 2  # probes + the hour's pages
    assert made < first
    assert await index.first_spans(arn, hours, kind) == spans
    assert (await calls(hass, emulator))["ListFragments"] == made
    # No hour recorded: found with a probe of the first hour and one of them all.
    before = [
        (a - timedelta(hours=6), b - timedelta(hours=6), f) for a, b, f in hours[:4]
    ]
    assert await index.first_spans(arn, before, kind) is None
    assert (await calls(hass, emulator))["ListFragments"] == made + 2
    assert await index.first_spans(arn, [], kind) is None


async def test_listings_dropped_on_unload(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """An unloaded (or removed) account's cached listings do not stay behind."""
    await setup_entry(hass, config_entry)
    source = KinesisVideoMediaSource(hass, await async_get_archive(hass))
    day = dt_util.now().date().isoformat()
    identifier = f"{config_entry.entry_id}/front-door/{day}"
    await source.async_browse_media(MediaSourceItem(hass, DOMAIN, identifier, None))
    assert source.archive.indexes
    await hass.config_entries.async_unload(config_entry.entry_id)
    assert not source.archive.indexes


async def test_saved_clips(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """Clips saved under the media dir play through the local media source."""
    hass.config.media_dirs = {"local": str(tmp_path)}
    folder = tmp_path / "kinesis_video" / "front-door"
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"\0" * 16)
    (folder / "notes.txt").write_text("not a clip")
    await setup_entry(hass, config_entry)
    entry_id = config_entry.entry_id

    stream = await _browse(hass, f"{entry_id}/front-door")
    assert _ids(stream)[0] == f"{ROOT}/{entry_id}/front-door/clips"
    clips = await _browse(hass, f"{entry_id}/front-door/clips")
    assert _ids(clips) == [
        "media-source://media_source/local/kinesis_video/front-door/clip.mp4"
    ]
    played = await media_source.async_resolve_media(hass, _ids(clips)[0], None)
    assert played.url.startswith("/media/local/kinesis_video/front-door/clip.mp4")

    # No clips for the other stream: no folder.
    backyard = await _browse(hass, f"{entry_id}/backyard")
    assert f"{ROOT}/{entry_id}/backyard/clips" not in _ids(backyard)
    empty = await _browse(hass, f"{entry_id}/backyard/clips")
    assert empty.children == []

    hass.config.media_dirs = {}
    assert f"{ROOT}/{entry_id}/front-door/clips" not in _ids(
        await _browse(hass, f"{entry_id}/front-door")
    )
    assert (await _browse(hass, f"{entry_id}/front-door/clips")).children == []


async def test_saved_clip_found_in_a_media_folder_not_named_local(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """save_clip and the browser agree on the folder, whatever it is called."""
    hass.config.media_dirs = {"recordings": str(tmp_path / "rec")}
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    await setup_entry(hass, config_entry)
    end = datetime.fromtimestamp(time.time(), UTC) - timedelta(minutes=5)
    response = await hass.services.async_call(
        DOMAIN,
        "save_clip",
        {"entity_id": "camera.front_door", "end": end, "duration": 4},
        blocking=True,
        return_response=True,
    )
    saved = Path(response["camera.front_door"]["path"])  # type: ignore[index]
    assert saved.parent == tmp_path / "rec" / "kinesis_video" / "front-door"
    clips = await _browse(hass, f"{config_entry.entry_id}/front-door/clips")
    assert _ids(clips) == [
        f"media-source://media_source/recordings/kinesis_video/front-door/{saved.name}"
    ]


async def test_hour_starting_inside_a_fragment_has_no_false_gap(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A fragment running over the hour's start is video, not a hole.

    A 500 ms producer offset shifts the server timestamps off the 2 s grid, so
    the hour's first fragment starts 1.5 s after the hour (the previous one
    covers those 1.5 s).
    """
    await admin(
        hass, emulator, "POST", "streams/front-door", {"producer_offset_ms": 500}
    )
    await setup_entry(hass, config_entry)
    now = datetime.fromtimestamp(time.time(), UTC)
    hour = _hour_start(now - timedelta(minutes=60))
    hour_id = (
        f"{config_entry.entry_id}/front-door/{hour.date().isoformat()}/"
        f"{hour.strftime('%H%z')}"
    )
    children = (await _browse(hass, hour_id)).children or []
    assert [c.can_play for c in children] == [True]
    start_ms = int(children[0].media_content_id.rsplit("/", 1)[1].split("-")[0])
    assert start_ms == hour.timestamp() * 1000 + 1500


async def test_no_retention_lists_no_days(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A stream keeping nothing has no days and no hours to list."""
    await admin(hass, emulator, "POST", "streams/backyard", {"retention_hours": 0})
    await setup_entry(hass, config_entry)
    entry_id = config_entry.entry_id
    assert (await _browse(hass, f"{entry_id}/backyard")).children == []
    day = dt_util.now().date().isoformat()
    assert (await _browse(hass, f"{entry_id}/backyard/{day}")).children == []


@pytest.mark.parametrize(
    "identifier",
    [
        "nope",
        "{entry}/nope",
        "{entry}/",
        "{entry}//",
        "{entry}/front-door/",
        "{entry}/front-door/not-a-day",
        "{entry}/front-door/2026-13-01",
        "{entry}/front-door/-2026-01-01",
        "{entry}/front-door/9999-12-31",
        "{entry}/front-door/2026-01-01/xx",
        "{entry}/front-door/2026-01-01/25+0000",
        "{entry}/front-door/2026-01-01/10+2400",
        "{entry}/front-door/2026-01-01/-1+0000",
        "{entry}/front-door/9999-12-31/23+0000",
        "{entry}/front-door/0001-01-01/00+1400",
        "{entry}/front-door/0001-01-01/00+0000",
        "{entry}/front-door/clips/x",
        "{entry}/front-door/2026-01-01/10+0000/1/2/3",
        "{entry}/front-door/2026-01-01/10+0000/1000-2000",
    ],
)
async def test_unknown_browse(
    hass: HomeAssistant, config_entry: MockConfigEntry, identifier: str
) -> None:
    """Unknown or malformed identifiers are unresolvable, with a clear message."""
    await setup_entry(hass, config_entry)
    with pytest.raises(Unresolvable) as err:
        await _browse(hass, identifier.format(entry=config_entry.entry_id))
    assert err.value.translation_key == "media_unknown"


@pytest.mark.parametrize(
    "identifier",
    [
        "",
        "nope",
        "nope/front-door/2026-01-01/10+0000/1000-2000",
        "{entry}/front-door",
        "{entry}/front-door/2026-01-01/10+0000",
        "{entry}/front-door/2026-01-01/10+0000/x-y",
        "{entry}/nope/2026-01-01/10+0000/1-2",
        "{entry}/front-door/2026-01-01/10+0000/-5-10",
        "{entry}/front-door/2026-01-01/10+0000/5--10",
        "{entry}/front-door/2026-01-01/10+0000/1_000-2_000",
        "{entry}/front-door/2026-01-01/10+0000/ 1000-2000",
        "{entry}/front-door/2026-01-01/10+0000/1000-2000-3000",
        # Reversed, empty, longer than one playlist, beyond datetime's range.
        "{entry}/front-door/2026-01-01/10+0000/2000000-1000000",
        "{entry}/front-door/2026-01-01/10+0000/1000000-1000000",
        "{entry}/front-door/2026-01-01/10+0000/0-253402300799000",
        "{entry}/front-door/2026-01-01/10+0000/1-99999999999999999999",
        "{entry}/front-door/2026-01-01/10+0000/1-999999999999999",
        "{entry}/front-door/2026-01-01/10+0000/99999999999999999999-1",
        "{entry}/front-door/2026-01-01/10+0000/gap-x-y",
        "{entry}/front-door/2026-01-01/10+0000/gap-2-1",
    ],
)
async def test_unknown_resolve(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    identifier: str,
) -> None:
    """Only spans of configured streams resolve; the rest say so clearly."""
    await setup_entry(hass, config_entry)
    await admin(hass, emulator, "DELETE", "calls")
    identifier = identifier.format(entry=config_entry.entry_id)
    with pytest.raises(Unresolvable) as err:
        await media_source.async_resolve_media(
            hass, f"{ROOT}/{identifier}" if identifier else ROOT, None
        )
    assert err.value.translation_key == "media_unknown"
    # Refused before asking AWS for a session.
    assert "GetHLSStreamingSessionURL" not in await calls(hass, emulator)


async def test_browse_failure(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """AWS refusing to list is a clear error at every level, not "Unknown error"."""
    await setup_entry(hass, config_entry)
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "ListFragments", "count": -1, "error": "AccessDeniedException"},
    )
    hour = _hour_start(dt_util.utcnow() - timedelta(minutes=60))
    day = f"{config_entry.entry_id}/front-door/{hour.date().isoformat()}"
    for identifier in (
        f"{config_entry.entry_id}/front-door",
        day,
        f"{day}/{hour.strftime('%H%z')}",
    ):
        with pytest.raises(Unresolvable, match="front-door") as err:
            await _browse(hass, identifier)
        assert err.value.translation_key == "media_browse_failed"


async def test_resolve_failure_and_unloaded_entry(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A span with no media cannot play; an unloaded account is gone."""
    await setup_entry(hass, config_entry)
    entry_id = config_entry.entry_id
    old = int((dt_util.utcnow() - timedelta(hours=5)).timestamp() * 1000)
    span = f"{ROOT}/{entry_id}/front-door/2026-01-01/10+0000/{old}-{old + 60_000}"
    with pytest.raises(Unresolvable, match="front-door"):
        await media_source.async_resolve_media(hass, span, None)
    # Well-formed but at the end of time (nothing datetime cannot hold).
    last = (
        f"{ROOT}/{entry_id}/front-door/9999-12-31/23+0000/"
        "253402300000000-253402300799000"
    )
    with pytest.raises(Unresolvable, match="front-door") as err:
        await media_source.async_resolve_media(hass, last, None)
    assert err.value.translation_key == "media_playback_failed"
    await hass.config_entries.async_unload(config_entry.entry_id)
    assert _ids(await _browse(hass)) == []
    with pytest.raises(Unresolvable):
        await _browse(hass, entry_id)


def _fragment(start: datetime, ms: int = 2000) -> Fragment:
    return Fragment(
        number=str(int(start.timestamp())),
        producer_timestamp=start + timedelta(seconds=3),
        server_timestamp=start,
        duration_ms=ms,
        size=1,
    )


def test_merge_spans_splits_for_playlists() -> None:
    """Spans break at gaps and where one ON_DEMAND playlist would overflow."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    fragments = [_fragment(t0 + timedelta(seconds=2 * i)) for i in range(10)]
    assert len(merge_spans(fragments, "SERVER_TIMESTAMP")) == 1
    spans = merge_spans(fragments, "SERVER_TIMESTAMP", max_fragments=4)
    assert [s.fragments for s in spans] == [4, 4, 2]
    spans = merge_spans(fragments, "PRODUCER_TIMESTAMP", max_range=timedelta(seconds=5))
    assert spans[0].start == t0 + timedelta(seconds=3)
    assert [s.fragments for s in spans] == [2, 2, 2, 2, 2]
    with_gap = [*fragments, _fragment(t0 + timedelta(minutes=5))]
    assert [s.fragments for s in merge_spans(with_gap, "SERVER_TIMESTAMP")] == [10, 1]
    assert merge_spans([], "SERVER_TIMESTAMP") == []
    assert len(split_hours(t0, t0 + timedelta(minutes=150))) == 3
