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

import json
import os
from datetime import datetime
from typing import Any

from ..checks import full_match, int_in_range
from ..fileio import absolute_path_problem, ensure_directory, fsync_directory, write_atomic
from .lease_file import (
    LEASE_MODE,
    TOKEN_RE,
    FoundLease,
    LeaseError,
    LeaseHeld,
    Serialised,
    expiry,
    holder_message,
    inspect_lease,
    moment_of,
    new_lease,
    parse_iso,
    publish_lease,
    retire_lease,
)

DEFAULT_LEASE_PATH = "/var/lib/model-safety/activation.lease"
DEFAULT_TTL = 1800
MIN_TTL = 1
MAX_TTL = 86_400
MAX_TEXT = 200


DIR_MODE = 0o700


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
    what = f"ttl must be an integer in {MIN_TTL}..{MAX_TTL} seconds"
    return int_in_range(ttl, LeaseError, what, MIN_TTL, MAX_TTL)


def validate_token(token: object) -> str:
    """Return ``token`` if it is 32 lowercase hex digits (what ``acquire`` hands out)."""
    return full_match(token, TOKEN_RE, LeaseError, "not a lease token (32 lowercase hex digits)")


def _validate_path(path: object) -> str:
    if absolute_path_problem(path) is not None:
        raise LeaseError(f"the lease path must be an absolute file path: {path!r}")
    return path


def read_lease(path: str, now: datetime | None = None, ttl: int = DEFAULT_TTL) -> dict | None:
    """The lease at ``path`` with ``expired`` added, or None when there is none.

    An unreadable lease is returned as ``{"corrupt": true, "problem", "content", "modified"}``,
    expired once its mtime is older than ``ttl`` (as ``acquire`` judges it).
    """
    path = _validate_path(path)
    ttl = validate_ttl(ttl)
    found = inspect_lease(path)
    if found is None:
        return None
    return {**found.described(), "expired": found.expired(moment_of(now), ttl)}


def _taken_over(
    found: FoundLease | None, moment: datetime, ttl: int, force: bool
) -> dict[str, Any]:
    """``{"stale", "broken"}``: the lease ``found`` that a take-over replaces, as stale when
    expired, as broken when held and ``force``; raise LeaseHeld when held without ``force``."""
    if found is None:
        return {"stale": None, "broken": None}
    if found.expired(moment, ttl):
        return {"stale": found.described(), "broken": None}
    if not force:
        raise LeaseHeld(holder_message(found, ttl), found.described())
    return {"stale": None, "broken": found.described()}


def _acquire_args(path: object, owner: object, purpose: object, ttl: object) -> tuple:
    """The validated ``(path, owner, purpose, ttl)`` of an acquire, the purpose normalised."""
    return (
        _validate_path(path),
        validate_text("owner", owner),
        normalise_text("purpose", purpose),
        validate_ttl(ttl),
    )


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
    path, _, _, ttl = _acquire_args(path, owner, purpose, ttl)
    return {
        "lease": None,
        "token": None,
        **_taken_over(inspect_lease(path), moment_of(now), ttl, force),
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
    path, owner, purpose, ttl = _acquire_args(path, owner, purpose, ttl)
    moment = moment_of(now)
    try:
        ensure_directory(os.path.dirname(path), DIR_MODE)
        with Serialised(path):
            found = inspect_lease(path)
            lease = new_lease(owner, purpose, ttl, moment)
            replaced = _taken_over(found, moment, ttl, force)
            if found is not None:
                retire_lease(path, found, lease["token"], ttl)
            try:
                publish_lease(path, lease)
            except FileExistsError:
                # Only a writer bypassing the lock gets here; whatever it wrote wins.
                current = inspect_lease(path)
                raise LeaseHeld(
                    holder_message(current, ttl) if current else f"{path} changed meanwhile",
                    current.described() if current else None,
                ) from None
    except OSError as exc:
        raise LeaseError(f"cannot take the lease {path}: {exc}") from None
    return {"lease": lease, "token": lease["token"], **replaced}


def _check_renewable(path: str, found: FoundLease | None, token: str, moment: datetime) -> None:
    if found is None:
        raise LeaseError(
            f"{path} is gone: this activation no longer holds the lease (removed, or taken over "
            "after it expired)"
        )
    _refuse_foreign(path, found, token)
    expires = found.lease["expires"] if found.lease else "?"
    if parse_iso(expires) <= moment:
        raise LeaseError(
            f"this activation's lease expired at {expires}: another activation may take it "
            "over at any moment"
        )


def check_renew(path: str, token: str, ttl: int, now: datetime | None = None) -> dict[str, Any]:
    """What ``renew`` would do, changing nothing: the lease ``token`` holds, or LeaseError."""
    path = _validate_path(path)
    validate_token(token)
    validate_ttl(ttl)
    found = inspect_lease(path)
    _check_renewable(path, found, token, moment_of(now))
    return dict(found.lease)


def renew(path: str, token: str, ttl: int, now: datetime | None = None) -> dict[str, Any]:
    """Prove that ``token`` still holds a valid (unexpired) lease at ``path`` and make it last
    ``ttl`` seconds from now; raise LeaseError (naming any other holder) otherwise. Returns the
    renewed lease. For the moment right before an activation changes anything: the lease it
    took may have expired (a long wait) and been taken over since."""
    path = _validate_path(path)
    validate_token(token)
    ttl = validate_ttl(ttl)
    moment = moment_of(now)
    try:
        with Serialised(path):
            found = inspect_lease(path)
            _check_renewable(path, found, token, moment)
            renewed = {**found.lease, **expiry(moment, ttl)}
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
    found = inspect_lease(path)
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
        with Serialised(path):
            found = inspect_lease(path)
            if found is None:
                return "not_held"
            _refuse_foreign(path, found, token)
            os.unlink(path)
            fsync_directory(os.path.dirname(path))
    except OSError as exc:
        raise LeaseError(f"cannot release the lease {path}: {exc}") from None
    return "released"


def _refuse_foreign(path: str, found: FoundLease, token: str) -> None:
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
