"""The activation lease on disk: its JSON format, reading and judging what is at the lease path,
publishing a new lease whole, moving a stale one aside, and the flock that serialises each
read-judge-replace sequence (the mechanics the :mod:`.lock` docstring describes).
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

from ..fileio import write_atomic
from ..utctime import iso_s

LEASE_MODE = 0o600


LOCK_WAIT_S = 10.0
# Enough of an unreadable lease to recognise it in a report, not a whole file.
_EXCERPT = 200

TOKEN_RE = re.compile(r"[0-9a-f]{32}")
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


def moment_of(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise LeaseError("now must be timezone-aware")
    return now.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    if not _ISO_Z_RE.fullmatch(text):
        raise ValueError(f"not a UTC time like 2026-01-10T12:00:00Z: {text!r}")
    return datetime.fromisoformat(text[:-1] + "+00:00")


@dataclass(frozen=True)
class FoundLease:
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
            return parse_iso(self.lease["expires"]) <= moment
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
    if not TOKEN_RE.fullmatch(lease["token"]):
        raise ValueError("token is not 32 lowercase hex digits")
    parse_iso(lease["acquired"])
    parse_iso(lease["expires"])
    return lease


def inspect_lease(path: str) -> FoundLease | None:
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
    return FoundLease(content, (status.st_dev, status.st_ino), status.st_mtime, lease, problem)


def holder_message(found: FoundLease, ttl: int) -> str:
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


def expiry(moment: datetime, ttl: int) -> dict[str, Any]:
    # Whole seconds, rounded so the lease lasts at least ttl (never less).
    expires = moment.replace(microsecond=0) + timedelta(
        seconds=ttl + (1 if moment.microsecond else 0)
    )
    return {"expires": iso_s(expires), "ttl": ttl}


def new_lease(owner: str, purpose: str, ttl: int, moment: datetime) -> dict[str, Any]:
    return {
        "owner": owner,
        "purpose": purpose,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": secrets.token_hex(16),
        "acquired": iso_s(moment.replace(microsecond=0)),
        **expiry(moment, ttl),
    }


def publish_lease(path: str, lease: Mapping[str, Any]) -> None:
    """Create ``path`` holding ``lease``, whole, or raise FileExistsError if it exists."""
    content = (json.dumps(lease, sort_keys=True) + "\n").encode("ascii")
    write_atomic(path, content, LEASE_MODE, replace=False)


class Serialised:
    """An exclusive flock of ``path + ".lock"`` around one read-judge-replace sequence."""

    def __init__(self, path: str, wait: float = LOCK_WAIT_S) -> None:
        self.lock_path = path + ".lock"
        self.wait = wait
        self.fd = -1

    def __enter__(self) -> Serialised:
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


def retire_lease(path: str, found: FoundLease, token: str, ttl: int) -> None:
    """Move the lease ``found`` (stale, or broken on purpose) out of the way; refuse if another
    file was moved."""
    aside = f"{path}.stale-{token}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        raise LeaseError(f"the stale lease {path} vanished during the take-over") from None
    moved = inspect_lease(aside)
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
    raise LeaseHeld(holder_message(moved, ttl), moved.described())
