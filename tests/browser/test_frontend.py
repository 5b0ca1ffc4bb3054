"""What a person sees in Home Assistant's frontend: live view, archive, actions.

Run with ``python -m pytest tests/browser`` (see conftest.py). Playwright's CSS and
text selectors pierce the frontend's open shadow roots.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kvs_emulator.testing import EmulatorProcess

from .conftest import Browser, HomeAssistantProcess

sync_api = pytest.importorskip("playwright.sync_api")

# How long a <video> gets to show that it plays, and how far it must advance.
PLAY_WAIT_S = 30.0
ADVANCE_S = 2.0
# Poll on a timer: requestAnimationFrame, Playwright's default, can stall headless.
POLL_MS = 250
VIDEO_STATE = """v => ({
  t: v.currentTime, paused: v.paused, ready: v.readyState,
  error: v.error && v.error.message,
  buffered: Array.from({length: v.buffered.length},
    (_, i) => [v.buffered.start(i), v.buffered.end(i)]),
})"""


def _video_advances(
    browser: Browser, home_assistant: HomeAssistantProcess, scope: str, name: str
) -> None:
    """The <video> under ``scope`` plays: its currentTime moves on.

    The locator is evaluated afresh each time: the player may replace its <video>
    (a handle would keep watching the detached first one).
    """
    page = browser.page
    video = page.locator(scope).locator("video").first
    seen: list[Any] = []

    def state() -> Any:
        return video.evaluate(VIDEO_STATE) if video.count() else None

    deadline = time.monotonic() + PLAY_WAIT_S
    while time.monotonic() < deadline:
        now = state()
        if now is not None and now["ready"] >= 2 and now["t"] > 0:
            if not seen:
                seen.append(now)  # playing: from here it must advance
            elif now["t"] >= seen[0]["t"] + ADVANCE_S:
                browser.shot(name)
                return
        page.wait_for_timeout(POLL_MS)
    browser.shot(f"{name}-failed")
    seen.append(state() or "no <video>")
    pytest.fail(
        f"{name}: the video does not play (first, last: {seen})\n"
        f"{home_assistant.log_tail(match='stream|kinesis')}"
    )


def test_login(browser: Browser) -> None:
    """The login form leads to the frontend with its sidebar."""
    browser.page.locator("ha-sidebar").wait_for()
    browser.shot("logged-in")


def test_camera_live_video(
    browser: Browser, home_assistant: HomeAssistantProcess
) -> None:
    """The camera's more-info dialog shows live video and its still loads."""
    assert home_assistant.cameras, "no camera entity"
    camera = home_assistant.cameras[0]
    page = browser.page
    browser.responses.clear()
    page.goto(f"{home_assistant.url}/?more-info-entity-id={camera}")
    page.locator("ha-more-info-dialog").wait_for(state="attached")
    _video_advances(browser, home_assistant, "ha-more-info-dialog", "camera-live")
    stills = [
        (url, status)
        for url, status in browser.responses
        if f"/api/camera_proxy/{camera}" in url
    ]
    assert stills, "the dialog asked for no still (/api/camera_proxy/...)"
    # Issue 13 bug 1: width=...&height=0 answers 500 until camera.py is fixed.
    # No signature in the message: only the size the frontend asked for.
    failed = [
        (re.sub(r"(authSig|token)=[^&]*", r"\1=...", url), status)
        for url, status in stills
        if status != 200
    ]
    assert not failed, f"camera still requests failed: {failed}"
    page.keyboard.press("Escape")


def test_media_browser_plays_span(
    browser: Browser,
    home_assistant: HomeAssistantProcess,
    emulator_process: EmulatorProcess,
) -> None:
    """The media browser leads down to a recorded span, and the span plays.

    The day is opened while ListFragments is slow (a fault rule): it answers with
    hours not listed yet, shown as hour tiles (nothing "hidden"), and the hour
    opened lists itself on demand.
    """
    page = browser.page
    page.goto(f"{home_assistant.url}/media-browser/browser")
    stream = home_assistant.cameras[0].removeprefix("camera.").replace("_", "-")
    # Titles change with the browser's design: match loosely, pick the first fit.
    levels = [
        ("source", re.compile(r"Kinesis Video", re.IGNORECASE)),
        ("account", None),  # the config entry (its title); the only one
        ("stream", re.compile(re.escape(stream))),
        ("day", re.compile(r"\d{4}-\d{2}-\d{2}")),
    ]
    browser.responses.clear()
    emulator_process.admin(
        "POST",
        "faults",
        {"operation": "ListFragments", "count": -1, "latency_s": SLOW_LIST_S},
    )
    try:
        for level, title in levels:
            _open_child(browser, level, title)
        hour = _day_shows_every_hour(browser, home_assistant)
    finally:
        emulator_process.admin("DELETE", "faults")
    _open_child(browser, "hour", re.compile(rf"^\s*{hour}\s*$"))
    _thumbnails_load(browser, home_assistant)
    _open_child(browser, "span", None, play=True)
    _video_advances(
        browser, home_assistant, "hui-dialog-web-browser-play-media", "span-playback"
    )


THUMBNAILS = "/api/kinesis_video/thumbnail/"
# Longer than the day view's time budget: its first open lists no hour in time.
SLOW_LIST_S = 1.0
HOURS = re.compile(f"{THUMBNAILS}.*/hour/").search


