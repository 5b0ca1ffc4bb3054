"""Thumbnails in the media browser, listings kept across restarts, search."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest.mock import patch

import av
import numpy as np
import pytest
from homeassistant.components import media_source
from homeassistant.components.media_source import BrowseMediaSource
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video import media_source as kvs_media_source
from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.media_source import (
    CAN_SEARCH,
    DATA_ARCHIVE,
    async_get_archive,
)
from custom_components.kinesis_video.thumbnails import ICONS, URL_PREFIX, icon_url
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, setup_entry

ROOT = f"media-source://{DOMAIN}"
THUMBNAIL = URL_PREFIX


@pytest.fixture(autouse=True)
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Iterator[None]:
    """Thumbnails go to the test's own config folder; past hours settle at once.

    Days answer once fully listed (the budget depends on the machine's speed),
    except where a test sets a budget with a latency that makes it certain.
    """
    hass.config.config_dir = str(tmp_path / "config")
    with (
        patch.object(kvs_media_source, "SETTLED", timedelta(0)),
        patch.object(kvs_media_source, "DAY_BUDGET_S", None),
    ):
        yield


async def _browse(hass: HomeAssistant, identifier: str = "") -> BrowseMediaSource:
    result = await media_source.async_browse_media(
        hass, f"{ROOT}/{identifier}" if identifier else ROOT
    )
    assert isinstance(result, BrowseMediaSource)
    return result


def _past_hour() -> datetime:
    """The last whole hour: recorded from start to end by the emulator."""
    # An hour back in UTC, then local: wall-clock arithmetic would miss an
    # hour (or take two) on the days clocks change.
    an_hour_ago = datetime.fromtimestamp(time.time() - 3600, UTC)
    return dt_util.as_local(an_hour_ago).replace(minute=0, second=0, microsecond=0)


def _hour_id(entry: MockConfigEntry, stream: str, hour: datetime) -> str:
    return f"{entry.entry_id}/{stream}/{hour.date().isoformat()}/{hour:%H%z}"


async def _get(client: Any, url: str) -> tuple[int, str, bytes]:
    response = await client.get(url)
    return response.status, response.content_type, await response.read()


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What a restart keeps: the saved store and the cache folder, nothing else."""
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)  # delayed saves now
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)
    del hass.data[DATA_ARCHIVE]
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_thumbnails_billed_once_across_restarts(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Span, hour and day pictures: JPEG 320 wide, signed in only, cached on disk."""
    await setup_entry(hass, config_entry)
    hour = _past_hour()
    day_id = f"{config_entry.entry_id}/front-door/{hour.date().isoformat()}"
    day = await _browse(hass, day_id)
    hour_node = next(c for c in day.children or [] if c.title == f"{hour:%H:%M}")
    spans = (await _browse(hass, _hour_id(config_entry, "front-door", hour))).children
    assert spans
    span = spans[0]
    # The hour's picture is its first span's: one picture, billed once.
    assert hour_node.thumbnail == span.thumbnail
    assert span.thumbnail
    assert span.thumbnail.startswith("/api/kinesis_video/thumbnail/")

    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(span.thumbnail)).status == 401
    assert (await anonymous.get(icon_url("no_video"))).status == 401

    client = await hass_client()
    await admin(hass, emulator, "DELETE", "calls")
    status, kind, body = await _get(client, span.thumbnail)
    assert (status, kind) == (200, "image/jpeg")
    assert Image.open(io.BytesIO(body)).size[0] == 320
    assert (await calls(hass, emulator)).get("GetImages") == 1
    assert (await _get(client, span.thumbnail))[2] == body
    assert (await calls(hass, emulator)).get("GetImages") == 1

    # The stream level of a stream whose day was never listed: the view finds
    # the day's first span itself.
    stream = await _browse(hass, f"{config_entry.entry_id}/backyard")
    day_node = next(
        c for c in stream.children or [] if c.title.startswith(str(hour.date()))
    )
    assert day_node.thumbnail
    assert "/day/" in day_node.thumbnail
    status, kind, _ = await _get(client, day_node.thumbnail)
    assert (status, kind) == (200, "image/jpeg")
    assert (await calls(hass, emulator)).get("GetImages") == 2

    await _restart(hass, config_entry)
    await admin(hass, emulator, "DELETE", "calls")
    client = await hass_client()
    assert (await _get(client, span.thumbnail))[2] == body
    # The past hour and the one before it are kept: no ListFragments at all.
    again = await _browse(hass, _hour_id(config_entry, "front-door", hour))
    assert [c.media_content_id for c in again.children or []] == [
        c.media_content_id for c in spans
    ]
    assert (await calls(hass, emulator)) == {}

    # A node that is not one: 404, and nothing asked.
    base = span.thumbnail.rsplit("/", 2)[0]
    for bad in (f"{base}/span/5-1", f"{base}/span/gap-1-2", f"{base}/nope/1-2"):
        assert (await client.get(bad)).status == 404
    assert (await client.get(f"{base}/day/2020-01-01")).status == 404
    assert (await client.get("/api/kinesis_video/thumbnail/x/y/span/1-2")).status == 404
    assert (await client.get("/api/kinesis_video/icon/nope.svg")).status == 404
    assert (await calls(hass, emulator)) == {}


async def test_gap_icon_and_stream_without_stills(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A gap has its own icon; a stream that gives no stills gets one, billed once."""
    hour = _past_hour()
    gap = (hour + timedelta(minutes=20), hour + timedelta(minutes=21))
    await admin(
        hass,
        emulator,
        "POST",
        "streams/backyard",
        {"gaps": [[t.timestamp() for t in gap]], "media_type": "video/h265"},
    )
    # The emulator makes stills of any stream; AWS refuses them for a stream
    # whose media it cannot decode (H.265 without keyframes): a fault says so.
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {
            "operation": "GetImages",
            "stream": "backyard",
            "count": -1,
            "error": "UnsupportedStreamMediaTypeException",
        },
    )
    await setup_entry(hass, config_entry)
    children = (await _browse(hass, _hour_id(config_entry, "backyard", hour))).children
    assert children
    hole = next(c for c in children if not c.can_play)
    assert hole.thumbnail == icon_url("no_video")
    client = await hass_client()
    status, kind, body = await _get(client, icon_url("no_video"))
    assert (status, kind) == (200, "image/svg+xml")
    assert body.startswith(b"<svg")

    await admin(hass, emulator, "DELETE", "calls")
    playable = [c for c in children if c.can_play]
    status, kind, _ = await _get(client, playable[0].thumbnail or "")
    assert (status, kind) == (200, "image/svg+xml")  # the no-image icon
    assert (await _get(client, playable[1].thumbnail or ""))[1] == "image/svg+xml"
    assert (await calls(hass, emulator)).get("GetImages") == 1  # remembered
    # ... and the browser now shows the icon without asking the view.
    again = (await _browse(hass, _hour_id(config_entry, "backyard", hour))).children
    assert {c.thumbnail for c in again or [] if c.can_play} == {icon_url("no_image")}


