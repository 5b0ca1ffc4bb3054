"""Archive actions against the emulator: files that decode, answers that match."""

# Small checks of files the test made under tmp_path; not code under test.
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import av
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.kinesis_video import answers
from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.kvs import Image
from custom_components.kinesis_video.services import EVENT_CLIP_SAVED
from kvs_emulator.testing import EmulatorProcess
from tests.emulator.helpers import (
    FRAMES_PER_FRAGMENT,
    assert_continuous,
    decode_frames,
    expected_index,
    http_get,
)

from .conftest import admin, boto_fragments, calls, setup_entry

CAMERA = "camera.front_door"


@pytest.fixture
def media(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Allow writing under tmp_path; the media folder is tmp_path/media."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    return tmp_path / "media"


@pytest.fixture
async def loaded(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    media: Path,
) -> int:
    """The entry set up, the emulator clock frozen on a minute; returns it."""
    state = await admin(hass, emulator, "GET", "state")
    frozen = int(state["now"]) // 60 * 60
    await admin(hass, emulator, "POST", "clock", {"set": frozen, "freeze": True})
    await setup_entry(hass, config_entry)
    return frozen


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def _call(
    hass: HomeAssistant,
    service: str,
    data: dict[str, Any],
    entity_id: str = CAMERA,
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        service,
        data,
        target={"entity_id": entity_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    result: dict[str, Any] = dict(response)
    return result


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


# -- save_clip ------------------------------------------------------------------


async def test_save_clip_one_call(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """A short range: one GetClip, a file that decodes, an event, an answer."""
    events = async_capture_events(hass, EVENT_CLIP_SAVED)
    start, end = loaded - 60, loaded - 31
    response = await _call(hass, "save_clip", {"start": _at(start), "end": _at(end)})
    result = response[CAMERA]
    expected = await hass.async_add_executor_job(boto_fragments, emulator, start, end)
    assert result["fragments"] == len(expected) == 15
    assert result["clip_calls"] == 1
    assert result["gaps"] == []
    assert result["start"] == expected[0]["ServerTimestamp"].isoformat()
    path = Path(result["path"])
    assert path.parent == media / "kinesis_video" / "front-door"
    assert path.name.startswith("front-door_")
    assert path.suffix == ".mp4"
    assert result["size"] == path.stat().st_size
    indices, _ = await hass.async_add_executor_job(decode_frames, str(path))
    values = assert_continuous(indices)
    assert len(values) == 15 * FRAMES_PER_FRAGMENT
    producer_ms = round(expected[0]["ProducerTimestamp"].timestamp() * 1000)
    assert values[0] == expected_index(producer_ms)
    assert _leftovers(media) == []
    assert len(events) == 1
    assert events[0].data["path"] == str(path)
    assert events[0].data["entity_id"] == CAMERA
    assert (await calls(hass, emulator))["GetClip"] == 1


async def test_save_clip_joins_parts_losslessly(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """12 minutes = 360 fragments = 2 GetClip calls (paced, TPS limits on), joined.

    The frame counter runs on across the join without a jump, and the file lasts
    the 720 s asked for.
    """
    target = tmp_path / "clips" / "{stream}_{start:%H%M}.mp4"
    start = loaded - 721
    response = await _call(
        hass,
        "save_clip",
        {"start": _at(start), "duration": {"minutes": 12}, "filename": str(target)},
    )
    result = response[CAMERA]
    assert result["fragments"] == 360
    assert result["clip_calls"] == 2
    path = Path(result["path"])
    assert path.parent == tmp_path / "clips"

    def probe() -> tuple[list[int | None], float]:
        indices, _ = decode_frames(str(path))
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.duration is not None
            assert stream.time_base is not None
            duration = float(stream.duration * stream.time_base)
        return indices, duration

    indices, duration = await hass.async_add_executor_job(probe)
    values = assert_continuous(indices)
    assert len(values) == 360 * FRAMES_PER_FRAGMENT
    assert duration == pytest.approx(720, abs=0.2)
    assert _leftovers(tmp_path) == []
    # Two clips came. The pacer starts them 1.1 s apart and the emulator meters
    # 1 per second on arrival, so a loaded machine may have one refused and
    # retried; nothing else may fail.
    log = await hass.async_add_executor_job(emulator.calls)
    clips = [c for c in log["calls"] if c["operation"] == "GetClip"]
    assert len([c for c in clips if c["status"] == 200]) == 2
    refused = {c["error"] for c in clips if c["status"] != 200}
    assert refused <= {"ClientLimitExceededException"}


async def test_save_clip_duration_ending_at_end_and_producer_time(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """A duration that ends at a given end, by producer timestamps."""
    result = (
        await _call(
            hass,
            "save_clip",
            {
                "end": _at(loaded - 10),
                "duration": 10,
                "timestamp_type": "producer",
                "filename": "x/{stream}.mp4",
            },
        )
    )[CAMERA]
    assert Path(result["path"]) == media / "x" / "front-door.mp4"
    assert result["fragments"] == 6 or result["fragments"] == 5


async def test_save_clip_reports_gaps(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """A hole in the recording is reported with where it is."""
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[loaded - 50, loaded - 40]]},
    )
    result = (
        await _call(hass, "save_clip", {"start": _at(loaded - 60), "duration": 30})
    )[CAMERA]
    assert len(result["gaps"]) == 1
    gap = result["gaps"][0]
    assert 8 <= gap["seconds"] <= 12


async def test_save_clip_existing_file(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Without overwrite an existing file stays untouched; with it, replaced."""
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"keep me")
    data = {"start": _at(loaded - 30), "duration": 10, "filename": str(target)}
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "save_clip", data)
    assert err.value.translation_key == "file_exists"
    assert str(target) in str(err.value)
    assert target.read_bytes() == b"keep me"
    result = (await _call(hass, "save_clip", {**data, "overwrite": True}))[CAMERA]
    assert result["size"] == target.stat().st_size > 1000
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (
            {"start": "2026-01-01 10:00:00", "end": "2026-01-01 09:00:00"},
            "end_before_start",
        ),
        ({"start": "2026-01-01 10:00:00", "end": "2026-01-01 10:00:00"}, "empty_range"),
        ({"end": "2026-01-01 10:00:00"}, "range_required"),
        ({"start": "2026-01-01 10:00:00", "duration": {"hours": 25}}, "range_too_long"),
        (
            {
                "start": "2026-01-01 10:00:00",
                "end": "2026-01-01 10:01:00",
                "duration": 60,
            },
            "range_overdetermined",
        ),
        ({"duration": 60, "filename": "{nope}.mp4"}, "invalid_filename"),
        ({"duration": 60, "filename": "{start.year}.mp4"}, "invalid_filename"),
        ({"duration": 60, "filename": "{stream:%Y}.mp4"}, "invalid_filename"),
        ({"duration": 60, "filename": "../../etc/clip.mp4"}, "invalid_path"),
        ({"duration": 60, "filename": "a/../../b.mp4"}, "invalid_path"),
        ({"duration": 60, "filename": "/etc/clip.mp4"}, "path_not_allowed"),
    ],
)
async def test_save_clip_bad_input(  # noqa: PLR0917 - fixtures and parameters
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    media: Path,
    data: dict[str, Any],
    key: str,
) -> None:
    """Each bad input: a translated validation error, no call, no file."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "save_clip", data)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    # The message is the translated text, not the key.
    assert key not in str(err.value)
    assert "GetClip" not in await calls(hass, emulator)
    assert not media.exists() or list(media.rglob("*.mp4")) == []


async def test_symlink_out_of_allowed_dirs(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A symlink inside the allowed folder pointing out of it is refused."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "save_clip",
            {"duration": 10, "filename": str(tmp_path / "link" / "c.mp4")},
        )
    assert err.value.translation_key == "path_not_allowed"
    assert list(outside.iterdir()) == []


async def test_not_a_camera_of_this_integration(
    hass: HomeAssistant, loaded: int
) -> None:
    """Targets must be this integration's cameras."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "list_fragments", {"duration": 60}, "camera.elsewhere")
    assert err.value.translation_key == "not_a_camera"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "list_fragments",
            {"duration": 60},
            target={"area_id": "nowhere"},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "no_target"


async def test_device_and_area_targets(hass: HomeAssistant, loaded: int) -> None:
    """A stream's device or area: its camera; its other entities are skipped.

    Only an entity named explicitly must be a camera of this integration.
    """
    entities = er.async_get(hass)
    device_id = entities.async_get(CAMERA).device_id
    assert device_id is not None
    # The device also has sensors, which the target expands to.
    assert len(er.async_entries_for_device(entities, device_id)) > 1
    area = ar.async_get(hass).async_create("Porch")
    dr.async_get(hass).async_update_device(device_id, area_id=area.id)
    for target in ({"device_id": device_id}, {"area_id": area.id}):
        response = await hass.services.async_call(
            DOMAIN,
            "list_fragments",
            {"duration": 60},
            target=target,
            blocking=True,
            return_response=True,
        )
        assert response is not None
        assert list(response) == [CAMERA]
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass, "list_fragments", {"duration": 60}, "sensor.front_door_last_fragment"
        )
    assert err.value.translation_key == "not_a_camera"
    # Named explicitly next to a device: still refused.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "list_fragments",
            {"duration": 60},
            target={
                "device_id": device_id,
                "entity_id": "binary_sensor.front_door_receiving_video",
            },
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_a_camera"


async def test_entry_not_loaded(
    hass: HomeAssistant, loaded: int, config_entry: MockConfigEntry
) -> None:
    """An unloaded entry's cameras: refused when named, skipped when reached.

    As Home Assistant's entity actions do, a camera reached through its device
    or area is left out while it cannot work (here: nothing else is left).
    """
    device_id = er.async_get(hass).async_get(CAMERA).device_id
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "list_fragments", {"duration": 60})
    assert err.value.translation_key == "entry_not_loaded"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "list_fragments",
            {"duration": 60},
            target={"device_id": device_id},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "no_target"


async def test_save_clip_no_media(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """A range with no recording: translated runtime error, nothing written.

    Before the stream's 2 h of history (a future end is now waited for: see
    test_event_clips.py).
    """
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass, "save_clip", {"start": _at(loaded - 3 * 3600), "duration": 60}
        )
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "no_media"
    assert "front-door" in str(err.value)
    assert list(media.rglob("*")) == [] or all(p.is_dir() for p in media.rglob("*"))


async def test_connection_cut_leaves_nothing(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Every GetClip cut mid-payload: error, no file, no part file."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetClip", "count": -1, "cut_after_bytes": 50_000},
    )
    target = tmp_path / "cut.mp4"
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_clip",
            {"start": _at(loaded - 31), "duration": 30, "filename": str(target)},
        )
    assert err.value.translation_key == "service_failed"
    assert list(tmp_path.iterdir()) == []


async def test_connection_cut_in_second_part(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """The first of two parts arrives, the second is cut: both parts are gone."""
    target = tmp_path / "cut.mp4"
    task = hass.async_create_task(
        _call(
            hass,
            "save_clip",
            {"start": _at(loaded - 721), "duration": 720, "filename": str(target)},
        )
    )
    # The client waits 1 s (GetClip's rate) before the second part: cut it.
    while (await calls(hass, emulator)).get("GetClip", 0) < 1:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetClip", "count": -1, "cut_after_bytes": 50_000},
    )
    with pytest.raises(HomeAssistantError) as err:
        await task
    assert err.value.translation_key == "service_failed"
    assert list(tmp_path.iterdir()) == []


async def test_throttling_survived(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Two throttled answers, then success: the clip is saved."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetClip", "count": 2, "error": "ClientLimitExceededException"},
    )
    result = (
        await _call(
            hass,
            "save_clip",
            {
                "start": _at(loaded - 30),
                "duration": 10,
                "filename": str(tmp_path / "t.mp4"),
            },
        )
    )[CAMERA]
    assert Path(result["path"]).stat().st_size == result["size"]
    assert (await calls(hass, emulator))["GetClip"] == 3


@pytest.mark.parametrize(
    ("error", "key"),
    [
        ("ClientLimitExceededException", "throttled"),
        ("InternalFailure", "service_failed"),
        ("UnrecognizedClientException", "auth_failed"),
        ("InvalidSignatureException", "clock_skew"),
        ("NotAuthorizedException", "permission_denied"),
        ("NoDataRetentionException", "action_no_data_retention"),
        ("ResourceNotFoundException", "action_stream_not_found"),
        ("InvalidArgumentException", "request_rejected"),
    ],
)
async def test_api_failures_are_translated(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    error: str,
    key: str,
) -> None:
    """Failures that outlast the retries: HomeAssistantError with a translation."""
    fault: dict[str, Any] = {"operation": "ListFragments", "count": -1, "error": error}
    if error == "InternalFailure":
        fault["status"] = 500
    if key == "clock_skew":  # AWS's answer to a request signed an hour off
        fault["message"] = "Signature expired: 20261201T010000Z is now earlier"
    await admin(hass, emulator, "POST", "faults", fault)
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "list_fragments", {"duration": 60})
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == key
    await admin(hass, emulator, "DELETE", "faults")


async def test_write_failure(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A folder that cannot be made (a file is in the way): the caller must
    choose another path, so a validation error that names it."""
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "save_clip",
            {"duration": 10, "filename": str(tmp_path / "file" / "c.mp4")},
        )
    assert err.value.translation_key == "not_a_folder"
    assert str(tmp_path / "file") in str(err.value)
    assert (tmp_path / "file").read_bytes() == b"x"


# -- list_fragments -------------------------------------------------------------


async def test_list_fragments_matches_the_service(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int
) -> None:
    """All pages, sorted, the same fragments as plain boto3 sees; a summary."""
    start, end = loaded - 2400, loaded - 1
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[start + 100, start + 130]]},
    )
    result = (
        await _call(
            hass,
            "list_fragments",
            {"start": _at(start), "end": _at(end), "limit": 100_000},
        )
    )[CAMERA]
    expected = await hass.async_add_executor_job(boto_fragments, emulator, start, end)
    assert len(expected) > 1000  # more than one page
    assert [f["number"] for f in result["fragments"]] == [
        f["FragmentNumber"] for f in expected
    ]
    first = result["fragments"][0]
    assert first["server_timestamp"] == expected[0]["ServerTimestamp"].isoformat()
    assert first["producer_timestamp"] == expected[0]["ProducerTimestamp"].isoformat()
    assert first["duration_ms"] == expected[0]["FragmentLengthInMilliseconds"]
    assert first["size"] == expected[0]["FragmentSizeInBytes"]
    assert result["truncated"] is False
    summary = result["summary"]
    assert summary["count"] == len(expected)
    assert summary["bytes"] == sum(f["FragmentSizeInBytes"] for f in expected)
    assert summary["recorded_seconds"] == pytest.approx(2 * len(expected))
    assert len(summary["gaps"]) == 1
    assert summary["gaps"][0]["seconds"] == pytest.approx(30, abs=2)


