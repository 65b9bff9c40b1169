"""One activation (canary, shadow, promotion, rollback) at a time on an engine host: a file lease.

The lease is a small JSON file::

    {"owner": "alice@ops1", "purpose": "canary patchtst", "host": "engine1", "pid": 4242,
     "token": "<32 hex>", "acquired": "2026-01-10T12:00:00Z", "expires": "2026-01-10T12:30:00Z",
     "ttl": 1800}

It outlives the process that took it (a playbook's tasks are separate processes), so it carries
an expiry: a lease whose holder died is STALE once it expires and the next ``acquire`` takes it
over. A lease that cannot be read is judged by its mtime instead: younger than the caller's
ttl it counts as held (fail closed), older it is stale. ``acquire(..., force=True)`` BREAKS a
held lease on purpose (an emergency rollback the operator asked for), by the same take-over.

How it stays one-at-a-time:

* A lease appears whole or not at all: it is written to a temporary file in the same
  directory, fsynced, then hard-linked to ``path`` (``os.link`` fails if ``path`` exists, so
  two creators cannot both succeed) and the temporary name is removed. A reader sees no file
  or a complete lease, never half of one.
* A stale lease is moved aside with ``os.rename(path, path + ".stale-<new token>")`` (one
  contender wins the rename) and the file moved is checked to be the one judged stale; a
  different one is linked back and the take-over refused.
* Every read-judge-replace sequence (acquire, release) runs under an exclusive ``flock`` of
  the side file ``path + ".lock"``, so a contender never renames away a lease another one has
  just created, and a release never removes a lease that replaced the released one. The kernel
  drops a flock when its process dies, so that lock cannot go stale; it is held for
  milliseconds and waited for at most ``LOCK_WAIT_S``.

The race accepted: a writer that bypasses this module (an operator's ``mv`` or ``rm``) between
a release's token check and its ``unlink`` could have its file removed; the lock makes that the
only way. Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..fileio import ensure_directory, fsync_directory, write_atomic
from ..utctime import iso_s

DEFAULT_LEASE_PATH = "/var/lib/model-safety/activation.lease"
DEFAULT_TTL = 1800
MIN_TTL = 1
MAX_TTL = 86_400
MAX_TEXT = 200
LEASE_MODE = 0o600
DIR_MODE = 0o700
LOCK_WAIT_S = 10.0
# Enough of an unreadable lease to recognise it in a report, not a whole file.
_EXCERPT = 200

_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
_ISO_Z_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_FIELDS = {
    "owner": str,
    "purpose": str,
    "host": str,
    "pid": int,
    "token": str,
    "acquired": str,
    "expires": str,
    "ttl": int,
}


class LeaseError(Exception):
    """Bad input, or a lease that cannot be taken or released; ``lease`` is the holder's."""

    def __init__(self, message: str, lease: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.lease = dict(lease) if lease is not None else None


class LeaseHeld(LeaseError):
    """Another activation holds a valid, unexpired lease (or one too young to judge)."""


# --------------------------------------------------------------------------- validation


def validate_text(name: str, value: object) -> str:
    """Return ``value`` if it is a non-blank printable string of at most MAX_TEXT characters."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or not value.isprintable()
        or len(value) > MAX_TEXT
    ):
        raise LeaseError(
            f"{name} must be a non-empty printable string of at most {MAX_TEXT} characters: "
            f"{value!r}"
        )
    return value


def normalise_text(name: str, value: object) -> str:
    """``value`` as one printable line of at most MAX_TEXT characters: every run of whitespace
    or control characters becomes one space, and a longer text is cut (ending in ``...``).
    Free text (an operator's reason) never makes a lease refused; only a blank one does."""
    if not isinstance(value, str):
        raise LeaseError(f"{name} must be a string: {value!r}")
    text = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    if not text:
        raise LeaseError(f"{name} must not be blank: {value!r}")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def validate_ttl(ttl: object) -> int:
    """Return ``ttl`` if it is an integer number of seconds in MIN_TTL..MAX_TTL."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        raise LeaseError(f"ttl must be an integer in {MIN_TTL}..{MAX_TTL} seconds: {ttl!r}")
    return ttl


def validate_token(token: object) -> str:
    """Return ``token`` if it is 32 lowercase hex digits (what ``acquire`` hands out)."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise LeaseError(f"not a lease token (32 lowercase hex digits): {token!r}")
    return token


def _validate_path(path: object) -> str:
    if not isinstance(path, str) or not os.path.isabs(path) or path.endswith("/"):
        raise LeaseError(f"the lease path must be an absolute file path: {path!r}")
    return path


# --------------------------------------------------------------------------- time


def _moment(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise LeaseError("now must be timezone-aware")
    return now.astimezone(UTC)


def _parse_iso(text: str) -> datetime:
    if not _ISO_Z_RE.fullmatch(text):
        raise ValueError(f"not a UTC time like 2026-01-10T12:00:00Z: {text!r}")
    return datetime.fromisoformat(text[:-1] + "+00:00")


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class _Found:
    """What is at the lease path: its bytes and identity, and the lease they hold (None when
    unreadable)."""

    content: bytes
    identity: tuple[int, int]
    mtime: float
    lease: dict[str, Any] | None
    problem: str | None

    def expired(self, moment: datetime, ttl: int) -> bool:
        """A valid lease past its expiry, or an unreadable one older than ``ttl``."""
        if self.lease is not None:
            return _parse_iso(self.lease["expires"]) <= moment
        return moment.timestamp() - self.mtime > ttl

    def described(self) -> dict[str, Any]:
        """The lease as returned to callers; an unreadable one as what is known of it."""
        if self.lease is not None:
            return dict(self.lease)
        return {
            "corrupt": True,
            "problem": self.problem,
            "content": self.content[:_EXCERPT].decode("utf-8", "replace"),
            "modified": iso_s(datetime.fromtimestamp(self.mtime, UTC)),
        }


def parse_lease(content: bytes) -> dict[str, Any]:
    """The lease in ``content``; raise ValueError naming what is wrong with it."""
    lease = json.loads(content.decode("utf-8"))
    if not isinstance(lease, dict):
        raise ValueError("not a JSON object")
    for name, kind in _FIELDS.items():
        value = lease.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{name} missing or not a {kind.__name__}")
    if not _TOKEN_RE.fullmatch(lease["token"]):
        raise ValueError("token is not 32 lowercase hex digits")
    _parse_iso(lease["acquired"])
    _parse_iso(lease["expires"])
    return lease


def _inspect(path: str) -> _Found | None:
    try:
        with open(path, "rb") as handle:
            content = handle.read()
            status = os.fstat(handle.fileno())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LeaseError(f"cannot read the lease {path}: {exc}") from None
    try:
        lease, problem = parse_lease(content), None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        lease, problem = None, f"unreadable lease: {exc}"
    return _Found(content, (status.st_dev, status.st_ino), status.st_mtime, lease, problem)


def _holder_message(found: _Found, ttl: int) -> str:
    if found.lease is not None:
        lease = found.lease
        return (
            f"held by {lease['owner']} for {lease['purpose']} since {lease['acquired']} "
            f"(expires {lease['expires']})"
        )
    modified = datetime.fromtimestamp(found.mtime, UTC)
    return (
        f"held by an unreadable lease written {iso_s(modified)} ({found.problem}); "
        f"treated as held until it is {ttl} s old "
        f"({iso_s(modified + timedelta(seconds=ttl))})"
    )


def _expiry(moment: datetime, ttl: int) -> dict[str, Any]:
    # Whole seconds, rounded so the lease lasts at least ttl (never less).
    expires = moment.replace(microsecond=0) + timedelta(
        seconds=ttl + (1 if moment.microsecond else 0)
    )
    return {"expires": iso_s(expires), "ttl": ttl}


def _new_lease(owner: str, purpose: str, ttl: int, moment: datetime) -> dict[str, Any]:
    return {
        "owner": owner,
        "purpose": purpose,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": secrets.token_hex(16),
        "acquired": iso_s(moment.replace(microsecond=0)),
        **_expiry(moment, ttl),
    }


def _publish(path: str, lease: Mapping[str, Any]) -> None:
    """Create ``path`` holding ``lease``, whole, or raise FileExistsError if it exists."""
    content = (json.dumps(lease, sort_keys=True) + "\n").encode("ascii")
    write_atomic(path, content, LEASE_MODE, replace=False)


class _Serialised:
    """An exclusive flock of ``path + ".lock"`` around one read-judge-replace sequence."""

    def __init__(self, path: str, wait: float = LOCK_WAIT_S) -> None:
        self.lock_path = path + ".lock"
        self.wait = wait
        self.fd = -1

    def __enter__(self) -> _Serialised:
        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LEASE_MODE)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(self.fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(self.fd)
                raise LeaseError(f"{self.lock_path} stayed locked for {self.wait:g} s")
            time.sleep(0.01)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)


def _retire(path: str, found: _Found, token: str, ttl: int) -> None:
    """Move the lease ``found`` (stale, or broken on purpose) out of the way; refuse if another
    file was moved."""
    aside = f"{path}.stale-{token}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        raise LeaseError(f"the stale lease {path} vanished during the take-over") from None
    moved = _inspect(aside)
    if moved is None:
        raise LeaseError(f"{aside} vanished during the take-over of {path}")
    if (moved.identity, moved.content) == (found.identity, found.content):
        os.unlink(aside)
        return
    try:
        os.link(aside, path)
    except FileExistsError:
        raise LeaseError(
            f"{path} changed during the take-over and was replaced again; "
            f"the lease moved aside is kept in {aside}",
            moved.described(),
        ) from None
    os.unlink(aside)
    raise LeaseHeld(_holder_message(moved, ttl), moved.described())


# --------------------------------------------------------------------------- public API


def read_lease(path: str, now: datetime | None = None, ttl: int = DEFAULT_TTL) -> dict | None:
    """The lease at ``path`` with ``expired`` added, or None when there is none.

    An unreadable lease is returned as ``{"corrupt": true, "problem", "content", "modified"}``,
    expired once its mtime is older than ``ttl`` (as ``acquire`` judges it).
    """
    path = _validate_path(path)
    ttl = validate_ttl(ttl)
    found = _inspect(path)
    if found is None:
        return None
    return {**found.described(), "expired": found.expired(_moment(now), ttl)}


def _taken_over(found: _Found | None, moment: datetime, ttl: int, force: bool) -> dict[str, Any]:
    """``{"stale", "broken"}``: the lease ``found`` that a take-over replaces, as stale when
    expired, as broken when held and ``force``; raise LeaseHeld when held without ``force``."""
    if found is None:
        return {"stale": None, "broken": None}
    if found.expired(moment, ttl):
        return {"stale": found.described(), "broken": None}
    if not force:
        raise LeaseHeld(_holder_message(found, ttl), found.described())
    return {"stale": None, "broken": found.described()}


def check_acquire(
    path: str,
    owner: str,
    purpose: str,
    ttl: int,
    now: datetime | None = None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """What ``acquire`` would do, changing nothing: raise LeaseHeld if it would be refused,
    else return ``{"lease": None, "token": None, "stale": <expired lease it would take over>,
    "broken": <held lease it would break (force)>}`` (None when there is none).
    """
    path = _validate_path(path)
    validate_text("owner", owner)
    normalise_text("purpose", purpose)
    ttl = validate_ttl(ttl)
    return {
        "lease": None,
        "token": None,
        **_taken_over(_inspect(path), _moment(now), ttl, force),
    }


def acquire(
    path: str,
    owner: str,
    purpose: str,
    ttl: int,
    now: datetime | None = None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Take the lease at ``path`` for ``ttl`` seconds, or raise LeaseHeld naming its holder.

    An expired lease is taken over; with ``force`` a held one is too (broken on purpose).
    Returns ``{"lease": {...}, "token": "<32 hex>", "stale": <the expired lease taken over>,
    "broken": <the held lease broken>}`` (None when there was none); the token is what
    ``release`` needs.
    """
    path = _validate_path(path)
    owner = validate_text("owner", owner)
    purpose = normalise_text("purpose", purpose)
    ttl = validate_ttl(ttl)
    moment = _moment(now)
    try:
        ensure_directory(os.path.dirname(path), DIR_MODE)
        with _Serialised(path):
            found = _inspect(path)
            lease = _new_lease(owner, purpose, ttl, moment)
            replaced = _taken_over(found, moment, ttl, force)
            if found is not None:
                _retire(path, found, lease["token"], ttl)
            try:
                _publish(path, lease)
            except FileExistsError:
                # Only a writer bypassing the lock gets here; whatever it wrote wins.
                current = _inspect(path)
                raise LeaseHeld(
                    _holder_message(current, ttl) if current else f"{path} changed meanwhile",
                    current.described() if current else None,
                ) from None
    except OSError as exc:
        raise LeaseError(f"cannot take the lease {path}: {exc}") from None
    return {"lease": lease, "token": lease["token"], **replaced}


def _check_renewable(path: str, found: _Found | None, token: str, moment: datetime) -> None:
    if found is None:
        raise LeaseError(
            f"{path} is gone: this activation no longer holds the lease (removed, or taken over "
            "after it expired)"
        )
    _refuse_foreign(path, found, token)
    expires = found.lease["expires"] if found.lease else "?"
    if _parse_iso(expires) <= moment:
        raise LeaseError(
            f"this activation's lease expired at {expires}: another activation may take it "
            "over at any moment"
        )


def check_renew(path: str, token: str, ttl: int, now: datetime | None = None) -> dict[str, Any]:
    """What ``renew`` would do, changing nothing: the lease ``token`` holds, or LeaseError."""
    path = _validate_path(path)
    validate_token(token)
    validate_ttl(ttl)
    found = _inspect(path)
    _check_renewable(path, found, token, _moment(now))
    return dict(found.lease)


def renew(path: str, token: str, ttl: int, now: datetime | None = None) -> dict[str, Any]:
    """Prove that ``token`` still holds a valid (unexpired) lease at ``path`` and make it last
    ``ttl`` seconds from now; raise LeaseError (naming any other holder) otherwise. Returns the
    renewed lease. For the moment right before an activation changes anything: the lease it
    took may have expired (a long wait) and been taken over since."""
    path = _validate_path(path)
    validate_token(token)
    ttl = validate_ttl(ttl)
    moment = _moment(now)
    try:
        with _Serialised(path):
            found = _inspect(path)
            _check_renewable(path, found, token, moment)
            renewed = {**found.lease, **_expiry(moment, ttl)}
            content = (json.dumps(renewed, sort_keys=True) + "\n").encode("ascii")
            write_atomic(path, content, LEASE_MODE)
    except OSError as exc:
        raise LeaseError(f"cannot renew the lease {path}: {exc}") from None
    return renewed


def check_release(path: str, token: str) -> str:
    """What ``release`` would return ("released" or "not_held"), changing nothing; raises
    as it would."""
    path = _validate_path(path)
    validate_token(token)
    found = _inspect(path)
    if found is None:
        return "not_held"
    _refuse_foreign(path, found, token)
    return "released"


def release(path: str, token: str) -> str:
    """Remove the lease at ``path`` if ``token`` holds it: "released"; "not_held" when there is
    no lease; LeaseError (naming the holder) when another token holds it."""
    path = _validate_path(path)
    validate_token(token)
    if not os.path.isdir(os.path.dirname(path)):
        return "not_held"
    try:
        with _Serialised(path):
            found = _inspect(path)
            if found is None:
                return "not_held"
            _refuse_foreign(path, found, token)
            os.unlink(path)
            fsync_directory(os.path.dirname(path))
    except OSError as exc:
        raise LeaseError(f"cannot release the lease {path}: {exc}") from None
    return "released"


def _refuse_foreign(path: str, found: _Found, token: str) -> None:
    if found.lease is None:
        raise LeaseError(
            f"{path} is an unreadable lease ({found.problem}), not the one of this token",
            found.described(),
        )
    if found.lease["token"] != token:
        lease = found.lease
        raise LeaseError(
            f"{path} is held by {lease['owner']} for {lease['purpose']} since "
            f"{lease['acquired']} with another token",
            lease,
        )
