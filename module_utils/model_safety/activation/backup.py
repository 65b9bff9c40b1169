"""Activation backups: save the engine's env file and systemd drop-ins before a change, verify
them, restore them byte-identical (contents, mode, owner), and prune old ones.

A backup is a directory ``<root>/<UTC stamp>_<model>/`` (mode 0700) holding each saved file
under ``files/`` at its absolute path (mode 0600) and a ``manifest.json`` written last and
atomically: a directory without a manifest is an incomplete backup and never restored.
Names sort by time (``20261123T180102.123456Z_patchtst``). Each restore that changed something
may be recorded in the manifest's optional ``restorations`` list (:func:`mark_restored`).

Nothing is saved or restored through a symlink, and nothing here returns file contents (env
files hold secrets): only paths, sizes, modes, owners and SHA-256 checksums. Standard library
only; every error is a :class:`BackupError` naming the path and the problem.

A restore runs as root and puts whatever a manifest says in place, so a manifest is not
trusted with more than it needs: the backup root must be owned by root and writable by no one
else; a restore writes only the managed paths it is given (the env file, the files directly in
the drop-in directory); it never sets set-id or sticky bits, never makes a file writable by
others (nor by its group unless that is root's group of a root-owned file), and never gives a
file to a new non-root owner; a backup dated in the future is never "the newest" and never
restored.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from ..fileio import fsync_directory
from ..fileio import write_atomic as _write_atomic
from ..names import is_model_name
from ..utctime import iso_us

DEFAULT_ROOT = "/opt/quantum/backups/model_activations"
DEFAULT_FILES = ("/etc/quantum/ai-engine.env",)
DEFAULT_DIRS = ("/etc/systemd/system/quantum-ai-engine.service.d",)
FORMAT = 1
MANIFEST = "manifest.json"
FILES_DIR = "files"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
BACKUP_DIR_MODE = 0o700
SAVED_FILE_MODE = 0o600
RESTORED_DIR_MODE = 0o755
# How far a backup's name may be ahead of the clock (clocks of hosts differ a little); a
# backup dated later would sort as "the newest" until that time, whatever is made after it.
CLOCK_SKEW = dt.timedelta(minutes=5)
_FUTURE = f"dated later than now + {CLOCK_SKEW.seconds // 60} min (or at no real time)"
# Never restored: no managed file needs them, and a set-id file is a way to run code as root.
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX

# Always used with fullmatch (a trailing newline never slips through).
_BACKUP_NAME_RE = re.compile(r"([0-9]{8}T[0-9]{6}\.[0-9]{6}Z)_([a-z][a-z0-9_]{0,31})")
_GIT_SHA_RE = re.compile(r"[0-9a-f]{7,40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MANIFEST_KEYS = frozenset(
    {"format", "created", "model", "weight", "operator", "git_sha", "host", "metadata"}
    | {"dirs", "files"}
)
_SAVED_KEYS = frozenset({"path", "saved_as", "sha256", "size", "mode", "uid", "gid"})
_STATE_KEYS = ("sha256", "size", "mode", "uid", "gid")
RESTORATIONS = "restorations"
# How many backup names a failure message offers to choose from.
NAMES_SHOWN = 5


class BackupError(Exception):
    """A backup that cannot be made, trusted or restored; the message names path and problem,
    ``problems`` lists them one by one when there are several."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class CorruptBackup(BackupError):
    """The selected backup fails verification; ``candidates`` names the newest intact ones,
    for the operator to choose from (never restored in its place)."""

    def __init__(self, message: str, problems: Iterable[str], candidates: Iterable[str]) -> None:
        super().__init__(message, problems)
        self.candidates = list(candidates)


# --------------------------------------------------------------------------- names and paths


def backup_name(model: str, when: dt.datetime) -> str:
    """The directory name of a backup of ``model`` taken at ``when`` (timezone-aware)."""
    return f"{_utc(when).strftime(STAMP_FORMAT)}_{model}"


def saved_as(path: str) -> str:
    """Where the copy of the absolute ``path`` lives, relative to the backup directory."""
    return f"{FILES_DIR}/{path.lstrip('/')}"