async def test_list_fragments_limit(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int
) -> None:
    """A cap keeps the earliest and says it truncated; the summary covers all."""
    result = (
        await _call(
            hass, "list_fragments", {"end": _at(loaded - 1), "duration": 60, "limit": 5}
        )
    )[CAMERA]
    assert len(result["fragments"]) == 5
    assert result["truncated"] is True
    assert result["summary"]["count"] == 30
    times = [f["server_timestamp"] for f in result["fragments"]]
    assert times == sorted(times)


async def test_list_fragments_empty_range(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int
) -> None:
    """No fragments: an empty list and an empty summary, not an error."""
    result = (
        await _call(
            hass, "list_fragments", {"start": _at(loaded + 600), "duration": 60}
        )
    )[CAMERA]
    assert result["fragments"] == []
    assert result["summary"]["count"] == 0
    assert result["summary"]["first"] is None


async def test_list_fragments_answer_reads_as_rows(
    hass: HomeAssistant,
    loaded: int,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Long answers' rows read as a list in a script and arrive as JSON rows.

    Their JSON is made beforehand and handed to Home Assistant's encoder (see
    answers.FragmentRows): here it goes out over the REST and websocket APIs,
    and a script reads the rows as it would a list of dicts. The bound above
    which an answer holds them is lowered to keep the minute listed short.
    """
    monkeypatch.setattr(answers, "PLAIN_ROWS_UP_TO", 10)
    data = {"end": _at(loaded - 1).isoformat(), "duration": 60}
    rows = (await _call(hass, "list_fragments", data))[CAMERA]["fragments"]
    assert type(rows) is answers.FragmentRows
    as_dicts = list(rows)
    assert len(as_dicts) == 30

    # Both before the first client: its server freezes the routes.
    assert await async_setup_component(hass, "api", {})
    assert await async_setup_component(hass, "websocket_api", {})
    rest = await hass_client()
    answer = await rest.post(
        f"/api/services/{DOMAIN}/list_fragments?return_response",
        json={"entity_id": CAMERA, **data},
    )
    assert answer.status == 200
    sent = await answer.json()
    listed_rest = sent["service_response"][CAMERA]
    assert listed_rest["fragments"] == as_dicts

    websocket = await hass_ws_client(hass)
    await websocket.send_json_auto_id(
        {
            "type": "call_service",
            "domain": DOMAIN,
            "service": "list_fragments",
            "service_data": data,
            "target": {"entity_id": CAMERA},
            "return_response": True,
        }
    )
    message = await websocket.receive_json()
    assert message["success"], message
    assert message["result"]["response"][CAMERA]["fragments"] == as_dicts

    fragments = f"listed['{CAMERA}'].fragments"
    read = {
        "first": f"{{{{ {fragments}[0].number }}}}",
        "last": f"{{{{ ({fragments} | last).server_timestamp }}}}",
        "count": f"{{{{ {fragments} | count }}}}",
        "size": f"{{{{ {fragments} | map(attribute='size') | sum }}}}",
        "later": (
            f"{{{{ {fragments} | selectattr('server_timestamp', '>',"
            f" {fragments}[19].server_timestamp) | list }}}}"
        ),
        "joined": f"{{{{ ([] + {fragments} + {fragments}) | count }}}}",
        "rows": f"{{{{ {fragments} }}}}",
        "json": f"{{{{ {fragments} | list | tojson }}}}",
        "answer_json": (
            f"{{{{ dict(listed['{CAMERA}'], fragments={fragments} | list)"
            " | to_json }}"
        ),
    }
    sequence = [
        {
            "action": f"{DOMAIN}.list_fragments",
            "target": {"entity_id": CAMERA},
            "data": data,
            "response_variable": "listed",
        },
        {"variables": {"read": read}},
        {"stop": "done", "response_variable": "read"},
    ]
    config = {"script": {"read_rows": {"sequence": sequence}}}
    assert await async_setup_component(hass, "script", config)
    got = await hass.services.async_call(
        "script", "read_rows", blocking=True, return_response=True
    )
    assert got is not None
    # JSON with false in it does not read back as a native value: parse it here.
    assert json.loads(got.pop("answer_json")) == listed_rest
    assert got == {
        # Rendered text that reads as a number becomes one (templates' native types).
        "first": int(as_dicts[0]["number"]),
        "last": as_dicts[-1]["server_timestamp"],
        "count": 30,
        "size": sum(row["size"] for row in as_dicts),
        "later": as_dicts[20:],
        "joined": 60,
        "rows": as_dicts,
        "json": as_dicts,
    }
    assert isinstance(got["rows"], list)  # read back from its text: a real list

    # The script's trace keeps the answer. Traces are sent through the standard
    # library's encoder, which reads the rows from as_dict.
    await websocket.send_json_auto_id(
        {"type": "trace/list", "domain": "script", "item_id": "read_rows"}
    )
    runs = await websocket.receive_json()
    run_id = runs["result"][0]["run_id"]
    await websocket.send_json_auto_id(
        {
            "type": "trace/get",
            "domain": "script",
            "item_id": "read_rows",
            "run_id": run_id,
        }
    )
    trace = await websocket.receive_json()
    assert trace["success"], trace
    step = trace["result"]["trace"]["sequence/0"][0]
    assert step["changed_variables"]["listed"][CAMERA]["fragments"] == as_dicts


async def test_aws_spellings_of_options(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int
) -> None:
    """Options in the AWS spelling or any case, as automations may have them."""
    for spelling in ("PRODUCER_TIMESTAMP", "producer_timestamp", "Producer"):
        result = (
            await _call(
                hass,
                "list_fragments",
                {"end": _at(loaded - 1), "duration": 10, "timestamp_type": spelling},
            )
        )[CAMERA]
        assert result["timestamp_type"] == "PRODUCER_TIMESTAMP"
    live = (
        await _call(hass, "get_playback_url", {"protocol": "DASH", "mode": "LIVE"})
    )[CAMERA]
    assert (live["protocol"], live["mode"]) == ("dash", "live")


# -- get_playback_url -----------------------------------------------------------


async def test_playback_urls(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """HLS live and replay, DASH on demand: URLs that play, with their expiry."""
    caplog.set_level(logging.DEBUG)
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    live = (await _call(hass, "get_playback_url", {"expires": 600}))[CAMERA]
    assert "getHLSMasterPlaylist.m3u8" in live["url"]
    expires = datetime.fromisoformat(live["expires_at"])
    assert (
        timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    )
    status, _, body = await hass.async_add_executor_job(http_get, live["url"])
    assert status == 200
    assert b"#EXTM3U" in body

    replay = (
        await _call(
            hass,
            "get_playback_url",
            {"mode": "live_replay", "start": _at(loaded - 120)},
        )
    )[CAMERA]
    assert replay["mode"] == "live_replay"
    replay_end = (
        await _call(
            hass,
            "get_playback_url",
            {"mode": "live_replay", "start": _at(loaded - 120), "duration": 60},
        )
    )[CAMERA]
    assert "SessionToken" in replay_end["url"]
    # "The last minute" is Home Assistant's (real) last minute: let the emulator's
    # clock run again, or the fixture's frozen minute may lie more than 60 s back.
    await admin(hass, emulator, "POST", "clock", {"real": True})
    recent = (
        await _call(hass, "get_playback_url", {"mode": "live_replay", "duration": 60})
    )[CAMERA]
    assert "SessionToken" in recent["url"]

    dash = (
        await _call(
            hass,
            "get_playback_url",
            {
                "protocol": "dash",
                "mode": "on_demand",
                "start": _at(loaded - 120),
                "end": _at(loaded - 60),
            },
        )
    )[CAMERA]
    assert "getDASHManifest.mpd" in dash["url"]
    status, _, body = await hass.async_add_executor_job(http_get, dash["url"])
    assert status == 200
    assert b"<MPD" in body
    # Session URLs grant access to video: never logged above debug level.
    for record in caplog.records:
        if record.levelno > logging.DEBUG:
            assert "SessionToken" not in record.getMessage()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"mode": "live", "duration": 60}, "range_not_for_live"),
        ({"mode": "live_replay", "end": "2026-01-01 10:00:00"}, "start_required"),
        ({"mode": "on_demand"}, "range_required"),
    ],
)
async def test_playback_url_bad_input(
    hass: HomeAssistant, loaded: int, data: dict[str, Any], key: str
) -> None:
    """Ranges that do not fit the mode are refused with a translated error."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "get_playback_url", data)
    assert err.value.translation_key == key


