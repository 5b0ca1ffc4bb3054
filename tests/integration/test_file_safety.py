"""Archive actions writing files: races, symlinks, names, box order."""

# Small checks of files the test made under tmp_path; not code under test.
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from custom_components.kinesis_video.const import DOMAIN
from custom_components.kinesis_video.kvs import Image
from kvs_emulator.testing import EmulatorProcess
from tests.emulator.helpers import FRAMES_PER_FRAGMENT, assert_continuous, decode_frames

from . import test_services
from .conftest import admin, calls
from .test_services import CAMERA, _at, _call, _leftovers

# The same set-up as test_services: media folder under tmp_path, clock frozen.
media = test_services.media
loaded = test_services.loaded

BACKYARD = "camera.backyard"


def _top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order."""
    boxes: list[str] = []
    with path.open("rb") as file:
        while header := file.read(8):
            size, kind = struct.unpack(">I4s", header)
            boxes.append(kind.decode("latin-1"))
            if size == 1:  # a 64-bit size follows the type
                size = struct.unpack(">Q", file.read(8))[0] - 8
            elif size == 0:  # the box runs to the end of the file
                break
            file.seek(size - 8, os.SEEK_CUR)
    return boxes


def _client(hass: HomeAssistant) -> Any:
    return hass.config_entries.async_entries(DOMAIN)[0].runtime_data.client


# -- one writer per name --------------------------------------------------------


async def test_concurrent_clips_to_one_name(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Two clips saved at once to one name: one wins whole, the other is refused.

    Two cameras, so that GetClip's per-stream pacing does not serialize them.
    Mocked: both downloads must be complete before either is published, an
    overlap that cannot be timed against the emulator; a barrier holds them.
    """
    client = _client(hass)
    real = client.get_clip_to_file
    both_downloaded = asyncio.Barrier(2)

    async def download_then_wait(*args: Any, **kwargs: Any) -> int:
        written = int(await real(*args, **kwargs))
        async with asyncio.timeout(60):  # a safety net, not a timing assumption
            await both_downloaded.wait()
        return written

    target = tmp_path / "same.mp4"
    with patch.object(client, "get_clip_to_file", download_then_wait):
        results = await asyncio.gather(
            *(
                _call(
                    hass,
                    "save_clip",
                    {
                        "start": _at(loaded - 60),
                        "duration": seconds,
                        "filename": str(target),
                    },
                    camera,
                )
                for camera, seconds in ((CAMERA, 10), (BACKYARD, 20))
            ),
            return_exceptions=True,
        )
    won = [result for result in results if isinstance(result, dict)]
    lost = [result for result in results if not isinstance(result, dict)]
    assert len(won) == 1, results
    assert len(lost) == 1
    assert isinstance(lost[0], ServiceValidationError)
    assert lost[0].translation_key == "file_exists"
    (winner,) = won[0].values()
    assert winner["size"] == target.stat().st_size
    indices, _ = await hass.async_add_executor_job(decode_frames, str(target))
    assert len(assert_continuous(indices)) == winner["fragments"] * FRAMES_PER_FRAGMENT
    assert _leftovers(tmp_path) == []


async def test_user_part_files_are_not_touched(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """A user's own ``<name>.part`` is neither written, nor used, nor removed."""
    user_part = tmp_path / "c.mp4.part"
    user_part.write_bytes(b"mine")
    data = {
        "start": _at(loaded - 30),
        "duration": 10,
        "filename": str(tmp_path / "c.mp4"),
    }
    result = (await _call(hass, "save_clip", data))[CAMERA]
    assert result["path"] == str(tmp_path / "c.mp4")
    assert user_part.read_bytes() == b"mine"
    with pytest.raises(ServiceValidationError):
        await _call(hass, "save_clip", data)
    assert user_part.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "c.mp4.part"]


# -- the folder swapped for a symlink after it was checked ----------------------


def _swap_for_symlink(folder: Path, outside: Path) -> None:
    """Move ``folder`` aside and put a symlink to ``outside`` in its place."""
    folder.rename(folder.with_name(folder.name + "-moved"))
    folder.symlink_to(outside, target_is_directory=True)


async def _save_clip_swapping(
    hass: HomeAssistant,
    loaded: int,
    swap: Callable[[], None],
    target: Path,
    *,
    overwrite: bool,
) -> HomeAssistantError:
    """save_clip to ``target`` with ``swap`` run just before the download; its error.

    Mocked: a swap has to land between the check and the write, which cannot be
    timed against the emulator; the download is wrapped to swap first.
    """
    client = _client(hass)
    real = client.get_clip_to_file

    async def swap_then_download(*args: Any, **kwargs: Any) -> int:
        await hass.async_add_executor_job(swap)
        return int(await real(*args, **kwargs))

    with (
        patch.object(client, "get_clip_to_file", swap_then_download),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(
            hass,
            "save_clip",
            {
                "start": _at(loaded - 30),
                "duration": 10,
                "filename": str(target),
                "overwrite": overwrite,
            },
        )
    return err.value


@pytest.mark.parametrize("overwrite", [False, True])
async def test_folder_swapped_while_saving_clip(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    tmp_path: Path,
    overwrite: bool,
) -> None:
    """Nothing is written outside the allowed folders, no outside file replaced.

    Mocked: the swap has to land between the folder check and the write, which
    cannot be timed against the emulator; the download is wrapped to swap first.
    """
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "c.mp4").write_bytes(b"outside")
    folder = tmp_path / "clips"
    folder.mkdir()
    err = await _save_clip_swapping(
        hass,
        loaded,
        partial(_swap_for_symlink, folder, outside),
        folder / "c.mp4",
        overwrite=overwrite,
    )
    assert err.translation_key == "folder_changed"
    assert sorted(p.name for p in outside.iterdir()) == ["c.mp4"]
    assert (outside / "c.mp4").read_bytes() == b"outside"
    assert list((tmp_path / "clips-moved").iterdir()) == []


