"""A systemd drop-in of the engine's unit (the canary's ``qsc_canary.conf``): its rules, its
text, and writing or removing it.

The drop-in is one ``[Service]`` section of ``Environment="KEY=VALUE"`` lines under a header
comment. Its names and values are validated so that systemd can neither expand (``$``, ``%``),
unquote nor split (whitespace, quotes) them: what the engine reads is what was written. The file
is root:root 0644, written atomically (:mod:`..fileio`); a file whose text is right but whose
mode or owner is not is rewritten. The ``engine_dropin`` module and ``engine_change`` use this;
neither the validation nor the text lives anywhere else. Pure standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import fileio

__all__ = [
    "DropinChange",
    "DropinError",
    "apply_dropin",
    "plan_dropin",
    "render_dropin",
    "validate_dropin_environment",
    "validate_dropin_name",
    "validate_purpose",
]

# Always used with fullmatch: a "$" would let a trailing newline through.
NAME_PATTERN = r"[A-Za-z0-9_.-]+\.conf"
KEY_PATTERN = r"[A-Z_][A-Z0-9_]*"
VALUE_PATTERN = r"[A-Za-z0-9_.,:/+-]*"
_NAME_RE = re.compile(NAME_PATTERN)
_KEY_RE = re.compile(KEY_PATTERN)
_VALUE_RE = re.compile(VALUE_PATTERN)

MANAGED = "Managed by Model Safety Ops (Ansible)"
PURPOSE_MAX_LENGTH = 200
DIRECTORY_MODE = 0o755
FILE_MODE = 0o644
ROOT = (0, 0)
STATES = ("present", "absent")


class DropinError(ValueError):
    """A drop-in name, environment, purpose or path that cannot be right."""


@dataclass(frozen=True)
class DropinChange:
    """What :func:`apply_dropin` does to ``path``: ``before`` and ``after`` are the file's text
    (None: no file); ``changed`` also when only its mode or owner is wrong; ``diff`` as Ansible
    shows it (before_header, after_header, before, after)."""

    directory: str
    path: str
    state: str
    before: str | None
    after: str | None
    changed: bool
    diff: dict[str, str]


def validate_dropin_name(name: Any) -> str:
    """``name`` if it is a plain ``*.conf`` file name, else raise :class:`DropinError`."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DropinError(f"invalid drop-in name: names must match {NAME_PATTERN}, got {name!r}")
    return name


def _rendered_value(key: str, value: Any) -> str:
    # bool is an int: refused first, "True" is not what anyone meant.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DropinError(
            f"invalid drop-in environment: the value of {key} must be a string or a number, "
            f"not {type(value).__name__}, got {value!r}"
        )
    text = str(value)
    if not _VALUE_RE.fullmatch(text):
        raise DropinError(
            f"invalid drop-in environment: values must match {VALUE_PATTERN} (nothing systemd "
            f"could expand, unquote or split), got {key}={text!r}"
        )
    return text


def validate_dropin_environment(environment: Any) -> dict[str, str]:
    """``{KEY: value as written}`` in the order given, if every key and value may go into an
    ``Environment=`` line (values: strings or numbers), else raise :class:`DropinError`."""
    if not isinstance(environment, Mapping):
        raise DropinError(
            "invalid drop-in environment: must be a mapping of NAME to value, "
            f"not {type(environment).__name__}"
        )
    validated: dict[str, str] = {}
    for key, value in environment.items():
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise DropinError(
                f"invalid drop-in environment: names must match {KEY_PATTERN}, got {key!r}"
            )
        validated[key] = _rendered_value(key, value)
    return validated


def validate_purpose(purpose: Any) -> str:
    """``purpose`` if it is one printable line of at most 200 characters (it goes into the
    header comment), else raise :class:`DropinError`."""
    if not isinstance(purpose, str):
        raise DropinError(
            f"invalid drop-in purpose: must be a string, not {type(purpose).__name__}"
        )
    if not purpose.isprintable() or len(purpose) > PURPOSE_MAX_LENGTH:
        raise DropinError(
            f"invalid drop-in purpose: must be one printable line of at most "
            f"{PURPOSE_MAX_LENGTH} characters, got {purpose!r}"
        )
    return purpose


def render_dropin(environment: Mapping[str, Any], purpose: str) -> str:
    """The drop-in's text: the header comment (managed, ``purpose``, how to undo it), then
    ``[Service]`` and one ``Environment="KEY=VALUE"`` line per entry, in order."""
    lines = validate_dropin_environment(environment)
    purpose = validate_purpose(purpose)
    header = f"# {MANAGED}: {purpose}." if purpose else f"# {MANAGED}."
    return "".join(
        [
            f"{header}\n",
            "# Removing this file, then daemon-reload, stop and start, undoes it "
            "(playbooks/rollback.yml).\n",
            "[Service]\n",
            *(f'Environment="{key}={value}"\n' for key, value in lines.items()),
        ]
    )


def _current(path: str) -> tuple[bytes | None, os.stat_result | None]:
    """The file's bytes and lstat, (None, None) when there is none; anything but a regular
    file (a symlink, a directory) is refused: it is not ours to replace or remove."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(status.st_mode):
        raise DropinError(f"{path} exists and is not a regular file; it is left as it is")
    with open(path, "rb") as handle:
        return handle.read(), status


def _attributes(status: os.stat_result) -> str:
    return f"mode {stat.S_IMODE(status.st_mode):04o}, owner {status.st_uid}:{status.st_gid}"


def plan_dropin(
    directory: str,
    name: str,
    state: str,
    environment: Mapping[str, Any] | None = None,
    purpose: str = "",
) -> DropinChange:
    """What making ``<directory>/<name>`` ``present`` (with ``environment`` and ``purpose``,
    root:root 0644) or ``absent`` takes; reads the file, changes nothing. ``environment`` and
    ``purpose`` are not used (nor validated) for ``absent``."""
    problem = fileio.absolute_path_problem(directory)
    if problem:
        raise DropinError(f"invalid drop-in directory {directory!r}: it {problem}")
    if state not in STATES:
        raise DropinError(f"invalid drop-in state {state!r}: must be one of {', '.join(STATES)}")
    path = os.path.join(directory, validate_dropin_name(name))
    after = render_dropin(environment or {}, purpose) if state == "present" else None
    data, status = _current(path)
    before = None if data is None else data.decode("utf-8", errors="replace")
    if after is None:
        changed = data is not None
    else:
        wrong_attributes = status is not None and (
            stat.S_IMODE(status.st_mode) != FILE_MODE or (status.st_uid, status.st_gid) != ROOT
        )
        changed = data != after.encode() or wrong_attributes
    before_header = path if status is None else f"{path} ({_attributes(status)})"
    after_header = path if after is None else f"{path} (mode {FILE_MODE:04o}, owner 0:0)"
    diff = {
        "before_header": before_header,
        "after_header": after_header,
        "before": before or "",
        "after": after or "",
    }
    return DropinChange(directory, path, state, before, after, changed, diff)


def apply_dropin(change: DropinChange) -> None:
    """Do ``change``: write the file atomically (its directory created 0755 when missing), or
    remove it; the directory is fsynced either way. Nothing when it changes nothing."""
    if not change.changed:
        return
    if change.after is not None:
        fileio.ensure_directory(change.directory, DIRECTORY_MODE)
        fileio.write_atomic(change.path, change.after.encode(), FILE_MODE, owner=ROOT)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(change.path)
    fileio.fsync_directory(change.directory)