async def test_playback_url_no_media(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int
) -> None:
    """On demand over a range with nothing recorded: no_media."""
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "get_playback_url",
            {"mode": "on_demand", "start": _at(loaded + 600), "duration": 60},
        )
    assert err.value.translation_key == "no_media"


# -- save_fragments -------------------------------------------------------------


async def test_save_fragments_batches(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """1001 fragments: two GetMediaForFragmentList calls, one Matroska file."""
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    expected = await hass.async_add_executor_job(
        boto_fragments, emulator, loaded - 2003, loaded - 1
    )
    numbers = [f["FragmentNumber"] for f in expected][-1001:]
    assert len(numbers) == 1001
    target = tmp_path / "{stream}.mkv"
    result = (
        await _call(
            hass, "save_fragments", {"fragments": numbers, "filename": str(target)}
        )
    )[CAMERA]
    path = Path(result["path"])
    assert path == tmp_path / "front-door.mkv"
    assert result["fragments"] == 1001
    assert result["size"] == path.stat().st_size
    assert (await calls(hass, emulator))["GetMediaForFragmentList"] == 2
    # Every frame of both batches, in order: nothing lost or doubled at the seam.
    indices, _ = await hass.async_add_executor_job(decode_frames, str(path), "matroska")
    assert len(assert_continuous(indices)) == 1001 * FRAMES_PER_FRAGMENT
    assert _leftovers(tmp_path) == []


async def test_save_fragments_default_name_and_unknown_number(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """Default name under the media folder; an unknown number: translated error."""
    expected = await hass.async_add_executor_job(
        boto_fragments, emulator, loaded - 10, loaded - 1
    )
    result = (
        await _call(
            hass, "save_fragments", {"fragments": [expected[0]["FragmentNumber"]]}
        )
    )[CAMERA]
    path = Path(result["path"])
    assert path.parent == media / "kinesis_video" / "front-door"
    assert path.suffix == ".mkv"
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_fragments",
            {"fragments": ["1"], "filename": str(media / "nope.mkv")},
        )
    assert err.value.translation_key == "fragments_not_found"
    assert not (media / "nope.mkv").exists()
    assert _leftovers(media) == []


async def test_save_fragments_throttled_out(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Throttling that outlasts the retries: translated error, nothing written."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {
            "operation": "GetMediaForFragmentList",
            "count": -1,
            "error": "ClientLimitExceededException",
        },
    )
    expected = await hass.async_add_executor_job(
        boto_fragments, emulator, loaded - 10, loaded - 1
    )
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_fragments",
            {
                "fragments": [expected[0]["FragmentNumber"]],
                "filename": str(tmp_path / "f.mkv"),
            },
        )
    assert err.value.translation_key == "throttled"
    assert list(tmp_path.iterdir()) == []
    await admin(hass, emulator, "DELETE", "faults")


