"""The backups under a root: listing them newest first, selecting one (by name or the newest
intact one, never one dated in the future) and pruning old ones.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable

from ..names import is_model_name
from .backup_format import (
    BACKUP_NAME_RE,
    CLOCK_SKEW,
    DATED_IN_FUTURE,
    MANIFEST,
    NAMES_SHOWN,
    STAMP_FORMAT,
    BackupError,
    CorruptBackup,
    check_root,
    checked_path,
)
from .backup_verify import verify_backup


def _backup_dirs(root: str) -> list[tuple[str, str, bool]]:
    """(name, model, complete) of every backup directory in ``root``, newest first; entries
    that are not backup directories (other names, symlinks) are never looked at."""
    root = checked_path(root, "backup root")
    check_root(root)
    try:
        with os.scandir(root) as entries:
            found = [
                (entry.name, match.group(2), os.path.lexists(os.path.join(entry.path, MANIFEST)))
                for entry in entries
                if (match := BACKUP_NAME_RE.fullmatch(entry.name))
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


def refuse_future(path: str) -> None:
    """Raise when the backup ``path`` is named with a time in the future."""
    name = os.path.basename(path)
    if BACKUP_NAME_RE.fullmatch(name) and _is_future(name):
        raise BackupError(
            f"backup {name} is {DATED_IN_FUTURE}; refused: no backup is made in the future, it was "
            "planted or made by a wrong clock"
        )


def future_backups(root: str) -> list[str]:
    """One warning per backup directory under ``root`` dated in the future: never taken as
    the newest, never pruned, refused by name; for an operator to inspect and remove."""
    return [
        f"backup {name} under {root} is {DATED_IN_FUTURE}: never taken as the newest, "
        "never pruned, refused by name; inspect and remove it"
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
    if not isinstance(name, str) or not BACKUP_NAME_RE.fullmatch(name):
        raise BackupError(
            f"not a backup name (<UTC stamp>_<model>, like 20261123T180102.123456Z_patchtst): "
            f"{name!r}"
        )
    backups = _backup_dirs(root)
    if any(found == name for found, _, _ in backups):
        refuse_future(name)
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
        return checked_path(path, "backup path")
    if name is not None:
        selected = backup_by_name(root, name)
        if model is not None and BACKUP_NAME_RE.fullmatch(name).group(2) != model:
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
