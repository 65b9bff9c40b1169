"""The activation_lock module through its main(): its options refused with their messages, the
lease taken, held, renewed and released in a real directory, and check mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_harness import fails, succeeds

MODULE = "activation_lock"
OTHER_TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def lease(tmp_path: Path) -> str:
    """Where the lease lives (its directory exists, the lease does not yet)."""
    return str(tmp_path / "lease" / "activation.lease")


def take(lease: str, **args) -> dict:
    return succeeds(MODULE, {"path": lease, "owner": "alice@ops1", **args})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "state is acquired but all of the following are missing: owner"),
        ({"state": "released"}, "state is released but all of the following are missing: token"),
        ({"state": "renewed"}, "state is renewed but all of the following are missing: token"),
        ({"state": "stolen", "owner": "a"}, "value of state must be one of: acquired, released,"),
        ({"owner": "a", "ttl": "soon"}, "argument 'ttl' is of type"),
        ({"state": "query", "force": True}, "force breaks a held lease, only with state=acquired"),
    ],
)
def test_bad_options_are_refused_by_their_spec(lease, args, message) -> None:
    assert message in fails(MODULE, {"path": lease, **args})["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"owner": "alice\nrm -rf /"}, "owner must be a non-empty printable string"),
        ({"owner": "x" * 201}, "owner must be a non-empty printable string"),
        ({"owner": "alice", "ttl": 0}, "ttl must be an integer in 1..86400 seconds: 0"),
        ({"owner": "alice", "ttl": 86401}, "ttl must be an integer in 1..86400 seconds: 86401"),
        ({"owner": "alice", "purpose": " \t "}, "purpose must not be blank"),
        ({"state": "released", "token": "../../etc/passwd"}, "not a lease token"),
        ({"state": "renewed", "token": OTHER_TOKEN.upper()}, "not a lease token"),
    ],
)
def test_hostile_values_are_refused_and_nothing_is_written(lease, args, message) -> None:
    result = fails(MODULE, {"path": lease, **args})
    assert message in result["msg"]
    assert result["msg"].startswith(f"activation lease {lease}: ")
    assert not Path(lease).exists()


@pytest.mark.parametrize("path", ["relative/activation.lease", "/var/lib/../tmp/x/"])
def test_the_lease_path_must_be_an_absolute_file_path(path) -> None:
    result = fails(MODULE, {"path": path, "owner": "alice"})
    assert "the lease path must be" in result["msg"]


def test_acquire_then_held_then_release(lease) -> None:
    taken = take(lease, purpose="canary\npatchtst", ttl=60)
    assert taken["changed"] and taken["stale"] is None and taken["broken"] is None
    assert taken["lease"]["purpose"] == "canary patchtst"  # a newline becomes a space
    assert json.loads(Path(lease).read_text())["token"] == taken["token"]
    assert Path(lease).stat().st_mode & 0o777 == 0o600

    held = fails(MODULE, {"path": lease, "owner": "bob"})
    assert held["msg"].startswith(f"another activation holds {lease}: held by alice@ops1")
    assert held["holder"]["token"] == taken["token"]

    query = succeeds(MODULE, {"path": lease, "state": "query"})
    assert (query["changed"], query["held"], query["lease"]["expired"]) == (False, True, False)

    renewed = succeeds(MODULE, {"path": lease, "state": "renewed", "token": taken["token"]})
    assert renewed["changed"] and renewed["lease"]["ttl"] == 1800

    other = fails(MODULE, {"path": lease, "state": "released", "token": OTHER_TOKEN})
    assert other["holder"]["token"] == taken["token"] and Path(lease).exists()

    released = succeeds(MODULE, {"path": lease, "state": "released", "token": taken["token"]})
    assert (released["changed"], released["status"]) == (True, "released")
    again = succeeds(MODULE, {"path": lease, "state": "released", "token": taken["token"]})
    assert (again["changed"], again["status"]) == (False, "not_held")


def test_force_breaks_a_held_lease(lease) -> None:
    first = take(lease)
    forced = take(lease, force=True, purpose="rollback")
    assert forced["broken"]["token"] == first["token"]
    assert forced["token"] != first["token"]


def test_renewing_a_lease_that_is_gone_fails(lease) -> None:
    Path(lease).parent.mkdir()
    result = fails(MODULE, {"path": lease, "state": "renewed", "token": OTHER_TOKEN})
    assert "is gone: this activation no longer holds the lease" in result["msg"]


def test_check_mode_reports_and_takes_nothing(lease) -> None:
    Path(lease).parent.mkdir()
    checked = succeeds(MODULE, {"path": lease, "owner": "alice"}, check_mode=True)
    assert (checked["changed"], checked["token"], checked["lease"]) == (True, None, None)
    assert list(Path(lease).parent.iterdir()) == []

    taken = take(lease)
    before = Path(lease).read_bytes()
    held = fails(MODULE, {"path": lease, "owner": "bob"}, check_mode=True)
    assert held["holder"]["token"] == taken["token"]
    args = {"path": lease, "state": "released", "token": taken["token"]}
    would = succeeds(MODULE, args, check_mode=True)
    assert (would["changed"], would["status"]) == (True, "released")
    assert Path(lease).read_bytes() == before