def _day_shows_every_hour(
    browser: Browser, home_assistant: HomeAssistantProcess
) -> str:
    """The day lists the hours that may hold video, hides none, shows pictures.

    Returns the title of the hour to open: the last whole hour (recorded from
    start to end by the demo's 2 h of history), else the current one.
    """
    page = browser.page
    view = page.locator("ha-media-player-browse")
    items = view.locator(".children .child")
    items.first.wait_for(timeout=30_000)
    titles = [t.strip() for t in items.locator(".title").all_inner_texts()]
    zone = ZoneInfo(home_assistant.api.call("GET", "/api/config")["time_zone"])
    now = datetime.now(zone)
    wanted = [f"{now - timedelta(hours=1):%H}:00", f"{now:%H}:00"]
    if (now - timedelta(hours=1)).date() != now.date():
        wanted.pop(0)  # the last hour is yesterday's
    # The frontend's words for BrowseMedia.not_shown: never used for hours.
    hidden = view.get_by_text(re.compile(r"\bhidden\b", re.IGNORECASE))
    if hidden.count() or wanted[0] not in titles:
        browser.shot("browse-hours-failed")
    assert not hidden.count(), f"the day says: {hidden.all_inner_texts()}"
    assert wanted[0] in titles, f"no tile {wanted[0]} among the hours {titles}"
    # The hour tiles' pictures load, those found by the hour's time too.
    pictured = items.locator(".image[style*='background-image']")
    try:
        pictured.first.wait_for(timeout=30_000)
    except sync_api.TimeoutError:
        browser.shot("browse-hours-failed")
        pytest.fail(
            "media browser: no hour of the day shows a picture\n"
            f"{home_assistant.log_tail(match='kinesis')}"
        )
    deadline = time.monotonic() + 30
    while not (hours := [(u, s) for u, s in browser.responses if HOURS(u)]):
        if time.monotonic() > deadline:
            pytest.fail("no hour was shown before it was listed (no /hour/ picture)")
        page.wait_for_timeout(POLL_MS)
    assert {s for _, s in hours} == {200}, f"hour pictures failed: {hours}"
    browser.shot("browse-day-thumbnails")
    return wanted[0]


def _thumbnails_load(browser: Browser, home_assistant: HomeAssistantProcess) -> None:
    """The days, hours and spans opened on the way showed their pictures.

    The frontend fetches each thumbnail with the user's token and shows it as
    the item's background image: every one it asked for answered 200, and the
    spans of the hour show at least one.
    """
    page = browser.page
    pictured = page.locator(
        "ha-media-player-browse .children .child .image[style*='background-image']"
    )
    try:
        pictured.first.wait_for(timeout=30_000)
    except sync_api.TimeoutError:
        browser.shot("thumbnails-failed")
        pytest.fail(
            "media browser: no span shows a thumbnail\n"
            f"{home_assistant.log_tail(match='kinesis')}"
        )
    asked = [(u, s) for u, s in browser.responses if THUMBNAILS in u]
    assert asked, "the media browser asked for no thumbnail"
    failed = [(u.split("?")[0], s) for u, s in asked if s != 200]
    assert not failed, f"thumbnail requests failed: {failed}"
    browser.shot("browse-thumbnails")


def _open_child(
    browser: Browser, level: str, title: re.Pattern[str] | None, play: bool = False
) -> None:
    """Open (or play) the first child of the browser's current level that fits.

    A child fits when its title matches; to play, it must be playable (its play
    button; a gap has none).
    """
    page = browser.page
    items = page.locator("ha-media-player-browse .children .child")
    try:
        items.first.wait_for(timeout=30_000)
        if title is not None:
            items = items.filter(has=page.locator(".title", has_text=title))
        if play:
            items = items.filter(has=page.locator("ha-icon-button.play"))
        item = items.first
        item.wait_for(timeout=10_000)
    except sync_api.TimeoutError:
        browser.shot(f"browse-{level}-failed")
        pytest.fail(f"media browser: no {level} item (title {title}, play {play})")
    browser.shot(f"browse-{level}")
    if play:
        item.locator("ha-icon-button.play").click()
    else:
        item.click()


def test_save_clip_from_developer_tools(
    browser: Browser, home_assistant: HomeAssistantProcess
) -> None:
    """Developer tools > Actions runs save_clip and shows its response."""
    page = browser.page
    camera = home_assistant.cameras[0]
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    action: dict[str, Any] = {
        "action": "kinesis_video.save_clip",
        "target": {"entity_id": camera},
        "data": {
            "start": (end - timedelta(seconds=20)).isoformat(),
            "end": end.isoformat(),
        },
    }
    page.goto(f"{home_assistant.url}/developer-tools/action")
    page.get_by_role("button", name=re.compile("YAML mode", re.IGNORECASE)).click()
    editor = page.locator("ha-code-editor .cm-content").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # One line of YAML (JSON): typed text would be auto-indented.
    page.keyboard.insert_text(json.dumps(action))
    page.get_by_role("button", name=re.compile("Perform action", re.IGNORECASE)).click()
    response = page.locator("ha-card", has_text="Response").locator(".cm-content")
    try:
        response.wait_for(timeout=60_000)
        page.wait_for_function(
            "e => /\\.mp4/.test(e.textContent)",
            arg=response.element_handle(),
            polling=POLL_MS,
        )
    except sync_api.TimeoutError:
        browser.shot("save-clip-failed")
        pytest.fail(f"save_clip showed no response\n{home_assistant.log_tail()}")
    browser.shot("save-clip")
    # The response names the saved file (its "path"), which exists in the media folder.
    paths = re.findall(r"/[^\s'\"]+\.mp4", response.inner_text())
    assert paths, f"the response names no file: {response.inner_text()}"
    saved = Path(paths[0])
    assert saved.is_file(), f"{saved} was not written"
    assert home_assistant.media_dir in saved.parents