async def test_save_fragments_existing_file(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """An existing file without overwrite: refused before any download."""
    (tmp_path / "f.mkv").write_bytes(b"keep")
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "save_fragments",
            {"fragments": ["1"], "filename": str(tmp_path / "f.mkv")},
        )
    assert err.value.translation_key == "file_exists"
    assert (tmp_path / "f.mkv").read_bytes() == b"keep"


async def test_save_fragments_write_failure(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A write that fails (a folder where the file goes, overwrite on): write_failed.

    (Part files have random names of their own: a folder named like a user's
    ``f.mkv.part`` can no longer be in the way.)
    """
    expected = await hass.async_add_executor_job(
        boto_fragments, emulator, loaded - 10, loaded - 1
    )
    (tmp_path / "f.mkv").mkdir()
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_fragments",
            {
                "fragments": [expected[0]["FragmentNumber"]],
                "filename": str(tmp_path / "f.mkv"),
                "overwrite": True,
            },
        )
    assert err.value.translation_key == "write_failed"
    assert (tmp_path / "f.mkv").is_dir()
    assert _leftovers(tmp_path) == []


# -- save_images ----------------------------------------------------------------


async def test_save_images_windows_and_no_media(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """400 s every 20 s: two GetImages windows, 21 stills, gaps reported."""
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    start = loaded - 600
    await admin(
        hass,
        emulator,
        "POST",
        "streams/front-door",
        {"gaps": [[start + 95, start + 125]]},
    )
    result = (
        await _call(
            hass,
            "save_images",
            {
                "start": _at(start),
                "duration": 400,
                "interval": 20,
                "format": "png",
                "width": 160,
                "folder": str(tmp_path / "{stream}"),
            },
        )
    )[CAMERA]
    assert result["folder"] == str(tmp_path / "front-door")
    # The emulator's gap holds the samples at start + 100 s and start + 120 s.
    assert [datetime.fromisoformat(t).timestamp() for t in result["no_media"]] == [
        pytest.approx(start + 100, abs=0.001),
        pytest.approx(start + 120, abs=0.001),
    ]
    assert len(result["files"]) == 19
    assert result["errors"] == []
    assert (await calls(hass, emulator))["GetImages"] == 2
    first = Path(result["files"][0])
    assert first.suffix == ".png"
    assert first.read_bytes().startswith(b"\x89PNG")

    def size() -> tuple[int, int]:
        with av.open(str(first)) as container:
            frame = next(container.decode(video=0))
            return frame.width, frame.height

    assert await hass.async_add_executor_job(size) == (160, 90)
    assert _leftovers(tmp_path) == []

    # Again without overwrite: refused, and the earlier stills are kept.
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "save_images",
            {
                "start": _at(start),
                "duration": 400,
                "interval": 20,
                "format": "png",
                "folder": str(tmp_path / "{stream}"),
            },
        )
    assert err.value.translation_key == "file_exists"
    assert all(Path(name).exists() for name in result["files"])


async def test_save_images_overwrite_failure_keeps_old_stills(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A failure in a later window replaces nothing: the old stills stay as they were.

    Also: a range of exactly one window costs exactly one GetImages call.
    """
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    data = {
        "start": _at(loaded - 900),
        "duration": 300,
        "interval": 20,
        "folder": str(tmp_path / "stills"),
    }
    await admin(hass, emulator, "DELETE", "calls")
    first = (await _call(hass, "save_images", data))[CAMERA]
    assert (await calls(hass, emulator))["GetImages"] == 1
    assert len(first["files"]) == 16  # 0, 20, ..., 300 s: the end is inclusive
    before = {name: Path(name).read_bytes() for name in first["files"]}

    # Ask for 600 s (two windows) at a different size, the second window failing.
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetImages", "skip": 1, "count": 20, "error": "InternalFailure"},
    )
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_images",
            {**data, "duration": 600, "width": 64, "overwrite": True},
        )
    assert err.value.translation_key == "service_failed"
    assert {name: Path(name).read_bytes() for name in first["files"]} == before
    assert sorted(str(p) for p in (tmp_path / "stills").iterdir()) == sorted(before)