async def test_no_image_in_the_window_is_remembered(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """Only NO_MEDIA in a node's window: the icon, and the window is not asked again."""
    hour = _past_hour()
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[hour.timestamp(), (hour + timedelta(minutes=1)).timestamp()]]},
    )
    await setup_entry(hass, config_entry)
    start = int(hour.timestamp() * 1000)
    url = (
        f"/api/kinesis_video/thumbnail/{config_entry.entry_id}/front-door/span/"
        f"{start}-{start + 30_000}"
    )
    client = await hass_client()
    await admin(hass, emulator, "DELETE", "calls")
    for _ in range(2):
        assert (await _get(client, url))[1] == "image/svg+xml"
    assert (await calls(hass, emulator)).get("GetImages") == 1


async def test_concurrent_requests_share_one_call(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """Viewers of a node at once: one GetImages; many nodes: paced, none refused."""
    await setup_entry(hass, config_entry)
    hour = _past_hour()
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetImages", "count": -1, "latency_s": 0.3},
    )
    await admin(hass, emulator, "DELETE", "calls")
    start = int(hour.timestamp() * 1000)
    base = f"/api/kinesis_video/thumbnail/{config_entry.entry_id}/front-door/span"
    client = await hass_client()
    answers = await asyncio.gather(
        *(_get(client, f"{base}/{start}-{start + 60_000}") for _ in range(6))
    )
    assert {a[:2] for a in answers} == {(200, "image/jpeg")}
    assert len({a[2] for a in answers}) == 1
    assert (await calls(hass, emulator)).get("GetImages") == 1
    # Twelve different nodes at once stay within GetImages' 5 TPS per stream.
    await admin(hass, emulator, "DELETE", "calls")
    answers = await asyncio.gather(
        *(
            _get(client, f"{base}/{start + i * 60_000}-{start + (i + 1) * 60_000}")
            for i in range(1, 13)
        )
    )
    assert {a[:2] for a in answers} == {(200, "image/jpeg")}
    log = await hass.async_add_executor_job(emulator.calls)
    assert log["counts"]["GetImages"] == 12
    assert [c for c in log["calls"] if c["error"]] == []