def default_operator(environ: Mapping[str, str]) -> str:
    """Who runs the change: the user behind sudo, else the login user, else "unknown"."""
    return environ.get("SUDO_USER") or environ.get("USER") or "unknown"


def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise BackupError(f"backup time must be timezone-aware, not {when!r}")
    return when.astimezone(dt.UTC)


def _checked_path(path: object, what: str) -> str:
    """Return ``path`` if it is a normalised absolute path without '..', else raise."""
    if not isinstance(path, str) or not path:
        raise BackupError(f"{what} must be a non-empty path, not {path!r}")
    if not path.startswith("/"):
        raise BackupError(f"{what} {path!r} is not an absolute path")
    if ".." in path.split("/"):
        raise BackupError(f"{what} {path!r} contains '..'")
    if path == "/" or path.startswith("//") or os.path.normpath(path) != path or "\0" in path:
        raise BackupError(f"{what} {path!r} is not a normalised absolute path")
    return path


def _mode_or_none(path: str, described: str | None = None) -> int | None:
    """The st_mode of ``path`` itself (a symlink is not followed), None when it does not
    exist; other errors raise, naming ``described`` (default: the path)."""
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BackupError(f"cannot inspect {described or path}: {exc.strerror}") from exc


def _refuse_symlinks(path: str, what: str) -> None:
    """Raise when ``path`` or one of its existing ancestors is a symlink."""
    current = ""
    for part in path.split("/")[1:]:
        current += "/" + part
        mode = _mode_or_none(current)
        if mode is None:
            return
        if stat.S_ISLNK(mode):
            raise BackupError(
                f"{what} {path}: {current} is a symlink; nothing is saved or restored through one"
            )


def _check_root(root: str) -> None:
    """Raise unless the backup root (the directory it names) is owned by root and writable by
    no one else: whoever else could write there could plant a backup that a restore, run as
    root, puts in place. A root that does not exist yet holds nothing to trust."""
    try:
        status = os.stat(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise BackupError(f"cannot inspect backup root {root}: {exc.strerror}") from exc
    if not stat.S_ISDIR(status.st_mode):
        raise BackupError(f"backup root {root} is not a directory")
    if status.st_uid != 0 or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BackupError(
            f"backup root {root} is owned by uid {status.st_uid} with mode "
            f"{stat.S_IMODE(status.st_mode):04o}; refused: it must be owned by root and "
            "writable by no one else, or a backup in it could have been planted"
        )


# --------------------------------------------------------------------------- file I/O


def _read_file(path: str) -> tuple[bytes, os.stat_result] | None:
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


def _state(data: bytes, status: os.stat_result) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "mode": stat.S_IMODE(status.st_mode),
        "uid": status.st_uid,
        "gid": status.st_gid,
    }


def _make_dirs(path: str, mode: int) -> None:
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