async def test_save_images_default_folder_jpeg(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """Default folder under media, JPEG."""
    result = (
        await _call(hass, "save_images", {"end": _at(loaded - 5), "duration": 2})
    )[CAMERA]
    assert len(result["files"]) == 3
    assert Path(result["files"][0]).read_bytes().startswith(b"\xff\xd8")
    assert Path(result["folder"]).parent == media / "kinesis_video" / "front-door"


async def test_save_images_errors(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Too many images, nothing recorded, a failing service, an unwritable folder."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "save_images", {"duration": 3600, "interval": 1})
    assert err.value.translation_key == "too_many_images"

    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_images",
            # Before the 2 h of history (a future end would be waited for).
            {
                "start": _at(loaded - 3 * 3600),
                "duration": 10,
                "folder": str(tmp_path / "a"),
            },
        )
    assert err.value.translation_key == "no_media"

    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "GetImages", "count": -1, "error": "InvalidArgumentException"},
    )
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_images",
            {"end": _at(loaded - 5), "duration": 10, "folder": str(tmp_path / "b")},
        )
    assert err.value.translation_key == "request_rejected"
    await admin(hass, emulator, "DELETE", "faults")

    (tmp_path / "c").write_bytes(b"a file, not a folder")
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "save_images",
            {"end": _at(loaded - 5), "duration": 2, "folder": str(tmp_path / "c")},
        )
    assert err.value.translation_key == "not_a_folder"