async def test_folder_swapped_while_saving_fragments(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """save_fragments: the same swap writes nothing outside. Mocked as above."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    folder = tmp_path / "frags"
    folder.mkdir()
    listed = await _call(hass, "list_fragments", {"end": _at(loaded), "duration": 4})
    number = listed[CAMERA]["fragments"][0]["number"]
    client = _client(hass)
    real = client.get_media_for_fragments_to_file

    async def swap_then_download(*args: Any, **kwargs: Any) -> int:
        await hass.async_add_executor_job(_swap_for_symlink, folder, outside)
        return int(await real(*args, **kwargs))

    with (
        patch.object(client, "get_media_for_fragments_to_file", swap_then_download),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(
            hass,
            "save_fragments",
            {"fragments": [number], "filename": str(folder / "f.mkv")},
        )
    assert err.value.translation_key == "folder_changed"
    assert list(outside.iterdir()) == []


async def test_folder_swapped_while_saving_images(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """save_images: the stills never land outside. Mocked as above."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    folder = tmp_path / "stills"
    client = _client(hass)
    real = client.get_images

    async def swap_after_fetch(*args: Any, **kwargs: Any) -> list[Image]:
        images: list[Image] = await real(*args, **kwargs)
        await hass.async_add_executor_job(_swap_for_symlink, folder, outside)
        return images

    with (
        patch.object(client, "get_images", swap_after_fetch),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(
            hass,
            "save_images",
            {"end": _at(loaded - 5), "duration": 2, "folder": str(folder)},
        )
    assert err.value.translation_key == "folder_changed"
    assert list(outside.iterdir()) == []
    assert list((tmp_path / "stills-moved").iterdir()) == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("overwrite", [False, True])
async def test_part_swapped_for_a_symlink_while_saving_clip(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    tmp_path: Path,
    overwrite: bool,
) -> None:
    """Someone who may write in the folder swaps the part for a symlink.

    The download still lands in the part that was created (it is reached
    through its open descriptor), nothing outside is written, and the swapped
    name is not published. Mocked: the swap has to land between the part's
    creation and the download; the download is wrapped to swap first.
    """
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(b"secret: keep me")
    folder = tmp_path / "clips"
    folder.mkdir()

    def swap() -> None:
        (part,) = folder.glob("*.part")
        part.unlink()
        part.symlink_to(outside)

    err = await _save_clip_swapping(
        hass, loaded, swap, folder / "c.mp4", overwrite=overwrite
    )
    assert err.translation_key == "folder_changed"
    assert outside.read_bytes() == b"secret: keep me"
    assert list(folder.iterdir()) == []


async def test_refused_and_failed_saves_leave_no_descriptor_open(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Long names, existing files and API failures close what they opened."""
    (tmp_path / "c.mp4").write_bytes(b"old")
    await _call(hass, "list_fragments", {"duration": 4})  # clients, pools ready
    before = _open_fds()
    for data in (
        {"filename": str(tmp_path / ("x" * 300 + ".mp4"))},
        {"filename": str(tmp_path / "c.mp4")},
        {"filename": str(tmp_path / "new.mp4"), "start": _at(loaded + 3600)},
    ):
        with pytest.raises(HomeAssistantError):
            await _call(hass, "save_clip", {"duration": 10, **data})
    assert _open_fds() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.mp4"]


# -- names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "key"),
    [
        ("{start:{start.__class__}}.mp4", "invalid_filename"),
        ("{start:%Y{stream}}.mp4", "invalid_filename"),
        ("{stream.x}.mp4", "invalid_filename"),
        ("{stream!r}.mp4", "invalid_filename"),
        ("{start.year}.mp4", "invalid_filename"),
        ("x\n.mp4", "filename_control_character"),
        ("x\x00.mp4", "filename_control_character"),
        ("{start:%Y%n}.mp4", "filename_control_character"),
        ("", "empty_filename"),
        ("   ", "empty_filename"),
        ("{stream}/..", "invalid_path"),
        ("x\x85.mp4", "filename_control_character"),  # C1 control
        ("x\ud800.mp4", "filename_control_character"),  # lone surrogate (YAML)
        ("x" * 300 + ".mp4", "name_too_long"),
    ],
)
async def test_bad_names_touch_nothing(  # noqa: PLR0917 - fixtures and parameters
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    media: Path,
    filename: str,
    key: str,
) -> None:
    """A refused name: a translated error, no call, a user's files untouched."""
    media.mkdir()
    (media / "x.mp4.part").write_bytes(b"mine")
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "save_clip", {"duration": 60, "filename": filename})
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    assert key not in str(err.value)
    assert "GetClip" not in await calls(hass, emulator)
    assert [p.name for p in media.iterdir()] == ["x.mp4.part"]
    assert (media / "x.mp4.part").read_bytes() == b"mine"


async def test_default_name_has_the_utc_offset(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, media: Path
) -> None:
    """The hour repeated when clocks go back gets two names, none with a colon."""
    start = _at(loaded - 30)
    result = (await _call(hass, "save_clip", {"start": start, "duration": 4}))[CAMERA]
    local = dt_util.as_local(start)
    assert Path(result["path"]).name == f"front-door_{local:%Y%m%d_%H%M%S%z}.mp4"
    assert ":" not in Path(result["path"]).name


@pytest.mark.parametrize(
    "data",
    [
        {"start": "2026-01-01 10:00:00", "duration": {"days": 999999}},
        {"start": "9999-12-31 23:00:00", "duration": 60},
        {"end": "0001-01-01 00:30:00", "duration": 60},
        {"duration": {"days": 999999}},
    ],
)
async def test_extreme_ranges(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, data: dict[str, Any]
) -> None:
    """Ranges at the ends of the calendar: range_too_long, not OverflowError."""
    for service in ("save_clip", "list_fragments", "save_images"):
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, service, data)
        assert err.value.translation_key == "range_too_long"


# -- box order ------------------------------------------------------------------


async def test_clips_start_with_their_index(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """One GetClip answer or a joined clip: ``moov`` before ``mdat``."""
    single = (
        await _call(
            hass,
            "save_clip",
            {"start": _at(loaded - 30), "duration": 10, "filename": "one.mp4"},
        )
    )[CAMERA]
    joined = (
        await _call(
            hass,
            "save_clip",
            {"start": _at(loaded - 721), "duration": 720, "filename": "two.mp4"},
        )
    )[CAMERA]
    assert joined["clip_calls"] == 2
    for result in (single, joined):
        boxes = await hass.async_add_executor_job(
            _top_level_boxes, Path(result["path"])
        )
        assert "moov" in boxes, boxes
        assert boxes.index("moov") < boxes.index("mdat"), boxes


# -- failures late in the write -------------------------------------------------


async def test_join_failure_leaves_nothing(
    hass: HomeAssistant, emulator: EmulatorProcess, loaded: int, tmp_path: Path
) -> None:
    """Parts that cannot be joined: write_failed, no piece or part left.

    Mocked: the emulator's media always joins; FFmpeg's refusal is simulated.
    """
    with (
        patch(
            "custom_components.kinesis_video.mp4join.Mp4Joiner.add",
            side_effect=ValueError("Cannot join the clip parts"),
        ),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(
            hass,
            "save_clip",
            {
                "start": _at(loaded - 721),
                "duration": 720,
                "filename": str(tmp_path / "j.mp4"),
            },
        )
    assert err.value.translation_key == "write_failed"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overwrite", "key"), [(False, "file_exists"), (True, "write_failed")]
)
async def test_still_in_the_way_at_publish(  # noqa: PLR0917 - fixtures and parameters
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    loaded: int,
    tmp_path: Path,
    overwrite: bool,
    key: str,
) -> None:
    """A still's name taken while later windows are fetched: nothing replaced.

    Without overwrite a file appears (refused, the call leaves no still); with
    it a folder appears, which a still cannot replace (write_failed). Mocked:
    the moment between two GetImages windows cannot be timed; the second call
    is wrapped to take the name first.
    """
    await admin(hass, emulator, "POST", "config", {"tps_limits": False})
    folder = tmp_path / "stills"
    client = _client(hass)
    real = client.get_images
    taken: list[Path] = []

    def take_a_name() -> None:
        part = sorted(folder.glob("*.part"))[0]
        taken.append(folder / part.name.rsplit(".", 2)[0])
        if overwrite:
            taken[0].mkdir()
        else:
            taken[0].write_bytes(b"someone else's")

    async def second_takes_a_name(*args: Any, **kwargs: Any) -> list[Image]:
        if any(folder.glob("*.part")) and not taken:
            await hass.async_add_executor_job(take_a_name)
        images: list[Image] = await real(*args, **kwargs)
        return images

    with (
        patch.object(client, "get_images", second_takes_a_name),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(
            hass,
            "save_images",
            {
                "start": _at(loaded - 900),
                "duration": 400,
                "interval": 20,
                "folder": str(folder),
                "overwrite": overwrite,
            },
        )
    assert err.value.translation_key == key
    assert [p.name for p in folder.iterdir()] == [taken[0].name]
    if not overwrite:
        assert taken[0].read_bytes() == b"someone else's"
