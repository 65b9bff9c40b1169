"""Verifying a backup: its manifest's shape, each copy against the manifest, and nothing in the
backup directory that the manifest does not list.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

from ..names import is_model_name
from .backup_files import read_file
from .backup_format import (
    FILES_DIR,
    FORMAT,
    MANIFEST,
    MANIFEST_KEYS,
    RESTORATIONS,
    SAVED_KEYS,
    SHA256_RE,
    BackupError,
    checked_path,
    saved_as,
)


def read_manifest(path: str) -> dict[str, Any]:
    """The parsed manifest of the backup ``path`` (raises when missing or not a JSON object)."""
    path = checked_path(path, "backup path")
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise BackupError(f"backup {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISDIR(mode):
        raise BackupError(f"backup {path} is not a directory")
    try:
        read = read_file(os.path.join(path, MANIFEST))
    except BackupError as exc:
        raise BackupError(f"backup {path}: manifest unreadable: {exc}") from exc
    if read is None:
        raise BackupError(f"backup {path} has no {MANIFEST} (an incomplete backup)")
    try:
        manifest = json.loads(read[0])
    except ValueError as exc:
        raise BackupError(f"backup {path}: {MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BackupError(f"backup {path}: {MANIFEST} is not a JSON object")
    return manifest


def _is_int(value: object, low: int = 0, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def _file_entry_problems(entry: object) -> list[str]:
    if not isinstance(entry, dict):
        return [f"file entry {entry!r} is not an object"]
    try:
        path = checked_path(entry.get("path"), "file entry")
    except BackupError as exc:
        return [str(exc)]
    if entry.get("absent") is True:
        return [] if set(entry) == {"path", "absent"} else [f"{path}: absent entry has more keys"]
    if set(entry) != SAVED_KEYS:
        return [f"{path}: entry keys are {sorted(entry)}, not {sorted(SAVED_KEYS)}"]
    problems = []
    if entry["saved_as"] != saved_as(path):
        problems.append(f"{path}: saved_as {entry['saved_as']!r} is not {saved_as(path)!r}")
    if not isinstance(entry["sha256"], str) or not SHA256_RE.fullmatch(entry["sha256"]):
        problems.append(f"{path}: sha256 is not 64 lowercase hex digits")
    if not _is_int(entry["size"]):
        problems.append(f"{path}: size is not a non-negative integer")
    if not _is_int(entry["mode"], 0, 0o7777):
        problems.append(f"{path}: mode is not a permission integer")
    if not (_is_int(entry["uid"]) and _is_int(entry["gid"])):
        problems.append(f"{path}: uid/gid are not non-negative integers")
    return problems


def _dir_entry_problems(entry: object, saved: set[str]) -> list[str]:
    if not isinstance(entry, dict) or set(entry) != {"path", "present", "files"}:
        return [f"directory entry {entry!r} is not {{path, present, files}}"]
    try:
        path = checked_path(entry["path"], "directory entry")
    except BackupError as exc:
        return [str(exc)]
    names = entry["files"]
    if not isinstance(entry["present"], bool) or not isinstance(names, list):
        return [f"directory {path}: present must be a bool and files a list"]
    if not entry["present"] and names:
        return [f"directory {path}: recorded missing but lists files"]
    problems = []
    for name in names:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
            problems.append(f"directory {path}: bad file name {name!r}")
        elif os.path.join(path, name) not in saved:
            problems.append(f"directory {path}: {name} is listed but not saved")
    return problems


def _restorations_problems(restorations: object) -> list[str]:
    if not isinstance(restorations, list):
        return [f"manifest {RESTORATIONS} must be a list"]
    return [
        f"manifest {RESTORATIONS} entry {entry!r} is not an object with a ts"
        for entry in restorations
        if not isinstance(entry, dict) or not isinstance(entry.get("ts"), str)
    ]


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    if set(manifest) - {RESTORATIONS} != MANIFEST_KEYS:
        return [
            f"manifest keys are {sorted(manifest)}, not {sorted(MANIFEST_KEYS)} "
            f"(and optionally {RESTORATIONS})"
        ]
    if manifest["format"] != FORMAT:
        return [f"manifest format {manifest['format']!r} is not {FORMAT}"]
    problems = []
    if not is_model_name(manifest["model"]):
        problems.append(f"manifest model {manifest['model']!r} is not a model name")
    if not isinstance(manifest["files"], list) or not isinstance(manifest["dirs"], list):
        return [*problems, "manifest files and dirs must be lists"]
    paths = []
    for entry in manifest["files"]:
        entry_problems = _file_entry_problems(entry)
        problems.extend(entry_problems)
        if not entry_problems:
            paths.append(entry["path"])
    if len(set(paths)) != len(paths):
        problems.append("manifest lists a file more than once")
    saved = {e["path"] for e in manifest["files"] if isinstance(e, dict) and "saved_as" in e}
    for entry in manifest["dirs"]:
        problems.extend(_dir_entry_problems(entry, saved))
    return problems + _restorations_problems(manifest.get(RESTORATIONS, []))


def copy_problems(path: str, file_entries: list[dict[str, Any]]) -> list[str]:
    """How the saved copies in backup ``path`` differ from the entries (size, sha256)."""
    problems = []
    for entry in file_entries:
        if entry.get("absent"):
            continue
        try:
            read = read_file(os.path.join(path, entry["saved_as"]))
        except BackupError as exc:
            problems.append(f"{entry['path']}: {exc}")
            continue
        if read is None:
            problems.append(f"{entry['path']}: saved copy {entry['saved_as']} is missing")
        elif len(read[0]) != entry["size"]:
            problems.append(
                f"{entry['path']}: saved copy has {len(read[0])} bytes, manifest {entry['size']}"
            )
        elif hashlib.sha256(read[0]).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: saved copy's sha256 differs from the manifest")
    return problems


def _tree_problems(path: str, expected: set[str]) -> list[str]:
    """Anything in the backup directory that the manifest does not account for."""
    problems = [
        f"unexpected entry {name} in the backup"
        for name in sorted(os.listdir(path))
        if name not in (MANIFEST, FILES_DIR)
    ]
    base = os.path.join(path, FILES_DIR)
    if os.path.islink(base):
        return [*problems, f"{FILES_DIR} is a symlink in the backup"]
    for directory, subdirs, names in os.walk(base):
        for name in subdirs + names:
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, path)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{relative} is a symlink in the backup")
            elif not stat.S_ISDIR(mode) and relative not in expected:
                problems.append(f"extra file {relative} is not in the manifest")
    return problems


def verify_backup(path: str) -> list[str]:
    """Every problem of the backup ``path``: bad or missing manifest, saved copies missing,
    extra or differing from the manifest. Empty when the backup can be trusted."""
    try:
        manifest = read_manifest(path)
    except BackupError as exc:
        return [str(exc)]
    problems = manifest_problems(manifest)
    if problems:
        return problems
    expected = {e["saved_as"] for e in manifest["files"] if not e.get("absent")}
    try:
        return _tree_problems(path, expected) + copy_problems(path, manifest["files"])
    except OSError as exc:
        return [f"backup {path} cannot be read: {exc}"]
