"""The one-at-a-time activation lease (model_safety.activation.lock) on real files in tmp_path:
round trip, refusals naming the holder, stale and corrupt leases, token checks, validation, and real
processes racing for it."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model_safety.activation import lock as ls
from model_safety.activation.lease_file import parse_lease

T0 = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def lease_path(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "activation.lease")


def on_disk(path: str) -> dict:
    return json.loads(Path(path).read_text())


def leftovers(path: str) -> list[str]:
    """Files beside the lease other than the lease and its lock file."""
    names = set(os.listdir(os.path.dirname(path)))
    return sorted(names - {os.path.basename(path), os.path.basename(path) + ".lock"})


# --------------------------------------------------------------------------- round trip


def test_acquire_writes_a_complete_private_lease_and_release_removes_it(lease_path):
    taken = ls.acquire(lease_path, "alice@ops1", "canary patchtst", 1800, now=T0)
    assert taken["stale"] is None
    lease = taken["lease"]
    assert re.fullmatch(r"[0-9a-f]{32}", taken["token"]) and lease["token"] == taken["token"]
    assert lease == {
        "owner": "alice@ops1",
        "purpose": "canary patchtst",
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "token": taken["token"],
        "acquired": "2026-01-10T12:00:00Z",
        "expires": "2026-01-10T12:30:00Z",
        "ttl": 1800,
    }
    assert on_disk(lease_path) == lease
    assert stat.S_IMODE(os.stat(lease_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(lease_path)).st_mode) == 0o700
    assert leftovers(lease_path) == []  # the temporary file is gone

    assert ls.read_lease(lease_path, now=T0) == {**lease, "expired": False}
    assert ls.check_release(lease_path, taken["token"]) == "released"
    assert os.path.exists(lease_path)  # the check changed nothing
    assert ls.release(lease_path, taken["token"]) == "released"
    assert not os.path.exists(lease_path)
    assert ls.read_lease(lease_path) is None
    assert ls.release(lease_path, taken["token"]) == "not_held"
    assert ls.check_release(lease_path, taken["token"]) == "not_held"


def test_a_fraction_of_a_second_never_shortens_the_lease(lease_path):
    lease = ls.acquire(lease_path, "a", "p", 1, now=T0 + timedelta(microseconds=1))["lease"]
    assert (lease["acquired"], lease["expires"]) == ("2026-01-10T12:00:00Z", "2026-01-10T12:00:02Z")


def test_release_when_the_directory_does_not_exist(tmp_path):
    assert ls.release(str(tmp_path / "none" / "x.lease"), "0" * 32) == "not_held"
    assert not (tmp_path / "none").exists()


# --------------------------------------------------------------------------- refusals


def test_a_held_lease_refuses_a_second_acquire_naming_the_holder(lease_path):
    first = ls.acquire(lease_path, "alice@ops1", "canary patchtst", 600, now=T0)
    later = T0 + timedelta(seconds=599)
    for attempt in (ls.acquire, ls.check_acquire):
        with pytest.raises(ls.LeaseHeld) as refused:
            attempt(lease_path, "bob@ops2", "rollback", 600, now=later)
        assert str(refused.value) == (
            "held by alice@ops1 for canary patchtst since 2026-01-10T12:00:00Z "
            "(expires 2026-01-10T12:10:00Z)"
        )
        assert refused.value.lease == first["lease"]
    assert on_disk(lease_path) == first["lease"]
    assert leftovers(lease_path) == []


def test_release_with_another_token_is_refused_and_keeps_the_lease(lease_path):
    taken = ls.acquire(lease_path, "alice@ops1", "canary patchtst", 600)
    for attempt in (ls.release, ls.check_release):
        with pytest.raises(ls.LeaseError, match="held by alice@ops1 for canary patchtst") as exc:
            attempt(lease_path, "f" * 32)
        assert not isinstance(exc.value, ls.LeaseHeld)
        assert exc.value.lease == taken["lease"]
    assert on_disk(lease_path) == taken["lease"]


def test_release_refuses_an_unreadable_lease(lease_path):
    os.makedirs(os.path.dirname(lease_path))
    Path(lease_path).write_text("{not json")
    with pytest.raises(ls.LeaseError, match="unreadable lease") as exc:
        ls.release(lease_path, "a" * 32)
    assert exc.value.lease["corrupt"] is True and exc.value.lease["content"] == "{not json"
    assert Path(lease_path).read_text() == "{not json"


# --------------------------------------------------------------------------- stale leases


def test_an_expired_lease_is_taken_over_and_returned_as_stale(lease_path):
    old = ls.acquire(lease_path, "alice@ops1", "canary patchtst", 60, now=T0)
    later = T0 + timedelta(seconds=60)
    assert ls.read_lease(lease_path, now=later)["expired"] is True
    assert ls.check_acquire(lease_path, "bob", "rollback", 60, now=later) == {
        "lease": None,
        "token": None,
        "stale": old["lease"],
        "broken": None,
    }
    assert on_disk(lease_path) == old["lease"]  # the check changed nothing

    taken = ls.acquire(lease_path, "bob", "rollback", 60, now=later)
    assert taken["stale"] == old["lease"] and taken["broken"] is None
    assert taken["lease"]["owner"] == "bob" and taken["token"] != old["token"]
    assert on_disk(lease_path) == taken["lease"]
    assert leftovers(lease_path) == []  # the stale lease moved aside is removed
    # The old holder's token is worthless now.
    with pytest.raises(ls.LeaseError, match="held by bob for rollback"):
        ls.release(lease_path, old["token"])


# --------------------------------------------------------------------------- breaking a lease


def test_force_breaks_a_held_lease_and_returns_it_as_broken(lease_path):
    held = ls.acquire(lease_path, "alice@ops1", "canary patchtst", 1800, now=T0)
    soon = T0 + timedelta(seconds=5)
    with pytest.raises(ls.LeaseHeld, match="held by alice@ops1 for canary patchtst"):
        ls.acquire(lease_path, "bob", "rollback", 60, now=soon)
    checked = ls.check_acquire(lease_path, "bob", "rollback", 60, now=soon, force=True)
    assert checked == {"lease": None, "token": None, "stale": None, "broken": held["lease"]}
    assert on_disk(lease_path) == held["lease"]  # the check changed nothing

    taken = ls.acquire(lease_path, "bob", "rollback", 60, now=soon, force=True)
    assert taken["broken"] == held["lease"] and taken["stale"] is None
    assert taken["lease"]["owner"] == "bob" and taken["token"] != held["token"]
    assert on_disk(lease_path) == taken["lease"]
    assert leftovers(lease_path) == []
    with pytest.raises(ls.LeaseError, match="held by bob for rollback"):
        ls.release(lease_path, held["token"])
    assert ls.release(lease_path, taken["token"]) == "released"


def test_force_without_a_lease_or_with_a_stale_one_breaks_nothing(lease_path):
    free = ls.acquire(lease_path, "alice", "canary", 60, now=T0, force=True)
    assert free["stale"] is None and free["broken"] is None
    later = T0 + timedelta(seconds=61)
    taken = ls.acquire(lease_path, "bob", "rollback", 60, now=later, force=True)
    assert taken["stale"] == free["lease"] and taken["broken"] is None


def test_force_breaks_a_young_unreadable_lease(lease_path):
    write_corrupt(lease_path, age=10)
    with pytest.raises(ls.LeaseHeld):
        ls.acquire(lease_path, "bob", "rollback", 600)
    taken = ls.acquire(lease_path, "bob", "rollback", 600, force=True)
    assert taken["broken"]["corrupt"] is True and taken["stale"] is None
    assert on_disk(lease_path) == taken["lease"]


def test_force_still_refuses_a_lease_swapped_during_the_take_over(lease_path, monkeypatch):
    ls.acquire(lease_path, "alice", "canary", 1800, now=T0)
    real_rename = os.rename

    def swap_then_rename(src, dst):
        Path(src).write_text(json.dumps({"swapped": True}))
        real_rename(src, dst)

    monkeypatch.setattr(ls.os, "rename", swap_then_rename)
    with pytest.raises(ls.LeaseHeld, match="unreadable lease"):
        ls.acquire(lease_path, "bob", "rollback", 60, now=T0, force=True)
    assert on_disk(lease_path) == {"swapped": True}


def write_corrupt(path: str, age: float, content: str = '{"owner": "alice", "tok') -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(content)
    moment = time.time() - age
    os.utime(path, (moment, moment))


@pytest.mark.parametrize(
    "content",
    ['{"owner": "alice", "tok', "[1, 2]", '{"owner": "alice"}', "\xff\xfe", ""],
    ids=["half", "not-an-object", "missing-fields", "not-utf8", "empty"],
)
def test_a_young_corrupt_lease_counts_as_held(lease_path, content):
    write_corrupt(lease_path, age=10, content=content)
    with pytest.raises(ls.LeaseHeld, match=r"held by an unreadable lease written .* 600 s old"):
        ls.acquire(lease_path, "bob", "canary", 600)
    with pytest.raises(ls.LeaseHeld):
        ls.check_acquire(lease_path, "bob", "canary", 600)
    assert Path(lease_path).read_text() == content
    found = ls.read_lease(lease_path, ttl=600)
    assert found["corrupt"] is True and found["expired"] is False


def test_an_old_corrupt_lease_is_taken_over(lease_path):
    write_corrupt(lease_path, age=700)
    assert ls.read_lease(lease_path, ttl=600)["expired"] is True
    taken = ls.acquire(lease_path, "bob", "canary", 600)
    assert taken["stale"]["corrupt"] is True
    assert taken["stale"]["content"] == '{"owner": "alice", "tok'
    assert "unreadable lease" in taken["stale"]["problem"]
    assert on_disk(lease_path) == taken["lease"]
    assert leftovers(lease_path) == []


def test_a_lease_swapped_during_the_take_over_is_put_back_and_refused(lease_path, monkeypatch):
    """If the file renamed away is not the stale one judged (a writer bypassing the lock
    replaced it), it is linked back and the take-over refused."""
    ls.acquire(lease_path, "alice", "canary", 60, now=T0)
    fresh = {**on_disk(lease_path), "owner": "carol", "token": "c" * 32}
    real_rename = os.rename

    def swap_then_rename(source, target):
        Path(lease_path + ".new").write_text(json.dumps(fresh))
        real_rename(lease_path + ".new", lease_path)
        real_rename(source, target)

    monkeypatch.setattr(ls.os, "rename", swap_then_rename)
    with pytest.raises(ls.LeaseHeld, match="held by carol for canary") as refused:
        ls.acquire(lease_path, "bob", "rollback", 60, now=T0 + timedelta(hours=1))
    assert refused.value.lease == fresh
    assert on_disk(lease_path) == fresh
    assert leftovers(lease_path) == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("owner", "purpose", "ttl", "message"),
    [
        ("", "canary", 60, "owner must be a non-empty printable"),
        ("   ", "canary", 60, "owner must be"),
        ("a\nb", "canary", 60, "owner must be"),
        ("a" * 201, "canary", 60, "at most 200"),
        (None, "canary", 60, "owner must be"),
        ("alice", "", 60, "purpose must not be blank"),
        ("alice", " \n\t\x1b ", 60, "purpose must not be blank"),
        ("alice", None, 60, "purpose must be a string"),
        ("alice", "canary", 0, "ttl must be an integer in 1..86400"),
        ("alice", "canary", 86_401, "ttl must be"),
        ("alice", "canary", 1.5, "ttl must be"),
        ("alice", "canary", True, "ttl must be"),
    ],
)
def test_invalid_input_is_refused_before_anything_is_written(
    lease_path, owner, purpose, ttl, message
):
    for attempt in (ls.acquire, ls.check_acquire):
        with pytest.raises(ls.LeaseError, match=re.escape(message)):
            attempt(lease_path, owner, purpose, ttl)
    assert not os.path.exists(os.path.dirname(lease_path))


@pytest.mark.parametrize(
    ("purpose", "kept"),
    [
        ("rollback: canary lost money", "rollback: canary lost money"),
        ("rollback: line one\nline two\r\n\tend", "rollback: line one line two end"),
        ("rollback: \x1b[31mred\x1b[0m", "rollback: [31mred [0m"),
        ("rollback: " + "x" * 300, "rollback: " + "x" * 187 + "..."),
    ],
)
def test_a_free_text_purpose_is_made_one_short_line_never_refused(lease_path, purpose, kept):
    assert ls.check_acquire(lease_path, "alice", purpose, 60)["stale"] is None
    taken = ls.acquire(lease_path, "alice", purpose, 60)
    assert taken["lease"]["purpose"] == kept == on_disk(lease_path)["purpose"]
    assert len(kept) <= ls.MAX_TEXT


def test_boundaries_are_accepted(lease_path):
    assert ls.acquire(lease_path, "a" * 200, "p", 86_400)["lease"]["ttl"] == 86_400


@pytest.mark.parametrize("token", ["", "A" * 32, "a" * 31, "a" * 33, None, "../" + "a" * 29])
def test_a_malformed_token_is_refused(lease_path, token):
    for attempt in (ls.release, ls.check_release):
        with pytest.raises(ls.LeaseError, match="not a lease token"):
            attempt(lease_path, token)
    for attempt in (ls.renew, ls.check_renew):
        with pytest.raises(ls.LeaseError, match="not a lease token"):
            attempt(lease_path, token, 60)


# --------------------------------------------------------------------------- renew


def test_renew_proves_the_lease_is_held_and_extends_it(lease_path):
    taken = ls.acquire(lease_path, "alice", "canary patchtst", 120, now=T0)
    later = T0 + timedelta(seconds=100)
    assert ls.check_renew(lease_path, taken["token"], 300, now=later) == on_disk(lease_path)
    renewed = ls.renew(lease_path, taken["token"], 300, now=later)
    assert renewed == on_disk(lease_path)
    assert renewed["expires"] == "2026-01-10T12:06:40Z" and renewed["ttl"] == 300
    assert {k: v for k, v in renewed.items() if k not in ("expires", "ttl")} == {
        k: v for k, v in taken["lease"].items() if k not in ("expires", "ttl")
    }
    assert leftovers(lease_path) == []
    assert ls.release(lease_path, taken["token"]) == "released"


def test_renew_refuses_an_expired_lease_even_if_nobody_took_it_over(lease_path):
    taken = ls.acquire(lease_path, "alice", "canary patchtst", 60, now=T0)
    before = on_disk(lease_path)
    for attempt in (ls.renew, ls.check_renew):
        with pytest.raises(ls.LeaseError, match="expired at 2026-01-10T12:01:00Z"):
            attempt(lease_path, taken["token"], 60, now=T0 + timedelta(seconds=61))
    assert on_disk(lease_path) == before


def test_renew_refuses_a_lease_taken_over_or_gone(lease_path):
    mine = ls.acquire(lease_path, "alice", "canary patchtst", 60, now=T0)
    theirs = ls.acquire(
        lease_path, "bob", "rollback: emergency", 600, now=T0 + timedelta(seconds=61)
    )
    moment = T0 + timedelta(seconds=62)
    for attempt in (ls.renew, ls.check_renew):
        with pytest.raises(ls.LeaseError, match="held by bob for rollback: emergency"):
            attempt(lease_path, mine["token"], 60, now=moment)
    assert on_disk(lease_path) == theirs["lease"]
    ls.release(lease_path, theirs["token"])
    for attempt in (ls.renew, ls.check_renew):
        with pytest.raises(ls.LeaseError, match="no longer holds the lease"):
            attempt(lease_path, mine["token"], 60, now=moment)
    assert not os.path.exists(lease_path)


@pytest.mark.parametrize("path", ["relative.lease", "/var/lib/model-safety/", ""])
def test_a_bad_path_is_refused(path):
    with pytest.raises(ls.LeaseError, match="absolute file path"):
        ls.acquire(path, "alice", "canary", 60)
    with pytest.raises(ls.LeaseError, match="absolute file path"):
        ls.read_lease(path)


def test_naive_now_is_refused(lease_path):
    with pytest.raises(ls.LeaseError, match="timezone-aware"):
        ls.acquire(lease_path, "alice", "canary", 60, now=datetime(2026, 1, 1))


def test_an_unwritable_directory_fails_as_a_lease_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ls.LeaseError, match="cannot take the lease"):
        ls.acquire(str(blocker / "activation.lease"), "alice", "canary", 60)


# --------------------------------------------------------------------------- concurrency


def _contend(path: str, start, results, index: int) -> None:
    start.wait()
    try:
        taken = ls.acquire(path, f"worker{index}", "race", 600)
        results.put(("won", index, taken["token"], taken["stale"] is not None))
    except ls.LeaseHeld as exc:
        results.put(("held", index, exc.lease["token"], False))
    except Exception as exc:  # reported to the test, which fails on it
        results.put(("error", index, repr(exc), False))


def race(path: str, contenders: int = 20) -> list[tuple]:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=_contend, args=(path, start, results, index))
        for index in range(contenders)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


def test_twenty_processes_racing_exactly_one_wins(lease_path):
    outcomes = race(lease_path)
    assert [o for o in outcomes if o[0] == "error"] == []
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1
    winner_token = winners[0][2]
    # Everyone who lost was told the winner's lease, and that lease is the one on disk.
    assert {o[2] for o in outcomes if o[0] == "held"} == {winner_token}
    assert on_disk(lease_path)["token"] == winner_token
    assert leftovers(lease_path) == []


def test_twenty_processes_racing_for_a_stale_lease_exactly_one_takes_it_over(lease_path):
    stale = ls.acquire(lease_path, "dead", "canary", 60, now=T0)
    outcomes = race(lease_path)
    assert [o for o in outcomes if o[0] == "error"] == []
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1 and winners[0][3] is True
    assert {o[2] for o in outcomes if o[0] == "held"} == {winners[0][2]}
    assert on_disk(lease_path)["token"] == winners[0][2] != stale["token"]
    assert leftovers(lease_path) == []


def _churn(path: str, rounds: int) -> None:
    for _ in range(rounds):
        with contextlib.suppress(ls.LeaseHeld):
            ls.release(path, ls.acquire(path, "churn", "race", 600)["token"])


def test_a_reader_never_sees_a_partial_lease(lease_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_churn, args=(lease_path, 150)) for _ in range(3)]
    for writer in writers:
        writer.start()
    seen = {"absent": 0, "lease": 0}
    while any(writer.is_alive() for writer in writers):
        try:
            content = Path(lease_path).read_bytes()
        except FileNotFoundError:
            seen["absent"] += 1
            continue
        assert parse_lease(content)["owner"] == "churn", content
        seen["lease"] += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert seen["lease"] > 0 and seen["absent"] > 0
    assert leftovers(lease_path) == []
