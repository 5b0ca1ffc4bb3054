"""The one table from the client's errors to what the user reads.

Actions, polls, the config flow and the media source all translate a
``KinesisVideoError`` through ``ERRORS`` (keyed by its stable ``code``).
Placeholders carry the stream's name and the client's message, which names
the operation and AWS's code, never a secret or a URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from homeassistant.components.media_source import Unresolvable
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers.update_coordinator import UpdateFailed

from .const import DOMAIN
from .export import FileTakenError, MediaJoinError
from .kvs import KinesisVideoError
from .safe_files import FolderChangedError


@dataclass(frozen=True, slots=True)
class ErrorKeys:
    """How one kind of client error reads in each place."""

    # An action's message, and the placeholders it takes.
    action: str
    placeholders: tuple[str, ...] = ("stream",)
    # The config flow's form error.
    form: str = "cannot_connect"
    # A poll's message; None: the poll's own ("update_failed" and the like).
    poll: str | None = None
    # New credentials would help: a poll asks for them.
    reauth: bool = False
    # Nothing the user can do (AWS is out or throttles): logged at warning.
    outage: bool = False


_DETAILED: Final = ("stream", "error")

ERRORS: Final[dict[str, ErrorKeys]] = {
    "authentication": ErrorKeys(
        "auth_failed", (), form="invalid_auth", poll="auth_failed", reauth=True
    ),
    "clock_skew": ErrorKeys("clock_skew", (), form="clock_skew", poll="clock_skew"),
    "permission_denied": ErrorKeys("permission_denied", _DETAILED),
    "throttled": ErrorKeys("throttled", form="throttled", outage=True),
    "no_media": ErrorKeys("no_media"),
    "stream_not_found": ErrorKeys("action_stream_not_found"),
    "no_data_retention": ErrorKeys("action_no_data_retention"),
    "invalid_argument": ErrorKeys("request_rejected", _DETAILED),
    "service": ErrorKeys("service_failed", _DETAILED, outage=True),
}
# A client error of no known kind (the base class).
_OTHER: Final = ErrorKeys("service_failed", _DETAILED)


def keys_for(err: KinesisVideoError) -> ErrorKeys:
    """The table's row for ``err``."""
    return ERRORS.get(err.code, _OTHER)


def invalid(key: str, **placeholders: str) -> ServiceValidationError:
    """The caller's input cannot work: a translated validation error."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def failed(key: str, **placeholders: str) -> HomeAssistantError:
    """The action failed at run time: a translated error."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


# -- actions ------------------------------------------------------------------


def action_error(
    err: KinesisVideoError, stream: str, **keys_by_code: str
) -> HomeAssistantError:
    """The action's error for a client failure; ``keys_by_code`` overrides keys."""
    row = keys_for(err)
    values = {"stream": stream, "error": str(err)}
    return failed(
        keys_by_code.get(err.code, row.action),
        **{name: values[name] for name in row.placeholders},
    )


def write_error(
    err: OSError | MediaJoinError, file: Path, folder: Path | None = None
) -> HomeAssistantError:
    """The action's error for a failed write of ``file`` into ``folder``.

    ``folder`` defaults to the file's; stills name their folder as ``file``.
    """
    if isinstance(err, FileTakenError):  # appeared while the media came
        return invalid("file_exists", path=str(err.path))
    if isinstance(err, FileExistsError):
        return invalid("file_exists", path=str(file))
    if isinstance(err, FolderChangedError):
        return failed("folder_changed", path=str(folder or file.parent))
    return failed("write_failed", path=str(file), error=str(err))


@contextmanager
def action_errors(
    stream: str,
    *,
    saving: Path | None = None,
    folder: Path | None = None,
    **keys_by_code: str,
) -> Iterator[None]:
    """Raise the client's (and, ``saving`` a file, the disk's) errors translated.

    ``keys_by_code`` gives an action's own key for an error code, e.g.
    ``no_media="fragments_not_found"``.
    """
    try:
        yield
    except KinesisVideoError as err:
        raise action_error(err, stream, **keys_by_code) from err
    except (OSError, MediaJoinError) as err:
        if saving is None:
            raise
        raise write_error(err, saving, folder) from err


# -- polls --------------------------------------------------------------------


class ServiceOutageError(UpdateFailed):
    """A poll failed because AWS is out (5xx, no connection) or throttles."""


def update_error(
    err: KinesisVideoError, failed_key: str, **keys_by_code: str
) -> ConfigEntryAuthFailed | UpdateFailed:
    """What a coordinator raises for a client failure.

    A refused key asks for a new one; a wrong clock says so (new keys would not
    help, so no reauth); anything else fails the update with ``failed_key`` (or
    the poll's own key for the code), an outage as ``ServiceOutageError``.
    """
    row = keys_for(err)
    if row.reauth:
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key=row.poll
        )
    if row.poll is not None:
        return UpdateFailed(translation_domain=DOMAIN, translation_key=row.poll)
    cls = ServiceOutageError if row.outage else UpdateFailed
    return cls(
        translation_domain=DOMAIN,
        translation_key=keys_by_code.get(err.code, failed_key),
        translation_placeholders={"error": str(err)},
    )


# -- config flow and media source ---------------------------------------------


def form_error(err: KinesisVideoError) -> str:
    """The config flow's form error for a failed call."""
    return keys_for(err).form


def media_error(err: KinesisVideoError, key: str, stream: str) -> Unresolvable:
    """The media browser's error (``key``: browsing or playing) for a failure."""
    return Unresolvable(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"stream": stream, "error": str(err)},
    )