async def test_save_clip_file_appears_meanwhile(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A file created while the clip downloads is not replaced."""
    await admin(
        hass, emulator, "POST", "faults", {"operation": "GetClip", "latency_s": 1.0}
    )
    target = tmp_path / "race.mp4"
    task = hass.async_create_task(
        _call(
            hass,
            "save_clip",
            {"start": _at(loaded - 30), "duration": 10, "filename": str(target)},
        )
    )
    await asyncio.sleep(0.3)
    await hass.async_add_executor_job(target.write_bytes, b"someone else's")
    with pytest.raises(ServiceValidationError) as err:
        await task
    assert err.value.translation_key == "file_exists"
    assert target.read_bytes() == b"someone else's"
    assert _leftovers(tmp_path) == []


async def test_save_clip_target_not_writable(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """The file cannot be put in place (a folder of its name): write_failed."""
    (tmp_path / "c.mp4").mkdir()
    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass,
            "save_clip",
            {
                "start": _at(loaded - 30),
                "duration": 10,
                "filename": str(tmp_path / "c.mp4"),
                "overwrite": True,
            },
        )
    assert err.value.translation_key == "write_failed"
    assert (tmp_path / "c.mp4").is_dir()
    assert _leftovers(tmp_path) == []


async def test_save_images_reports_media_errors(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Stills AWS could not decode are listed under errors.

    Mocked: the emulator always decodes its own H.264, so it never answers
    MEDIA_ERROR; one such image is added to a real answer.
    """
    client = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.client
    real = client.get_images

    async def with_error(*args: Any, **kwargs: Any) -> list[Image]:
        images: list[Image] = await real(*args, **kwargs)
        broken = Image(images[-1].timestamp + timedelta(seconds=1), None, "MEDIA_ERROR")
        return [*images, broken]

    with patch.object(client, "get_images", with_error):
        result = (
            await _call(
                hass,
                "save_images",
                {
                    "end": _at(loaded - 5),
                    "duration": 2,
                    "folder": str(tmp_path / "img"),
                },
            )
        )[CAMERA]
    assert len(result["files"]) == 3
    assert [e["error"] for e in result["errors"]] == ["MEDIA_ERROR"]
