"""A change of the engine's EnvironmentFile on the host: planned, then applied.

:func:`plan_env_change` decides everything without writing: the new text (rendered by
:func:`.envfile.render_env`), the keys that change, the diff a module shows, the values output
must mask, and the owner, group and mode to apply; every refusal (missing or invalid file,
invalid changes, unsafe mode, unknown owner or group) is raised there, before anything is
written. :func:`apply_env_change` then writes the file atomically. The ``env_file`` module and
``engine_change`` (the canary's whole change in one module call) both run these two, so their
refusals, messages, diff and results are the same.

Secrets: no output may show a secret's value, and Ansible shows a task's options and results.
A module wrapper therefore adds to its ``no_log_values``, before it can fail or return:

* on success, :attr:`EnvFileChange.secrets`;
* on a refusal, the ``secrets`` of the raised :class:`.envfile.EnvFileError` (those of the
  changes, and those of the file once it was read), then fails with its message.

Messages themselves never show a value. Standard library only (runs on the target).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..fileio import write_atomic
from .envfile import (
    EnvFileError,
    change_secret_values,
    changed_keys,
    diff_texts,
    render_env,
    secret_values,
)

__all__ = ["EnvFileChange", "apply_env_change", "plan_env_change"]

# Others must not read the file (secrets) and only its owner may write it.
FORBIDDEN_MODE_BITS = 0o027


@dataclass(frozen=True)
class EnvFileChange:
    """A planned change of the env file at ``path``.

    ``current`` and ``rendered`` are its text before and after; ``changed_keys`` and ``diff``
    are what a module returns (masked); ``secrets`` are the values output must mask; ``uid``,
    ``gid`` and ``mode`` are what the file gets (None: kept as it is). The texts and secrets
    are left out of ``repr``.
    """

    path: str
    current: str = field(repr=False)
    rendered: str = field(repr=False)
    changed_keys: dict[str, dict[str, str | None]]
    diff: dict[str, str]
    secrets: frozenset[str] = field(repr=False)
    uid: int | None
    gid: int | None
    mode: int | None
    content_changed: bool
    attributes_changed: bool

    @property
    def changed(self) -> bool:
        """Whether applying it changes anything (the module's ``changed``)."""
        return self.content_changed or self.attributes_changed


def _checked_mode(text: str | None, secrets: frozenset[str]) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise EnvFileError(
            f"mode must be an octal string such as '0640', not {text!r}", secrets
        ) from None
    if not 0 <= mode <= 0o777 or mode & FORBIDDEN_MODE_BITS:
        raise EnvFileError(
            f"mode {text} refused: the env file holds secrets; others must not read it and "
            "only its owner may write it (for example '0640' or '0600')",
            secrets,
        )
    return mode


def _looked_up_id(
    name: str | None, lookup: Callable[[str], int], failure: str, secrets: frozenset[str]
) -> int | None:
    """The id of ``name`` (a name or a number), with Ansible's chown/chgrp message when it is
    unknown, raised before anything is written (Ansible's own lookup comes after the write)."""
    if name is None:
        return None
    try:
        return int(name)
    except ValueError:
        pass
    try:
        return lookup(name)
    except KeyError:
        raise EnvFileError(f"{failure} {name}", secrets) from None


def _uid_of(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def _gid_of(name: str) -> int:
    return grp.getgrnam(name).gr_gid


def _read(path: str, secrets: frozenset[str]) -> tuple[str, os.stat_result]:
    """The file's text, every byte as it is (a CR is the parser's to refuse), and its stat."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8"), os.fstat(handle.fileno())
    except FileNotFoundError:
        raise EnvFileError(
            f"{path} does not exist (the env file is changed, never created)", secrets
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"cannot read {path}: {exc}", secrets) from None


def _file_secrets(text: str) -> set[str]:
    """The secrets of ``text`` as far as it is valid (none if it is not)."""
    with contextlib.suppress(EnvFileError):
        return secret_values(text, {})
    return set()


def plan_env_change(
    path: str,
    changes: Mapping[str, str | None],
    owner: str | None = None,
    group: str | None = None,
    mode: str | None = None,
) -> EnvFileChange:
    """The change that sets ``changes`` in the env file at ``path`` (a value of None removes
    its key) and gives the file ``owner``, ``group`` (names or ids) and ``mode`` (an octal
    string), each kept as it is when None. Nothing is written.

    Raises :class:`.envfile.EnvFileError` (its ``secrets`` set) on, in this order: a bad or
    unsafe mode, an unknown owner or group, a missing or unreadable file, an invalid file or
    invalid changes (those messages start with ``path``).
    """
    secrets = frozenset(change_secret_values(changes))
    wanted_mode = _checked_mode(mode, secrets)
    uid = _looked_up_id(owner, _uid_of, "chown failed: failed to look up user", secrets)
    gid = _looked_up_id(group, _gid_of, "chgrp failed: failed to look up group", secrets)
    current, info = _read(path, secrets)
    try:
        secrets = frozenset(secret_values(current, changes))
        rendered = render_env(current, changes)
        keys = changed_keys(current, changes)
        before, after = diff_texts(current, changes)
    except EnvFileError as exc:
        raise EnvFileError(f"{path}: {exc}", secrets | _file_secrets(current)) from None
    header = f"{path} (changed keys only; secrets hidden)"
    return EnvFileChange(
        path=path,
        current=current,
        rendered=rendered,
        changed_keys=keys,
        diff={"before_header": header, "after_header": header, "before": before, "after": after},
        secrets=secrets,
        uid=uid,
        gid=gid,
        mode=wanted_mode,
        content_changed=rendered != current,
        attributes_changed=(
            (uid is not None and uid != info.st_uid)
            or (gid is not None and gid != info.st_gid)
            or (wanted_mode is not None and wanted_mode != stat.S_IMODE(info.st_mode))
        ),
    )


def _or_current(wanted: int | None, current: int) -> int:
    return current if wanted is None else wanted


def apply_env_change(change: EnvFileChange) -> None:
    """Make ``change``: the new text written atomically (a temporary file beside the env file,
    fsynced, renamed over it: a reader sees the old or the new file, never half of one) with
    the file's current owner, group and mode unless others were given; or only the owner,
    group and mode set when just they differ; nothing when nothing changes.

    Raises :class:`.envfile.EnvFileError` (its ``secrets`` set) when the write, chown or chmod
    fails; the file then keeps its old content.
    """
    path = change.path
    try:
        if change.content_changed:
            info = os.stat(path)
            write_atomic(
                path,
                change.rendered.encode("utf-8"),
                _or_current(change.mode, stat.S_IMODE(info.st_mode)),
                (_or_current(change.uid, info.st_uid), _or_current(change.gid, info.st_gid)),
            )
        elif change.attributes_changed:
            _set_attributes(change)
    except OSError as exc:
        raise EnvFileError(f"cannot write {path}: {exc}", change.secrets) from None


def _set_attributes(change: EnvFileChange) -> None:
    # As Ansible does: owner and group first (a chown may clear set-id bits), then the mode.
    if change.uid is not None or change.gid is not None:
        os.chown(change.path, _or_current(change.uid, -1), _or_current(change.gid, -1))
    if change.mode is not None:
        os.chmod(change.path, change.mode)
