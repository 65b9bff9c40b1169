"""The activation_lock and activation_log modules run for real: one `ansible-playbook -c local`
run from the checkout (its ansible.cfg ships module_utils) on files in tmp_path: the full
acquire/query/release cycle, a stale take-over, appends, check mode, and how tasks fail (the
whole matrix of refusals is in the unit tests). Each task's registered result is collected into
one JSON file per host that the tests below read (one run keeps this fast)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from model_safety.activation import lock as lease
from model_safety.activation import log as activation_log
from tests.local_ansible import ansible

OTHER_TOKEN = "e" * 32
RECORD = {"event": "activation", "model": "patchtst", "weight": 0.1, "sha": "18c7dbb"}
# name, options, message, check mode (check mode validates the same way)
BAD_LOG_TASKS = [
    ("unknown_event", {"record": {"event": "canary"}}, "event must be one of activation", False),
    (
        "nan",
        {"record": {"event": "activation", "weight": "{{ 'nan' | float }}"}},
        "not loggable as JSON",
        True,
    ),
    (
        "writable_mode",
        {"record": {"event": "shadow"}, "mode": "0666"},
        "would let anyone write",
        False,
    ),
    (
        "unknown_group",
        {"record": {"event": "shadow"}, "group": "no-such-group-x"},
        "no such group",
        True,
    ),
]


class Paths:
    """Where the playbook works, under one tmp directory."""

    def __init__(self, root: Path) -> None:
        self.lease = root / "lib" / "activation.lease"
        self.expired = root / "expired.lease"
        self.log = root / "quantum" / "qsc_canary.jsonl"
        self.bad_log = root / "bad.jsonl"
        self.unused_lease = root / "unused" / "activation.lease"
        self.results = root / "results"


def task(name: str, module: str, args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        module: args,
        "register": f"r_{name}",
        "ignore_errors": True,
        "check_mode": check,
    }


def lock_tasks(paths: Paths) -> list[dict[str, Any]]:
    path = str(paths.lease)
    released = {"path": path, "state": "released", "token": "{{ r_taken.token }}"}
    return [
        task("check_acquire", "activation_lock", {"path": path, "owner": "alice"}, check=True),
        task("dir_after_check", "ansible.builtin.stat", {"path": str(paths.lease.parent)}),
        task("taken", "activation_lock", {"path": path, "owner": "alice", "purpose": "canary x"}),
        task("query_held", "activation_lock", {"path": path, "state": "query"}),
        task("refused_check", "activation_lock", {"path": path, "owner": "bob"}, check=True),
        task("refused", "activation_lock", {"path": path, "owner": "bob", "ttl": 60}),
        task("mismatch", "activation_lock", {**released, "token": OTHER_TOKEN}),
        task("check_release", "activation_lock", released, check=True),
        task("released", "activation_lock", released),
        task("released_again", "activation_lock", released),
        task("query_free", "activation_lock", {"path": path, "state": "query"}),
    ]


def lock_option_tasks(paths: Paths) -> list[dict[str, Any]]:
    path = str(paths.unused_lease)
    released = {"path": path, "state": "released"}
    return [
        task("missing_owner", "activation_lock", {"path": path}),
        task("missing_token", "activation_lock", released),
        task("bad_token", "activation_lock", {**released, "token": "x; rm"}),
    ]


def expired_tasks(paths: Paths) -> list[dict[str, Any]]:
    path = str(paths.expired)
    return [
        task("expired_query", "activation_lock", {"path": path, "state": "query"}),
        task("expired_check", "activation_lock", {"path": path, "owner": "bob"}, check=True),
        task("expired_taken", "activation_lock", {"path": path, "owner": "bob"}),
    ]


def log_tasks(paths: Paths) -> list[dict[str, Any]]:
    path = str(paths.log)
    second = {"event": "rollback_executed", "ts": "2026-01-10T12:00:00Z"}
    return [
        task("log_check", "activation_log", {"path": path, "record": RECORD}, check=True),
        task("log_dir_after_check", "ansible.builtin.stat", {"path": str(paths.log.parent)}),
        task(
            "log_written",
            "activation_log",
            {"path": path, "record": RECORD, "group": str(os.getegid())},
        ),
        task("log_second", "activation_log", {"path": path, "record": second}),
    ]


def bad_log_tasks(paths: Paths) -> list[dict[str, Any]]:
    return [
        task(f"bad_{name}", "activation_log", {"path": str(paths.bad_log), **args}, check=check)
        for name, args, _, check in BAD_LOG_TASKS
    ]


# Independent sequences, one per inventory host (all of them localhost) so that the free
# strategy runs them side by side.
SEQUENCES = {
    "lock": lock_tasks,
    "lock_options": lock_option_tasks,
    "expired": expired_tasks,
    "log": log_tasks,
    "bad_log": bad_log_tasks,
}


def block(host: str, tasks: list[dict[str, Any]], results: Path) -> dict[str, Any]:
    """The tasks of one host, then one task writing their registered results to a file."""
    collected = ", ".join(f"{t['name']}=r_{t['name']}" for t in tasks)
    collect = {
        "name": f"collect the results of {host}",
        "ansible.builtin.copy": {
            "dest": str(results / f"{host}.json"),
            "content": f"{{{{ dict({collected}) | to_json }}}}",
        },
    }
    return {"block": [*tasks, collect], "when": f"inventory_hostname == {host!r}"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Paths, dict[str, dict[str, Any]]]:
    paths = Paths(tmp_path_factory.mktemp("lock_log"))
    old = lease.acquire(str(paths.expired), "dead", "canary", 60)["lease"]
    paths.expired.write_text(json.dumps({**old, "expires": "2026-01-01T00:00:00Z"}))
    paths.results.mkdir()
    play = {
        "hosts": "all",
        "gather_facts": False,
        "strategy": "free",
        "tasks": [block(host, make(paths), paths.results) for host, make in SEQUENCES.items()],
    }
    playbook = paths.results.with_name("playbook.json")
    playbook.write_text(json.dumps([play]))
    result = ansible(
        "ansible-playbook",
        "-c",
        "local",
        "-i",
        ",".join(SEQUENCES) + ",",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(playbook),
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    results: dict[str, dict[str, Any]] = {}
    for host in SEQUENCES:
        results.update(json.loads((paths.results / f"{host}.json").read_text()))
    return paths, results


def succeeded(result: dict[str, Any]) -> bool:
    return not result.get("failed", False)


# --------------------------------------------------------------------------- activation_lock


def test_lock_check_mode_acquire_writes_nothing(run):
    _, results = run
    checked = results["check_acquire"]
    assert succeeded(checked) and checked["changed"] is True, checked
    assert checked["token"] is None and checked["lease"] is None and checked["stale"] is None
    assert results["dir_after_check"]["stat"]["exists"] is False


def test_lock_acquire_query_and_refusals(run):
    paths, results = run
    taken = results["taken"]
    assert succeeded(taken) and taken["changed"] is True and taken["stale"] is None, taken
    assert taken["token"] == taken["lease"]["token"]
    assert (taken["lease"]["owner"], taken["lease"]["purpose"]) == ("alice", "canary x")
    assert taken["lease"]["ttl"] == 1800 and taken["mode"] == "0600"

    query = results["query_held"]
    assert succeeded(query) and query["changed"] is False and query["held"] is True
    assert query["lease"] == {**taken["lease"], "expired": False}

    for name in ("refused_check", "refused"):
        refused = results[name]
        assert not succeeded(refused), refused
        assert refused["msg"].startswith(
            f"another activation holds {paths.lease}: held by alice for canary x since "
        )
        assert refused["holder"] == taken["lease"]

    mismatch = results["mismatch"]
    assert not succeeded(mismatch) and "held by alice for canary x" in mismatch["msg"]
    assert mismatch["holder"] == taken["lease"]


def test_lock_release(run):
    paths, results = run
    check = results["check_release"]
    assert succeeded(check) and check["changed"] is True and check["status"] == "released"
    released = results["released"]  # it still had a lease to release: check mode removed none
    assert succeeded(released) and released["changed"] is True
    assert released["status"] == "released"
    again = results["released_again"]
    assert succeeded(again) and again["changed"] is False and again["status"] == "not_held"
    assert not again.get("warnings")
    free = results["query_free"]
    assert succeeded(free) and free["lease"] is None and free["held"] is False
    assert not paths.lease.exists()


def test_lock_takes_over_an_expired_lease(run):
    paths, results = run
    query = results["expired_query"]
    assert succeeded(query) and query["held"] is False and query["lease"]["expired"] is True
    stale = {k: v for k, v in query["lease"].items() if k != "expired"}
    checked = results["expired_check"]
    assert succeeded(checked) and checked["stale"] == stale and checked["token"] is None
    # Taken over from the same stale lease: the check before it changed nothing.
    taken = results["expired_taken"]
    assert succeeded(taken) and taken["stale"] == stale and taken["lease"]["owner"] == "bob"
    assert json.loads(paths.expired.read_text()) == taken["lease"]


def test_lock_refuses_bad_options(run):
    paths, results = run
    expected = {
        "missing_owner": "state is acquired but all of the following are missing: owner",
        "missing_token": "state is released but all of the following are missing: token",
        "bad_token": "not a lease token",
    }
    for name, message in expected.items():
        assert not succeeded(results[name]) and message in results[name]["msg"], results[name]
    assert not paths.unused_lease.parent.exists()


# --------------------------------------------------------------------------- activation_log


def test_log_appends_and_check_mode_writes_nothing(run):
    paths, results = run
    checked = results["log_check"]
    assert succeeded(checked) and checked["changed"] is True, checked
    ts = checked["record"]["ts"]
    seed = {"timestamp": ts, "action": "canary_activated", "canary_model": "patchtst"}
    assert checked["record"] == {"ts": ts, **RECORD, **seed, "canary_weight": 0.1}
    assert json.loads(checked["line"]) == checked["record"]
    assert results["log_dir_after_check"]["stat"]["exists"] is False

    written = results["log_written"]
    assert succeeded(written) and written["changed"] is True and written["created"] is True
    assert written["mode"] == "0640"
    assert stat.S_IMODE(paths.log.stat().st_mode) == 0o640
    second = results["log_second"]
    assert succeeded(second) and second["created"] is False
    assert second["line"] == (
        '{"event":"rollback_executed","ts":"2026-01-10T12:00:00Z",'
        '"timestamp":"2026-01-10T12:00:00Z","action":"rollback_executed"}'
    )
    assert paths.log.read_text() == written["line"] + "\n" + second["line"] + "\n"
    records, problems = activation_log.read_records(str(paths.log))
    assert problems == [] and [r["event"] for r in records] == ["activation", "rollback_executed"]


def test_log_refuses_bad_records_and_options(run):
    paths, results = run
    for name, _, message, _ in BAD_LOG_TASKS:
        result = results[f"bad_{name}"]
        assert not succeeded(result), result
        assert result["msg"].startswith(f"activation log {paths.bad_log}: ")
        assert message in result["msg"], result
    assert not paths.bad_log.exists()
