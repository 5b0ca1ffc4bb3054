"""Safe file writes for saved media: a folder checked once, parts published atomically.

Plain Python, no Home Assistant imports. Every call blocks: run it in an executor.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Final

PART_SUFFIX: Final = ".part"
# Of a target's name, this many bytes are kept in its part files' names (file names
# may have 255 bytes; the random tail needs room).
_PART_NAME_KEEP: Final = 120
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


def has_parent_reference(path: str) -> bool:
    """True if the path climbs with ``..`` anywhere (checked before resolving)."""
    return ".." in PurePath(path).parts


class PathNotAllowedError(PermissionError):
    """The folder's real path is not one Home Assistant may write to."""


class FolderChangedError(OSError):
    """The folder was moved or replaced (by a symlink, say) while in use."""


# Where a process sees its open descriptors as paths (Linux). Opening
# /proc/self/fd/N reaches the very file descriptor N was opened on, whatever
# its name now leads to, so code that opens files by name (boto downloads,
# FFmpeg) cannot be redirected by a symlink put in its place. Elsewhere parts
# are reached through the folder's real path.
_FD_PATHS: Final = Path("/proc/self/fd")


@dataclass(frozen=True, slots=True)
class Part:
    """A part file: its ``name`` in the folder, and the ``path`` to open it by."""

    name: str
    path: Path


def _discard(folder_fd: int, parts: dict[str, int]) -> None:
    """Delete unpublished parts and close every descriptor (once)."""
    for name, part_fd in parts.items():
        with contextlib.suppress(OSError):  # best effort: keep the first error
            os.unlink(name, dir_fd=folder_fd)
        with contextlib.suppress(OSError):
            os.close(part_fd)
    parts.clear()
    with contextlib.suppress(OSError):
        os.close(folder_fd)


class Folder:
    """A folder checked once, then written only through descriptors.

    Part files get a random name of their own, created exclusively and kept
    open, so two writers (or a user's ``name.part``) never share one, and a
    part swapped for a symlink is never written through. Publishing is an
    atomic link or rename inside the folder's descriptor, after checking the
    name still holds the part. Swapping the folder, or one of its parents, for
    a symlink after the check cannot redirect a write: publishing fails with
    FolderChangedError. Unpublished parts are deleted on ``close`` (or when the
    folder is dropped, e.g. by a cancelled action). Every method blocks: run
    them in an executor.
    """

    def __init__(self, path: Path, fd: int) -> None:
        """Use ``open``."""
        self.path = path
        self._fd = fd
        self._parts: dict[str, int] = {}  # unpublished part name -> its descriptor
        self._lock = threading.Lock()  # parts may be made in several threads
        self._closed = False
        self._finalizer = weakref.finalize(self, _discard, fd, self._parts)

    @classmethod
    def open(cls, path: Path, allowed: Callable[[str], bool]) -> Folder:
        """Create ``path`` if needed and open it if its real path is allowed."""
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:  # a file where the folder should be
            raise NotADirectoryError(str(path)) from err
        real = Path(os.path.realpath(path))
        if not allowed(str(real)):
            raise PathNotAllowedError(str(path))
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC)
        folder = cls(real, fd)
        try:
            folder.check()
        except BaseException:
            folder.close()
            raise
        return folder

    def check(self) -> None:
        """FolderChangedError unless the folder is still at its real path."""
        try:
            same = Path(os.path.realpath(self.path)) == self.path and (
                os.path.samestat(os.stat(self.path), os.fstat(self._fd))
            )
        except OSError:
            same = False
        if not same:
            raise FolderChangedError(str(self.path))

    def exists(self, name: str) -> bool:
        """True if anything (a symlink too) has ``name`` in the folder."""
        try:
            os.stat(name, dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def new_part(self, name: str) -> Part:
        """Create an empty part file for ``name``, kept open until published."""
        kept = name.encode()[:_PART_NAME_KEEP].decode(errors="ignore")
        part = f"{kept}.{secrets.token_hex(6)}{PART_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
        with self._lock:
            if self._closed:  # the action ended (cancelled) while this waited
                raise FolderChangedError(str(self.path))
            part_fd = os.open(part, flags, 0o666, dir_fd=self._fd)
            self._parts[part] = part_fd
        if _FD_PATHS.is_dir():
            return Part(part, _FD_PATHS / str(part_fd))
        return Part(part, self.path / part)

    def write_part(self, name: str, data: bytes) -> Part:
        """A new part file for ``name`` holding ``data``."""
        part = self.new_part(name)
        with os.fdopen(os.dup(self._parts[part.name]), "wb") as file:
            file.write(data)
        return part

    def publish(self, part: Part, name: str, *, overwrite: bool) -> int:
        """Move a finished part onto ``name`` atomically; its size.

        Without ``overwrite`` a hard link makes the step fail if ``name``
        appeared in the meantime (FileExistsError): an existing file is never
        touched. With it, a rename replaces the file (or a symlink, never
        followed) in one step.
        """
        self.check()
        fd = self._fd
        part_fd = self._parts[part.name]
        try:
            held = os.stat(part.name, dir_fd=fd, follow_symlinks=False)
        except OSError as err:
            raise FolderChangedError(str(self.path / part.name)) from err
        opened = os.fstat(part_fd)
        if not os.path.samestat(held, opened):  # the part's name was replaced
            raise FolderChangedError(str(self.path / part.name))
        if overwrite:
            os.replace(part.name, name, src_dir_fd=fd, dst_dir_fd=fd)
        else:
            self._publish_new(part.name, name)
        with self._lock:
            del self._parts[part.name]
        os.close(part_fd)
        return opened.st_size

    def _publish_new(self, part: str, name: str) -> None:
        """Publish ``part`` as ``name``, which must not exist."""
        fd = self._fd
        try:
            os.link(part, name, src_dir_fd=fd, dst_dir_fd=fd)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links (FAT, some shares)
            # Claim the name first: only one writer can create it.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
            os.close(os.open(name, flags, 0o666, dir_fd=fd))
            try:
                os.replace(part, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                self.remove(name)  # the empty claim, not someone's file
                raise
            return
        os.unlink(part, dir_fd=fd)

    def drop(self, part: Part) -> None:
        """Delete a part that is no longer needed (e.g. joined into another)."""
        with self._lock:
            part_fd = self._parts.pop(part.name, None)
        with contextlib.suppress(OSError):  # best effort, as on close
            os.unlink(part.name, dir_fd=self._fd)
        if part_fd is not None:
            with contextlib.suppress(OSError):
                os.close(part_fd)

    def remove(self, *names: str) -> None:
        """Delete files of the folder that may or may not exist."""
        for name in names:
            with contextlib.suppress(OSError):  # best effort: keep the first error
                os.unlink(name, dir_fd=self._fd)

    def close(self) -> None:
        """Delete the parts not published, then let the folder go."""
        with self._lock:
            self._closed = True
            self._finalizer()
