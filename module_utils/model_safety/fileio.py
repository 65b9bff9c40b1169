"""Durable file writes shared by the lease, the activation log and the backups, and the one
check of the paths they are given.

A write counts only once it is on disk: file contents are fsynced before they are made visible
and the directory is fsynced after a name in it was created, replaced or removed, so a crash
never leaves a half-written file under its final name nor loses a name that was reported
written. Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def absolute_path_problem(path: object) -> str | None:
    """Why ``path`` is refused (a relative path, a '..' in it, one not normalised), or None
    for a normalised absolute path: what a root-run task writes must not depend on the working
    directory nor climb out of the directory it names."""
    if not isinstance(path, str) or not path:
        return "is not a non-empty path"
    if not path.startswith("/"):
        return "is not an absolute path"
    if ".." in path.split("/"):
        return "contains '..'"
    if path == "/" or path.startswith("//") or os.path.normpath(path) != path or "\0" in path:
        return "is not a normalised absolute path"
    return None


def fsync_directory(directory: str) -> None:
    """Flush ``directory`` itself, making the names created or removed in it durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``, looping over short writes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def ensure_directory(directory: str, mode: int) -> None:
    """Create ``directory`` (and missing parents) when it does not exist; a new one gets
    exactly ``mode`` whatever the umask. An existing directory is left as it is."""
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=mode, exist_ok=True)
        os.chmod(directory, mode)


def write_atomic(
    path: str,
    data: bytes,
    mode: int,
    owner: tuple[int, int] | None = None,
    *,
    replace: bool = True,
) -> None:
    """Put ``data`` at ``path`` whole or not at all, with ``mode`` and ``owner`` (uid, gid).

    A temporary file in the same directory gets the bytes, the owner and the mode (chown
    first, it may clear set-id bits) and is fsynced, then becomes ``path``: renamed over it
    (``replace``), or hard-linked to it, which raises FileExistsError when ``path`` exists
    (``replace=False``: of two creators only one succeeds). The temporary file never
    outlives the call; the directory is fsynced last.
    """
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        try:
            write_all(fd, data)
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
            os.unlink(temporary)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)
