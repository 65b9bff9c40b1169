"""Backup file I/O that never goes through a symlink: what is at a path, reading a regular file
with its stat, its comparable state (SHA-256, size, mode, owner), making directories and
writing new files with exact modes."""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from .backup_format import BackupError


def mode_or_none(path: str, described: str | None = None) -> int | None:
    """The st_mode of ``path`` itself (a symlink is not followed), None when it does not
    exist; other errors raise, naming ``described`` (default: the path)."""
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BackupError(f"cannot inspect {described or path}: {exc.strerror}") from exc


def refuse_symlinks(path: str, what: str) -> None:
    """Raise when ``path`` or one of its existing ancestors is a symlink."""
    current = ""
    for part in path.split("/")[1:]:
        current += "/" + part
        mode = mode_or_none(current)
        if mode is None:
            return
        if stat.S_ISLNK(mode):
            raise BackupError(
                f"{what} {path}: {current} is a symlink; nothing is saved or restored through one"
            )


def read_file(path: str) -> tuple[bytes, os.stat_result] | None:
    """The bytes and stat of the regular file ``path`` (never through a symlink), None if
    it does not exist."""
    try:
        before = os.lstat(path)
        if stat.S_ISLNK(before.st_mode):
            raise BackupError(f"{path} is a symlink; nothing is saved or restored through one")
        if not stat.S_ISREG(before.st_mode):
            raise BackupError(f"{path} is not a regular file")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        with os.fdopen(os.open(path, flags), "rb") as handle:
            opened = os.fstat(handle.fileno())
            if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
                raise BackupError(f"{path} was replaced while being read")
            return handle.read(), opened
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc


def file_state(data: bytes, status: os.stat_result) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "mode": stat.S_IMODE(status.st_mode),
        "uid": status.st_uid,
        "gid": status.st_gid,
    }


def make_dirs(path: str, mode: int) -> None:
    """Create ``path`` and its missing ancestors with exactly ``mode`` (whatever the umask);
    directories that exist are left as they are."""
    missing = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)


def write_new(path: str, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(path, flags, mode), "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
