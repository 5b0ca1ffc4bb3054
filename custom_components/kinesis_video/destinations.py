"""Where an action saves: a name template rendered, checked and opened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .action_schemas import shorten
from .export import Destination
from .folders import MEDIA_FOLDER, media_folder
from .naming import InvalidNameError, render_name
from .safe_files import (
    Folder,
    FolderChangedError,
    PathNotAllowedError,
    has_parent_reference,
)
from .translated_errors import failed, invalid

# Local time with its UTC offset: the hour repeated when clocks go back gets
# names of its own. No colons, which Windows shares refuse.
DEFAULT_CLIP_NAME: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}.mp4"
)
DEFAULT_FRAGMENTS_NAME: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}_fragments.mkv"
)
DEFAULT_IMAGES_FOLDER: Final = (
    MEDIA_FOLDER + "/{stream}/{stream}_{start:%Y%m%d_%H%M%S%z}_images"
)
NAME_MAX_BYTES: Final = 255
PATH_MAX_BYTES: Final = 4096

_NAME_PROBLEMS: Final = {
    "template": "invalid_filename",
    "control": "filename_control_character",
    "empty": "empty_filename",
}


def render(template: str, stream: str, start: datetime) -> str:
    """The template filled in with the stream and the local start time."""
    try:
        local = dt_util.as_local(start)
        return render_name(template, stream=stream, start=local)
    except InvalidNameError as err:
        # repr: a control character shows as an escape, not as itself.
        details = {"error": shorten(str(err))} if err.reason == "template" else {}
        raise invalid(
            _NAME_PROBLEMS[err.reason], template=shorten(repr(template)), **details
        ) from err


def _check_path(hass: HomeAssistant, rendered: str) -> Path:
    """An absolute path for ``rendered`` (relative = under media), no ``..``."""
    if has_parent_reference(rendered):
        raise invalid("invalid_path", path=shorten(rendered))
    path = Path(rendered)
    # File systems allow 255 bytes per name: refuse longer ones as bad input.
    if any(len(part.encode()) > NAME_MAX_BYTES for part in path.parts):
        raise invalid("name_too_long", limit=str(NAME_MAX_BYTES))
    if not path.is_absolute():
        path = media_folder(hass)[1] / path
    # Nor a whole path beyond PATH_MAX (with its NUL): the message does not
    # echo it, as it may be kilobytes long.
    if len(str(path).encode()) >= PATH_MAX_BYTES:
        raise invalid("path_too_long", limit=str(PATH_MAX_BYTES - 1))
    return path


def _open_folder(hass: HomeAssistant, folder: Path, checked: Path) -> Folder:
    """Open ``folder`` for writing if ``checked`` is allowed (executor).

    ``checked`` (the target, or the folder itself) is resolved, symlinks too,
    before anything is created; the folder's real path is checked again once
    it is open, and every write goes through that open folder.
    """
    try:
        if not hass.config.is_allowed_path(str(checked.resolve())):
            raise invalid("path_not_allowed", path=str(checked))
        return Folder.open(folder, hass.config.is_allowed_path)
    except PathNotAllowedError as err:
        raise invalid("path_not_allowed", path=str(checked)) from err
    except FolderChangedError as err:
        raise failed("folder_changed", path=str(folder)) from err
    except NotADirectoryError as err:  # a file where a folder should be
        raise invalid("not_a_folder", path=str(folder)) from err
    except OSError as err:
        raise failed("write_failed", path=str(folder), error=str(err)) from err


def _open_file(hass: HomeAssistant, path: Path, overwrite: bool) -> Destination:
    """The open folder of ``path``; refused if the file exists and must stay."""
    folder = _open_folder(hass, path.parent, path)
    try:
        exists = folder.exists(path.name)
    except OSError as err:
        folder.close()
        raise failed("write_failed", path=str(path), error=str(err)) from err
    if exists and not overwrite:
        folder.close()
        raise invalid("file_exists", path=str(folder.path / path.name))
    return Destination(folder, path.name, overwrite)


@asynccontextmanager
async def file_destination(
    hass: HomeAssistant, rendered: str, overwrite: bool
) -> AsyncIterator[Destination]:
    """The file ``rendered`` names, its folder open while the block runs."""
    path = _check_path(hass, rendered)
    into = await hass.async_add_executor_job(_open_file, hass, path, overwrite)
    try:
        yield into
    finally:
        await hass.async_add_executor_job(into.folder.close)


@asynccontextmanager
async def folder_destination(
    hass: HomeAssistant, rendered: str, overwrite: bool
) -> AsyncIterator[Destination]:
    """The folder ``rendered`` names, open while the block runs."""
    path = _check_path(hass, rendered)
    folder = await hass.async_add_executor_job(_open_folder, hass, path, path)
    try:
        yield Destination(folder, "", overwrite)
    finally:
        await hass.async_add_executor_job(folder.close)


def saved_path(into: Destination) -> Path:
    """The real path of the file ``into`` names."""
    return into.folder.path / into.name