def _write_new(path: str, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(path, flags, mode), "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- what is saved


def _dir_file_names(directory: str) -> list[str] | None:
    """The regular files directly in ``directory`` (subdirectories are not descended into),
    None when it does not exist; a symlink or special file in it is refused."""
    mode = _mode_or_none(directory, f"directory {directory}")
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
    files = [_checked_path(path, "file") for path in files]
    dirs = [_checked_path(path, "directory") for path in dirs]
    if not files and not dirs:
        raise BackupError("nothing to back up: give at least one file or directory")
    paths = list(dict.fromkeys(files))
    listed: set[str] = set()
    dir_entries = []
    for directory in dict.fromkeys(dirs):
        _refuse_symlinks(directory, "directory")
        names = _dir_file_names(directory)
        dir_entries.append({"path": directory, "present": names is not None, "files": names or []})
        for name in names or []:
            listed.add(os.path.join(directory, name))
            paths.append(os.path.join(directory, name))
    file_entries: list[dict[str, Any]] = []
    contents: dict[str, bytes] = {}
    for path in dict.fromkeys(paths):
        _refuse_symlinks(path, "file")
        read = _read_file(path)
        if read is None:
            if path in listed:
                raise BackupError(f"{path} disappeared while being backed up")
            file_entries.append({"path": path, "absent": True})
            continue
        contents[path] = read[0]
        file_entries.append({"path": path, "saved_as": saved_as(path), **_state(*read)})
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
        not isinstance(git_sha, str) or not _GIT_SHA_RE.fullmatch(git_sha.lower())
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
    root = _checked_path(root, "backup root")
    details = checked_details(model, weight, operator, git_sha, metadata or {})
    when = _utc(now or dt.datetime.now(dt.UTC))
    file_entries, dir_entries, contents = _snapshot(files, dirs)
    try:
        _make_dirs(root, BACKUP_DIR_MODE)
        _check_root(root)
        path, when = _new_backup_dir(root, model, when)
    except OSError as exc:
        raise BackupError(f"cannot create a backup directory under {root}: {exc}") from exc
    try:
        for entry in file_entries:
            if entry.get("absent"):
                continue
            copy = os.path.join(path, entry["saved_as"])
            _make_dirs(os.path.dirname(copy), BACKUP_DIR_MODE)
            _write_new(copy, contents[entry["path"]], SAVED_FILE_MODE)
        problems = _copy_problems(path, file_entries)
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


# --------------------------------------------------------------------------- listing, pruning


def _backup_dirs(root: str) -> list[tuple[str, str, bool]]:
    """(name, model, complete) of every backup directory in ``root``, newest first; entries
    that are not backup directories (other names, symlinks) are never looked at."""
    root = _checked_path(root, "backup root")
    _check_root(root)
    try:
        with os.scandir(root) as entries:
            found = [
                (entry.name, match.group(2), os.path.lexists(os.path.join(entry.path, MANIFEST)))
                for entry in entries
                if (match := _BACKUP_NAME_RE.fullmatch(entry.name))
                and entry.is_dir(follow_symlinks=False)
            ]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackupError(f"cannot list backups under {root}: {exc.strerror}") from exc
    return sorted(found, reverse=True)


def _stamp(name: str) -> str:
    return name.split("_", 1)[0]


def _is_future(name: str) -> bool:
    """Whether the backup ``name`` is dated later than now plus CLOCK_SKEW, or at no real time
    (like month 13): sorted by name it would be "the newest" whatever is made after it."""
    try:
        when = dt.datetime.strptime(_stamp(name), STAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return True
    return when > dt.datetime.now(dt.UTC) + CLOCK_SKEW


def _refuse_future(path: str) -> None:
    """Raise when the backup ``path`` is named with a time in the future."""
    name = os.path.basename(path)
    if _BACKUP_NAME_RE.fullmatch(name) and _is_future(name):
        raise BackupError(
            f"backup {name} is {_FUTURE}; refused: no backup is made in the future, it was "
            "planted or made by a wrong clock"
        )


def future_backups(root: str) -> list[str]:
    """One warning per backup directory under ``root`` dated in the future: never taken as
    the newest, never pruned, refused by name; for an operator to inspect and remove."""
    return [
        f"backup {name} under {root} is {_FUTURE}: never taken as the newest, never pruned, "
        "refused by name; inspect and remove it"
        for name, _, _ in _backup_dirs(root)
        if _is_future(name)
    ]


def list_backups(root: str, model: str | None = None) -> list[str]:
    """Paths of the complete backups under ``root`` (of ``model`` if given), newest first;
    backups dated in the future are left out (see :func:`future_backups`)."""
    if model is not None and not is_model_name(model):
        raise BackupError(f"not a valid model name: {model!r}")
    return [
        os.path.join(root, name)
        for name, owner, complete in _backup_dirs(root)
        if complete and model in (None, owner) and not _is_future(name)
    ]


def latest_backup(root: str, model: str | None = None) -> str | None:
    """The newest complete backup under ``root`` (of ``model`` if given), None if there is none."""
    backups = list_backups(root, model)
    return backups[0] if backups else None


def backup_by_name(root: str, name: str) -> str:
    """The path of the backup directory ``name`` under ``root`` (complete or not); raises,
    listing the newest complete ones, when there is none or it is dated in the future."""
    if not isinstance(name, str) or not _BACKUP_NAME_RE.fullmatch(name):
        raise BackupError(
            f"not a backup name (<UTC stamp>_<model>, like 20261123T180102.123456Z_patchtst): "
            f"{name!r}"
        )
    backups = _backup_dirs(root)
    if any(found == name for found, _, _ in backups):
        _refuse_future(name)
        return os.path.join(root, name)
    newest = [found for found, _, complete in backups if complete and not _is_future(found)]
    shown = ", ".join(newest[:NAMES_SHOWN]) or "none"
    raise BackupError(f"no backup {name} under {root}; the newest: {shown}")


def select_backup(
    root: str, path: str | None = None, model: str | None = None, name: str | None = None
) -> str:
    """``path`` when given, else the backup ``name`` under ``root`` (which must be of ``model``
    when both are given), else the latest backup under ``root`` (of ``model``); raises when
    there is none. A backup dated in the future is never the latest and refused by name."""
    if path is not None:
        if name is not None:
            raise BackupError("give a backup's path or its name, not both")
        return _checked_path(path, "backup path")
    if name is not None:
        selected = backup_by_name(root, name)
        if model is not None and _BACKUP_NAME_RE.fullmatch(name).group(2) != model:
            raise BackupError(f"backup {name} is not a backup of model {model}")
        return selected
    latest = latest_backup(root, model)
    if latest is None:
        raise BackupError(f"no backup under {root}" + (f" for model {model}" if model else ""))
    return latest


def prune(root: str, keep: int, *, check_mode: bool = False, pending: bool = False) -> list[str]:
    """Remove all but the newest ``keep`` complete backups (any model) and the incomplete
    directories older than the newest complete one; return the removed paths, newest first.

    ``pending`` counts a backup about to be created as the newest (what create would prune, in
    check mode). An incomplete directory newer than every complete backup may be a backup being
    written right now and is kept. A backup dated in the future is left alone."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise BackupError(f"keep must be an integer of at least 1, not {keep!r}")
    # Not counted as the newest (nothing would ever be newer) nor removed: future_backups
    # reports it to the operator.
    backups = [backup for backup in _backup_dirs(root) if not _is_future(backup[0])]
    complete = [name for name, _, done in backups if done]
    kept = set(complete[: keep - 1] if pending else complete[:keep])
    # "~" sorts after every stamp: the pending backup is newer than every directory.
    newest_stamp = "~" if pending else (_stamp(complete[0]) if complete else "")
    removed = [
        os.path.join(root, name)
        for name, _, done in backups
        if ((name not in kept) if done else _stamp(name) < newest_stamp)
    ]
    if not check_mode:
        for path in removed:
            try:
                shutil.rmtree(path)
            except OSError as exc:
                raise BackupError(f"cannot remove old backup {path}: {exc}") from exc
    return removed


def intact_backups(
    root: str, model: str | None = None, exclude: Iterable[str] = (), limit: int = NAMES_SHOWN
) -> list[str]:
    """The names of the newest complete backups under ``root`` (of ``model``) that verify,
    newest first, at most ``limit``, leaving out the names in ``exclude``."""
    skipped = set(exclude)
    found: list[str] = []
    for path in list_backups(root, model):
        name = os.path.basename(path)
        if name not in skipped and not verify_backup(path):
            found.append(name)
            if len(found) == limit:
                break
    return found


def require_intact(path: str, model: str | None = None) -> None:
    """Raise :class:`CorruptBackup` when the backup ``path`` fails verification, naming the
    newest intact backups beside it (of ``model``) for the operator to choose from."""
    problems = verify_backup(path)
    if not problems:
        return
    name = os.path.basename(path)
    try:
        candidates = intact_backups(os.path.dirname(path), model, exclude=[name])
    except BackupError:
        candidates = []
    raise CorruptBackup(
        f"backup {name} is corrupt: {'; '.join(problems)}; nothing was changed; choose another "
        f"with -e backup=<name> (newest intact: {candidates[0] if candidates else 'none'})",
        problems,
        candidates,
    )


# --------------------------------------------------------------------------- verification


def read_manifest(path: str) -> dict[str, Any]:
    """The parsed manifest of the backup ``path`` (raises when missing or not a JSON object)."""
    path = _checked_path(path, "backup path")
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise BackupError(f"backup {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISDIR(mode):
        raise BackupError(f"backup {path} is not a directory")
    try:
        read = _read_file(os.path.join(path, MANIFEST))
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
        path = _checked_path(entry.get("path"), "file entry")
    except BackupError as exc:
        return [str(exc)]
    if entry.get("absent") is True:
        return [] if set(entry) == {"path", "absent"} else [f"{path}: absent entry has more keys"]
    if set(entry) != _SAVED_KEYS:
        return [f"{path}: entry keys are {sorted(entry)}, not {sorted(_SAVED_KEYS)}"]
    problems = []
    if entry["saved_as"] != saved_as(path):
        problems.append(f"{path}: saved_as {entry['saved_as']!r} is not {saved_as(path)!r}")
    if not isinstance(entry["sha256"], str) or not _SHA256_RE.fullmatch(entry["sha256"]):
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
        path = _checked_path(entry["path"], "directory entry")
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


def _manifest_problems(manifest: dict[str, Any]) -> list[str]:
    if set(manifest) - {RESTORATIONS} != _MANIFEST_KEYS:
        return [
            f"manifest keys are {sorted(manifest)}, not {sorted(_MANIFEST_KEYS)} "
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


def _copy_problems(path: str, file_entries: list[dict[str, Any]]) -> list[str]:
    """How the saved copies in backup ``path`` differ from the entries (size, sha256)."""
    problems = []
    for entry in file_entries:
        if entry.get("absent"):
            continue
        try:
            read = _read_file(os.path.join(path, entry["saved_as"]))
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
    problems = _manifest_problems(manifest)
    if problems:
        return problems
    expected = {e["saved_as"] for e in manifest["files"] if not e.get("absent")}
    try:
        return _tree_problems(path, expected) + _copy_problems(path, manifest["files"])
    except OSError as exc:
        return [f"backup {path} cannot be read: {exc}"]


# --------------------------------------------------------------------------- restore


def _current_state(path: str) -> dict[str, Any] | None:
    """The state of ``path`` as comparable with a manifest entry; None when absent."""
    mode = _mode_or_none(path)
    if mode is None:
        return None
    if stat.S_ISDIR(mode):
        raise BackupError(f"{path} is a directory where the backup has a file; not touching it")
    if not stat.S_ISREG(mode):
        return {"type": "symlink" if stat.S_ISLNK(mode) else "special file"}
    read = _read_file(path)
    return None if read is None else _state(*read)


def _restored_mode(entry: dict[str, Any]) -> int:
    """The mode a restore gives the file of ``entry``: never a set-id or sticky bit, never
    writable by others, by its group only when root owns it with root's group. Whoever can
    write the env file or a drop-in controls the engine (a drop-in's commands run as root)."""
    mode = entry["mode"] & ~(_SPECIAL_BITS | stat.S_IWOTH)
    if (entry["uid"], entry["gid"]) != (0, 0):
        mode &= ~stat.S_IWGRP
    return mode


def _wanted_state(entry: dict[str, Any]) -> dict[str, Any] | None:
    if entry.get("absent"):
        return None
    return {**{key: entry[key] for key in _STATE_KEYS}, "mode": _restored_mode(entry)}


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
    files = {_checked_path(path, "managed file") for path in files}
    dirs = {_checked_path(path, "managed directory") for path in dirs}
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
    _refuse_symlinks(directory, "directory")
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
        _refuse_symlinks(os.path.dirname(target), "restore target")
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
        read = _read_file(os.path.join(path, entry["saved_as"]))
        if read is None or hashlib.sha256(read[0]).hexdigest() != entry["sha256"]:
            raise BackupError(f"backup {path}: the copy of {target} changed during the restore")
        try:
            _make_dirs(os.path.dirname(target), RESTORED_DIR_MODE)
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
    path = _checked_path(path, "backup path")
    _check_root(os.path.dirname(path))
    _refuse_future(path)
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
        "ts": iso_us(_utc(now or dt.datetime.now(dt.UTC))),
    }
    manifest = read_manifest(path)
    problems = _manifest_problems(manifest)
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
