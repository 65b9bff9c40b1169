"""Creating a backup: what is saved (the managed files and the files directly in the managed
directories), each copy read back, the manifest written last and atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import stat
from collections.abc import Iterable
from typing import Any

from ..fileio import fsync_directory
from ..fileio import write_atomic as _write_atomic
from ..names import is_model_name
from ..utctime import iso_us
from .backup_files import file_state, make_dirs, mode_or_none, read_file, refuse_symlinks, write_new
from .backup_format import (
    BACKUP_DIR_MODE,
    FORMAT,
    GIT_SHA_RE,
    MANIFEST,
    SAVED_FILE_MODE,
    BackupError,
    as_utc,
    backup_name,
    check_root,
    checked_path,
    saved_as,
)
from .backup_verify import copy_problems, verify_backup


def _dir_file_names(directory: str) -> list[str] | None:
    """The regular files directly in ``directory`` (subdirectories are not descended into),
    None when it does not exist; a symlink or special file in it is refused."""
    mode = mode_or_none(directory, f"directory {directory}")
    if mode is None:
        return None
    if not stat.S_ISDIR(mode):
        raise BackupError(f"directory {directory} is not a directory")
    names = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise BackupError(
                        f"{entry.path} is a symlink; nothing is saved or restored through one"
                    )
                if entry.is_dir(follow_symlinks=False):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise BackupError(f"{entry.path} is not a regular file")
                names.append(entry.name)
    except OSError as exc:
        raise BackupError(f"cannot list directory {directory}: {exc.strerror}") from exc
    return sorted(names)


def _snapshot(
    files: Iterable[str], dirs: Iterable[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, bytes]]:
    """Manifest entries for ``files`` and the files of ``dirs``, and the bytes to save."""
    files = [checked_path(path, "file") for path in files]
    dirs = [checked_path(path, "directory") for path in dirs]
    if not files and not dirs:
        raise BackupError("nothing to back up: give at least one file or directory")
    paths = list(dict.fromkeys(files))
    listed: set[str] = set()
    dir_entries = []
    for directory in dict.fromkeys(dirs):
        refuse_symlinks(directory, "directory")
        names = _dir_file_names(directory)
        dir_entries.append({"path": directory, "present": names is not None, "files": names or []})
        for name in names or []:
            listed.add(os.path.join(directory, name))
            paths.append(os.path.join(directory, name))
    file_entries: list[dict[str, Any]] = []
    contents: dict[str, bytes] = {}
    for path in dict.fromkeys(paths):
        refuse_symlinks(path, "file")
        read = read_file(path)
        if read is None:
            if path in listed:
                raise BackupError(f"{path} disappeared while being backed up")
            file_entries.append({"path": path, "absent": True})
            continue
        contents[path] = read[0]
        file_entries.append({"path": path, "saved_as": saved_as(path), **file_state(*read)})
    return file_entries, dir_entries, contents


def plan_backup(files: Iterable[str], dirs: Iterable[str]) -> dict[str, Any]:
    """What :func:`create_backup` would save (the manifest's "files" and "dirs"), read-only."""
    file_entries, dir_entries, _ = _snapshot(files, dirs)
    return {"files": file_entries, "dirs": dir_entries}


def checked_details(
    model: object, weight: object, operator: object, git_sha: object, metadata: object
) -> dict[str, Any]:
    """The manifest's model, weight, operator and git_sha, validated (raises otherwise)."""
    if not is_model_name(model):
        raise BackupError(f"not a valid model name: {model!r}")
    if weight is not None and (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0 <= weight <= 1
    ):
        raise BackupError(f"weight must be a number in [0, 1], not {weight!r}")
    if not isinstance(operator, str) or not operator.strip():
        raise BackupError(f"operator must be a non-empty string, not {operator!r}")
    if git_sha is not None and (
        not isinstance(git_sha, str) or not GIT_SHA_RE.fullmatch(git_sha.lower())
    ):
        raise BackupError(f"git_sha must be 7 to 40 hex digits, not {git_sha!r}")
    if not isinstance(metadata, dict):
        raise BackupError(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackupError(f"metadata is not JSON-serialisable: {exc}") from exc
    return {
        "model": model,
        "weight": None if weight is None else float(weight),
        "operator": operator,
        "git_sha": None if git_sha is None else git_sha.lower(),
    }


def _new_backup_dir(root: str, model: str, when: dt.datetime) -> tuple[str, dt.datetime]:
    """Create the backup directory; a name already taken moves the stamp on by 1 µs, so two
    backups never share a directory."""
    while True:
        path = os.path.join(root, backup_name(model, when))
        try:
            os.mkdir(path, BACKUP_DIR_MODE)
        except FileExistsError:
            when += dt.timedelta(microseconds=1)
            continue
        os.chmod(path, BACKUP_DIR_MODE)
        return path, when


def create_backup(
    root: str,
    model: str,
    files: Iterable[str],
    dirs: Iterable[str] = (),
    *,
    weight: float | None = None,
    operator: str = "unknown",
    git_sha: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Save ``files`` and the regular files of ``dirs`` into a new backup under ``root``,
    read everything back, then write the manifest. Returns {"path", "manifest"}.

    A backup whose copies do not read back as saved is left, without a manifest, for
    inspection and the error names its directory."""
    root = checked_path(root, "backup root")
    details = checked_details(model, weight, operator, git_sha, metadata or {})
    when = as_utc(now or dt.datetime.now(dt.UTC))
    file_entries, dir_entries, contents = _snapshot(files, dirs)
    try:
        make_dirs(root, BACKUP_DIR_MODE)
        check_root(root)
        path, when = _new_backup_dir(root, model, when)
    except OSError as exc:
        raise BackupError(f"cannot create a backup directory under {root}: {exc}") from exc
    try:
        for entry in file_entries:
            if entry.get("absent"):
                continue
            copy = os.path.join(path, entry["saved_as"])
            make_dirs(os.path.dirname(copy), BACKUP_DIR_MODE)
            write_new(copy, contents[entry["path"]], SAVED_FILE_MODE)
        problems = copy_problems(path, file_entries)
        if problems:
            raise BackupError(
                f"backup {path} does not read back as saved (left for inspection, without "
                f"manifest): {'; '.join(problems)}",
                problems,
            )
        manifest = {
            "format": FORMAT,
            "created": iso_us(when),
            **details,
            "host": socket.gethostname(),
            "metadata": metadata or {},
            "dirs": dir_entries,
            "files": file_entries,
        }
        encoded = json.dumps(manifest, indent=2, sort_keys=False).encode() + b"\n"
        _write_atomic(os.path.join(path, MANIFEST), encoded, SAVED_FILE_MODE)
        fsync_directory(root)
    except OSError as exc:
        raise BackupError(
            f"cannot write backup {path} (left incomplete, without manifest): {exc}"
        ) from exc
    problems = verify_backup(path)
    if problems:
        raise BackupError(
            f"backup {path} failed verification (left for inspection): {'; '.join(problems)}",
            problems,
        )
    return {"path": path, "manifest": manifest}
