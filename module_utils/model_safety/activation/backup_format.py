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
import os
import re
import stat
from collections.abc import Iterable, Mapping

from ..fileio import absolute_path_problem

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
DATED_IN_FUTURE = f"dated later than now + {CLOCK_SKEW.seconds // 60} min (or at no real time)"
# Never restored: no managed file needs them, and a set-id file is a way to run code as root.
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX

# Always used with fullmatch (a trailing newline never slips through).
BACKUP_NAME_RE = re.compile(r"([0-9]{8}T[0-9]{6}\.[0-9]{6}Z)_([a-z][a-z0-9_]{0,31})")
GIT_SHA_RE = re.compile(r"[0-9a-f]{7,40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MANIFEST_KEYS = frozenset(
    {"format", "created", "model", "weight", "operator", "git_sha", "host", "metadata"}
    | {"dirs", "files"}
)
SAVED_KEYS = frozenset({"path", "saved_as", "sha256", "size", "mode", "uid", "gid"})
STATE_KEYS = ("sha256", "size", "mode", "uid", "gid")
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
    return f"{as_utc(when).strftime(STAMP_FORMAT)}_{model}"


def saved_as(path: str) -> str:
    """Where the copy of the absolute ``path`` lives, relative to the backup directory."""
    return f"{FILES_DIR}/{path.lstrip('/')}"


def default_operator(environ: Mapping[str, str]) -> str:
    """Who runs the change: the user behind sudo, else the login user, else "unknown"."""
    return environ.get("SUDO_USER") or environ.get("USER") or "unknown"


def as_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise BackupError(f"backup time must be timezone-aware, not {when!r}")
    return when.astimezone(dt.UTC)


def checked_path(path: object, what: str) -> str:
    """Return ``path`` if it is a normalised absolute path without '..', else raise."""
    problem = absolute_path_problem(path)
    if problem is not None:
        raise BackupError(f"{what} {path!r} {problem}")
    return path


def check_root(root: str) -> None:
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