async def test_day_answers_within_its_budget(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A slow first listing answers with every hour that may hold video, none hidden.

    With 0.5 s per ListFragments and a 0.3 s budget, no hour is listed when the
    day answers: every hour up to now is a plain tile (never ``not_shown``, which
    the frontend words as "incompatible items are hidden"), whose picture the
    thumbnail view finds and which lists itself when opened. The listings go
    on, so the next open shows the recorded hours only, without calls for the
    past hours.
    """
    await setup_entry(hass, config_entry)
    hour = _past_hour()
    day_id = f"{config_entry.entry_id}/front-door/{hour.date().isoformat()}"
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "ListFragments", "count": -1, "latency_s": 0.5},
    )
    await admin(hass, emulator, "DELETE", "calls")
    with patch.object(kvs_media_source, "DAY_BUDGET_S", 0.3):
        first = await _browse(hass, day_id)
    assert first.not_shown == 0
    tiles = {child.title: child for child in first.children or []}
    start_of_day = dt_util.start_of_local_day(hour)
    until = min(dt_util.utcnow(), start_of_day + timedelta(days=1))
    assert len(tiles) == -(-(until - start_of_day) // timedelta(hours=1))
    tile = tiles[f"{hour:%H:%M}"]
    assert tile.can_expand
    assert not tile.can_play
    hour_ms = int(hour.timestamp() * 1000)
    assert tile.thumbnail is not None
    assert tile.thumbnail.endswith(f"/hour/{hour_ms}")
    # Opened while the day's listings go on: listed on demand.
    listing = await _browse(hass, _hour_id(config_entry, "front-door", hour))
    spans = [c for c in listing.children or [] if c.can_play]
    assert spans
    # Its picture is its first span's: one GetImages for both.
    client = await hass_client()
    picture = await _get(client, tile.thumbnail)
    assert picture[:2] == (200, "image/jpeg")
    assert spans[0].thumbnail is not None
    assert await _get(client, spans[0].thumbnail) == picture
    assert (await calls(hass, emulator))["GetImages"] == 1
    # An hour before the stream's 2 h of history: the no-video icon, no still.
    empty = f"{config_entry.entry_id}/front-door/hour/{hour_ms - 3 * 3_600_000}"
    status, kind, body = await _get(client, f"{THUMBNAIL}/{empty}")
    assert (status, kind) == (200, "image/svg+xml")
    assert body.decode() == ICONS["no_video"]
    assert (await calls(hass, emulator))["GetImages"] == 1
    # Opened, such an hour says so: one "No video" node, not playable.
    nothing = await _browse(
        hass, _hour_id(config_entry, "front-door", hour - timedelta(hours=3))
    )
    assert [(c.title[:9], c.can_play, c.thumbnail) for c in nothing.children or []] == [
        ("No video ", False, icon_url("no_video"))
    ]
    # Not an hour, or outside the retention period: no such node, no call.
    base = f"{THUMBNAIL}/{config_entry.entry_id}/front-door/hour"
    for value in (str(hour_ms + 1000), "0", "x", str(hour_ms + 86_400_000)):
        assert (await _get(client, f"{base}/{value}"))[0] == 404
    archive = await async_get_archive(hass)
    index = archive.indexes[config_entry.entry_id]
    # Let the listings under way finish (private: what the test is about).
    await asyncio.gather(*index._inflight.values(), *index._background)
    listed = (await calls(hass, emulator))["ListFragments"]
    with patch.object(kvs_media_source, "DAY_BUDGET_S", 0.3):
        second = await _browse(hass, day_id)
    assert second.not_shown == 0
    titles = [c.title for c in second.children or []]
    assert f"{hour:%H:%M}" in titles
    # Only recorded hours now (2 h of history: 2 or 3 hours), with span pictures.
    assert len(titles) <= 3
    assert all("/span/" in (c.thumbnail or "") for c in second.children or [])
    assert second.title.endswith(" recorded")
    # Only the hour still being recorded is asked again.
    assert (await calls(hass, emulator))["ListFragments"] - listed <= 2
    log = await hass.async_add_executor_job(emulator.calls)
    assert [c for c in log["calls"] if c["error"]] == []


def _write_clip(path: Path) -> None:
    """A real H.264 MP4 of 5 frames, 640x360 (executor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(5):
            pixels = np.full((360, 640, 3), 40 * i, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


async def test_saved_clip_thumbnail_from_the_file(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """A saved clip's picture is its first frame, not a call to AWS."""
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    clip = tmp_path / "media" / "kinesis_video" / "front-door" / "door bell.mp4"
    await hass.async_add_executor_job(_write_clip, clip)
    broken = clip.with_name("broken.mp4")
    await hass.async_add_executor_job(broken.write_bytes, b"\0" * 64)
    await setup_entry(hass, config_entry)
    clips = await _browse(hass, f"{config_entry.entry_id}/front-door/clips")
    by_name = {c.title: c.thumbnail for c in clips.children or []}
    assert set(by_name) == {"door bell.mp4", "broken.mp4"}
    client = await hass_client()
    await admin(hass, emulator, "DELETE", "calls")
    status, kind, body = await _get(client, by_name["door bell.mp4"] or "")
    assert (status, kind) == (200, "image/jpeg")
    assert Image.open(io.BytesIO(body)).size == (320, 180)
    assert (await _get(client, by_name["broken.mp4"] or ""))[1] == "image/svg+xml"
    base = (by_name["broken.mp4"] or "").rsplit("/", 1)[0]
    for bad in ("..%2Fsecret.mp4", ".hidden.mp4", "notes.txt", "gone.mp4"):
        assert (await client.get(f"{base}/{bad}")).status in {400, 404}
    assert (await calls(hass, emulator)) == {}


@pytest.mark.skipif(not CAN_SEARCH, reason="media search needs Home Assistant 2025.7+")
async def test_search_by_time_and_clip_name(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A time finds the span holding it; text finds saved clips by name."""
    from homeassistant.components.media_player import (
        SearchMediaQuery,
    )

    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    clip = tmp_path / "media" / "kinesis_video" / "front-door" / "Doorbell ring.mp4"
    await hass.async_add_executor_job(_write_clip, clip)
    await setup_entry(hass, config_entry)
    hour = _past_hour()
    gap = (hour + timedelta(minutes=20), hour + timedelta(minutes=21))
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[t.timestamp() for t in gap]]},
    )
    stream = f"{ROOT}/{config_entry.entry_id}/front-door"
    assert (await _browse(hass, f"{config_entry.entry_id}/front-door")).can_search

    async def search(text: str) -> list[str]:
        query = SearchMediaQuery(search_query=text)
        found = await media_source.async_search_media(hass, stream, query)
        return [r.media_content_id for r in found.result]

    moment = hour + timedelta(minutes=30)
    found = await search(f"{moment:%Y-%m-%d %H:%M}")
    assert len(found) == 1
    start, end = (int(v) for v in found[0].rsplit("/", 1)[1].split("-"))
    assert start == int(gap[1].timestamp() * 1000) <= moment.timestamp() * 1000 < end
    if moment.date() == dt_util.now().date():
        assert await search(f"{moment:%H:%M}") == found
    # In the gap: no span holds it.
    assert (
        await search(f"{hour + timedelta(minutes=20, seconds=30):%Y-%m-%d %H:%M:%S}")
        == []
    )
    assert await search("doorbell") == [
        "media-source://media_source/local/kinesis_video/front-door/Doorbell ring.mp4"
    ]
    assert await search("nothing like it") == []
    assert await search("yesterday 99:00") == []
