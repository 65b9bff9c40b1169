"""Restoring a backup byte-identical (contents, mode, owner) to the managed paths only, and
recording each restore that changed something in the manifest.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from ..fileio import fsync_directory
from ..fileio import write_atomic as _write_atomic
from ..utctime import iso_us
from .backup_catalog import refuse_future
from .backup_files import file_state, make_dirs, mode_or_none, read_file, refuse_symlinks
from .backup_format import (
    MANIFEST,
    RESTORATIONS,
    RESTORED_DIR_MODE,
    SAVED_FILE_MODE,
    SPECIAL_BITS,
    STATE_KEYS,
    BackupError,
    as_utc,
    check_root,
    checked_path,
)
from .backup_verify import manifest_problems, read_manifest, verify_backup


def _current_state(path: str) -> dict[str, Any] | None:
    """The state of ``path`` as comparable with a manifest entry; None when absent."""
    mode = mode_or_none(path)
    if mode is None:
        return None
    if stat.S_ISDIR(mode):
        raise BackupError(f"{path} is a directory where the backup has a file; not touching it")
    if not stat.S_ISREG(mode):
        return {"type": "symlink" if stat.S_ISLNK(mode) else "special file"}
    read = read_file(path)
    return None if read is None else file_state(*read)


def _restored_mode(entry: dict[str, Any]) -> int:
    """The mode a restore gives the file of ``entry``: never a set-id or sticky bit, never
    writable by others, by its group only when root owns it with root's group. Whoever can
    write the env file or a drop-in controls the engine (a drop-in's commands run as root)."""
    mode = entry["mode"] & ~(SPECIAL_BITS | stat.S_IWOTH)
    if (entry["uid"], entry["gid"]) != (0, 0):
        mode &= ~stat.S_IWGRP
    return mode


def _wanted_state(entry: dict[str, Any]) -> dict[str, Any] | None:
    if entry.get("absent"):
        return None
    return {**{key: entry[key] for key in STATE_KEYS}, "mode": _restored_mode(entry)}


def _mode_warnings(manifest: dict[str, Any]) -> list[str]:
    """What a restore of ``manifest`` leaves out of the recorded modes, one line per file."""
    return [
        f"{entry['path']}: the backup's mode {entry['mode']:04o} is restored as "
        f"{_restored_mode(entry):04o} (never set-id or sticky bits, never writable by others, "
        "by the group only for root:root)"
        for entry in manifest["files"]
        if not entry.get("absent") and _restored_mode(entry) != entry["mode"]
    ]


def _unmanaged_problems(
    manifest: dict[str, Any], files: Iterable[str], dirs: Iterable[str]
) -> list[str]:
    """The manifest's paths outside the managed ``files`` and the files directly in the
    managed ``dirs``: a restore runs as root and must not write or remove anything else."""
    files = {checked_path(path, "managed file") for path in files}
    dirs = {checked_path(path, "managed directory") for path in dirs}
    problems = [
        f"{entry['path']} is not a managed file"
        for entry in manifest["files"]
        if entry["path"] not in files and os.path.dirname(entry["path"]) not in dirs
    ]
    return problems + [
        f"directory {entry['path']} is not a managed directory"
        for entry in manifest["dirs"]
        if entry["path"] not in dirs
    ]


def _owner_problems(manifest: dict[str, Any]) -> list[str]:
    """The files the manifest would give to a new non-root owner. A file is restored owned by
    root or by the uid that owns it now, never handed to another user: the owner of a drop-in
    can run commands as root, the owner of the env file reads its secrets."""
    problems = []
    for entry in manifest["files"]:
        if entry.get("absent") or entry["uid"] == 0:
            continue
        current = _current_state(entry["path"])
        if current is not None and current.get("uid") == entry["uid"]:
            continue
        if current is not None and "uid" in current:
            now = f"owned by uid {current['uid']}"
        else:
            now = describe_state(current)
        problems.append(
            f"{entry['path']}: the backup gives it to uid {entry['uid']}, but it is {now} now "
            "(a restore gives a file to root or leaves it with its owner)"
        )
    return problems


def _dir_extras(entry: dict[str, Any]) -> tuple[list[str], bool]:
    """Non-directory entries now in a saved directory that were not there at backup time,
    and whether the directory holds subdirectories."""
    directory = entry["path"]
    refuse_symlinks(directory, "directory")
    try:
        mode = os.lstat(directory).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return [], False
    if not stat.S_ISDIR(mode):
        raise BackupError(f"directory {directory} is not a directory")
    recorded = set(entry["files"])
    extras, has_subdirs = [], False
    try:
        with os.scandir(directory) as entries:
            for item in entries:
                if item.is_dir(follow_symlinks=False):
                    has_subdirs = True
                elif item.name not in recorded:
                    extras.append(item.path)
    except OSError as exc:
        raise BackupError(f"cannot list directory {directory}: {exc.strerror}") from exc
    return sorted(extras), has_subdirs


def _restore_plan(manifest: dict[str, Any]) -> dict[str, Any]:
    writes, removals, unchanged, changes = [], {}, [], []
    for entry in manifest["files"]:
        target = entry["path"]
        refuse_symlinks(os.path.dirname(target), "restore target")
        current, wanted = _current_state(target), _wanted_state(entry)
        if current == wanted:
            unchanged.append(target)
            continue
        changes.append({"path": target, "before": current, "after": wanted})
        if wanted is None:
            removals[target] = None
        else:
            writes.append(entry)
    dir_removals = []
    for entry in manifest["dirs"]:
        extras, has_subdirs = _dir_extras(entry)
        for extra in extras:
            if extra not in removals:
                removals[extra] = None
                changes.append({"path": extra, "before": _current_state(extra), "after": None})
        if not entry["present"] and os.path.lexists(entry["path"]) and not has_subdirs:
            dir_removals.append(entry["path"])
            changes.append({"path": entry["path"], "before": {"type": "directory"}, "after": None})
    return {
        "writes": writes,
        "removals": list(removals),
        "dir_removals": dir_removals,
        "unchanged": unchanged,
        "changes": changes,
    }


def _apply_restore(path: str, plan: dict[str, Any]) -> None:
    for entry in plan["writes"]:
        target = entry["path"]
        read = read_file(os.path.join(path, entry["saved_as"]))
        if read is None or hashlib.sha256(read[0]).hexdigest() != entry["sha256"]:
            raise BackupError(f"backup {path}: the copy of {target} changed during the restore")
        try:
            make_dirs(os.path.dirname(target), RESTORED_DIR_MODE)
            owner = (entry["uid"], entry["gid"])
            _write_atomic(target, read[0], _restored_mode(entry), owner)
        except OSError as exc:
            raise BackupError(f"cannot restore {target} from {path}: {exc}") from exc
    for target in plan["removals"]:
        try:
            os.unlink(target)
            fsync_directory(os.path.dirname(target))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise BackupError(f"cannot remove {target} (restoring {path}): {exc}") from exc
    for directory in plan["dir_removals"]:
        try:
            os.rmdir(directory)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise BackupError(f"cannot remove {directory} (restoring {path}): {exc}") from exc


def _restored_problems(manifest: dict[str, Any]) -> list[str]:
    """How the live files still differ from the manifest after a restore."""
    problems = []
    for entry in manifest["files"]:
        current, wanted = _current_state(entry["path"]), _wanted_state(entry)
        if current != wanted:
            problems.append(
                f"{entry['path']} is {describe_state(current)}, backup {describe_state(wanted)}"
            )
    for entry in manifest["dirs"]:
        extras, _ = _dir_extras(entry)
        problems.extend(f"{extra} is still present" for extra in extras)
    return problems


def restore_backup(
    path: str, files: Iterable[str], dirs: Iterable[str], check_mode: bool = False
) -> dict[str, Any]:
    """Put every file of the backup ``path`` back byte-identical (contents, mode, owner),
    remove what did not exist at backup time, and check the result. ``files`` and ``dirs``
    are the managed paths: the backup may hold those files and the files directly in those
    directories, nothing else.

    Refuses, before writing anything: a backup with any problem, under a backup root that is
    not root's alone, dated in the future, with a path outside the managed ones or giving a
    file to a new non-root owner, and a target that cannot be restored (a directory in the
    way, a symlinked parent). Modes are restored without set-id, sticky and unsafe write
    bits (:func:`_restored_mode`), each such file named in "warnings". Returns {"model",
    "restored", "removed", "unchanged", "changed", "changes", "warnings"}: "model" is the
    model whose activation the backup preceded, "changes" lists per path its state "before"
    and "after" (checksum, size, mode, owner; None when absent). check_mode
    computes the same and writes nothing; a second restore changes nothing."""
    path = checked_path(path, "backup path")
    check_root(os.path.dirname(path))
    refuse_future(path)
    problems = verify_backup(path)
    if problems:
        raise BackupError(f"backup {path} cannot be restored: {'; '.join(problems)}", problems)
    manifest = read_manifest(path)
    problems = _unmanaged_problems(manifest, files, dirs) + _owner_problems(manifest)
    if problems:
        raise BackupError(
            f"backup {path} cannot be restored, nothing was changed: {'; '.join(problems)}",
            problems,
        )
    plan = _restore_plan(manifest)
    if not check_mode:
        _apply_restore(path, plan)
        problems = _restored_problems(manifest)
        if problems:
            raise BackupError(f"restore of {path} did not verify: {'; '.join(problems)}", problems)
    removed = plan["removals"] + plan["dir_removals"]
    restored = [entry["path"] for entry in plan["writes"]]
    return {
        "model": manifest.get("model"),
        "restored": restored,
        "removed": removed,
        "unchanged": plan["unchanged"],
        "changed": bool(restored or removed),
        "changes": plan["changes"],
        "warnings": _mode_warnings(manifest),
    }


def checked_restoration_record(record: object) -> dict[str, Any]:
    """``record`` as :func:`mark_restored` takes it: a JSON-serialisable mapping without "ts"
    (raises otherwise)."""
    if not isinstance(record, Mapping) or "ts" in record:
        raise BackupError(f"a restoration record must be a mapping without ts, not {record!r}")
    try:
        json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackupError(f"the restoration record is not JSON-serialisable: {exc}") from exc
    return dict(record)


def mark_restored(
    path: str, record: Mapping[str, Any], now: dt.datetime | None = None
) -> dict[str, Any]:
    """Append ``record`` with its time ``ts`` (UTC, set here) to the ``restorations`` list of
    the backup's manifest, rewritten atomically (mode 0600); return the entry appended.

    The saved copies are not touched, so the backup still restores byte-identical. Refuses a
    backup whose manifest has a problem and a record that is not a JSON-serialisable mapping
    without "ts"."""
    entry = {
        **checked_restoration_record(record),
        "ts": iso_us(as_utc(now or dt.datetime.now(dt.UTC))),
    }
    manifest = read_manifest(path)
    problems = manifest_problems(manifest)
    if problems:
        raise BackupError(
            f"backup {path} cannot be marked restored: {'; '.join(problems)}", problems
        )
    manifest[RESTORATIONS] = [*manifest.get(RESTORATIONS, []), entry]
    encoded = json.dumps(manifest, indent=2, sort_keys=False).encode() + b"\n"
    try:
        _write_atomic(os.path.join(path, MANIFEST), encoded, SAVED_FILE_MODE)
    except OSError as exc:
        raise BackupError(f"cannot mark backup {path} restored: {exc}") from exc
    return entry


def describe_state(state: dict[str, Any] | None) -> str:
    """One line about a file's state (checksum, mode, owner), never its contents."""
    if state is None:
        return "absent"
    if "type" in state:
        return f"a {state['type']}"
    return (
        f"sha256 {state['sha256']}, mode {state['mode']:04o}, owner {state['uid']}:{state['gid']}"
    )


def restore_diff(changes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Ansible diffs of a restore's changes: per file, its state before and after as headers
    and one line, never its contents."""
    return [
        {
            "before_header": f"{change['path']} ({describe_state(change['before'])})",
            "after_header": f"{change['path']} ({describe_state(change['after'])})",
            "before": describe_state(change["before"]) + "\n",
            "after": describe_state(change["after"]) + "\n",
        }
        for change in changes
    ]
