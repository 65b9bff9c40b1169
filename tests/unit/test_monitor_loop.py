"""The monitor's loop with the playbook runs replaced by fakes (pure unit tests; the real runs
are in tests/integration/test_monitor_command.py, test_monitor_slow.py and
test_monitor_faults.py): the checks carry observation rows as
canary_probe returns them, a rollback runs beside the other hosts' checks, is always waited for
and recorded, a monitor restarted while one ran runs it again, a pooled violation rolls back
every host of the canary, the monitor's records reach each host's own log (with the next check,
or ``monitor_record.yml``), and the watch ends safe (0) or inconclusive (5)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from model_safety.monitor import loop as monitor_loop
from model_safety.monitor import rollbacks as monitor_rollbacks
from model_safety.monitor.loop import (
    EXIT_ERROR,
    EXIT_INCONCLUSIVE,
    EXIT_ROLLED_BACK,
    EXIT_SAFE,
    Monitor,
)
from model_safety.monitor.settings import ROLLING_BACK, MonitorOptions, MonitorSettings
from model_safety.monitor.store import StateStore
from model_safety.playbook_runner import PlaybookRun
from model_safety.telemetry.events import BUY
from tests.monitor_events import T0_MS, class_rows, healthy_rows

MODEL = "patchtst"
INVOCATION = "0123456789abcdef0123456789abcdef"
# How a host's canary behaves: the rows of its check number ``n`` (None: no probe result).
Behaviour = Callable[[int, int], list[list[Any]] | None]


def healthy(per_check: int) -> Behaviour:
    def rows(number: int, offset: int) -> list[list[Any]]:
        rng = np.random.default_rng(1000 * number + offset)
        return spaced(healthy_rows(rng, per_check), number, offset)

    return rows


def collapsed(per_check: int) -> Behaviour:
    def rows(number: int, offset: int) -> list[list[Any]]:
        rng = np.random.default_rng(1000 * number + offset)
        return spaced(class_rows(rng, per_check, BUY), number, offset)

    return rows


def spaced(rows: list[list[Any]], number: int, offset: int) -> list[list[Any]]:
    """Check ``number``'s rows, 10 ms apart, the hosts' events alternating in time."""
    base = T0_MS + number * 1_000_000
    return [[base + 10 * i + offset, *row[1:]] for i, row in enumerate(rows)]


def probe(rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "service": {"running": True, "invocation_id": INVOCATION, "n_restarts": 0},
        "config": {"canary": MODEL, "canary_weight": 0.1},
        "activation": {
            "event": "activation",
            "invocation_id": INVOCATION,
            "started_at": "2026-01-10T12:00:00.000Z",
            "weight": 0.1,
        },
        "after": "2026-01-10T12:00:00.000Z",
        "observations": {
            "rows": rows,
            "malformed": 0,
            "first_id": f"{rows[0][0]}-0" if rows else None,
            "last_id": f"{rows[-1][0]}-0" if rows else None,
        },
        "newest_id": f"{rows[-1][0]}-0" if rows else None,
        "silence_s": 0.5,
        "rate": {"rate_per_s": 10.0, "rate_events": 50, "rate_since": None},
        "attempts": 1,
    }


class FakeJob:
    """A rollback run that ends when the test says so (at once with ``auto``)."""

    started: ClassVar[list[FakeJob]] = []
    auto: ClassVar[bool] = False

    def __init__(self, project_dir: str, playbook: str, **options: Any) -> None:
        self.playbook = playbook
        self.options = options
        self.finished = threading.Event()
        if FakeJob.auto:
            self.finished.set()
        self.hosts = options["limit"].split(",")
        FakeJob.started.append(self)

    def done(self) -> bool:
        return self.finished.is_set()

    def wait(self) -> PlaybookRun:
        return self.ended()

    def ended(self, failures: dict[str, str] | None = None) -> PlaybookRun:
        """The rollback run once the test finished it: failed on the hosts in ``failures``."""
        assert self.finished.wait(10), "the test never finished the rollback"
        failures = failures or {}
        return PlaybookRun(
            ident="rollback-x",
            status="failed" if failures else "successful",
            rc=2 if failures else 0,
            failures=failures,
            stats={
                "ok": dict.fromkeys(self.hosts, 5),
                "failures": dict.fromkeys(failures, 1),
                "dark": {},
            },
        )


class Fleet:
    """The hosts' behaviours and what the fake playbook runs were given."""

    def __init__(self) -> None:
        self.behaviour: dict[str, Behaviour] = {"a": collapsed(40), "b": healthy(40)}
        self.checks: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.record_failures = 0  # the first N monitor_record.yml runs fail

    def hosts(self) -> list[str]:
        return list(self.behaviour)

    def run_playbook(self, project_dir: str, playbook: str, **options: Any) -> PlaybookRun:
        hosts = options["limit"].split(",")
        extravars = options["extravars"]
        if playbook == "monitor_record.yml":
            assert set(extravars["monitor_records"]) == set(hosts)
            self.records.append({"hosts": hosts, "records": extravars["monitor_records"]})
            if self.record_failures:
                self.record_failures -= 1
                return PlaybookRun(
                    ident="records-x", status="failed", rc=2, failures=dict.fromkeys(hosts, "x")
                )
            return PlaybookRun(
                ident=f"records-{len(self.records)}",
                status="successful",
                rc=0,
                stats={"ok": dict.fromkeys(hosts, 2), "failures": {}, "dark": {}},
            )
        assert playbook == "monitor_check.yml", playbook
        assert options["collect"] == ("canary_probe",)
        pending = bool(FakeJob.started) and not FakeJob.started[-1].done()
        number = len(self.checks) + 1
        self.checks.append({"hosts": hosts, "pending": pending, "extravars": extravars})
        results = {}
        for offset, host in enumerate(self.hosts()):
            if host in hosts:
                rows = self.behaviour[host](number, offset)
                if rows is not None:
                    results[host] = {"canary_probe": probe(rows)}
        failures = {host: "unreachable: timed out" for host in hosts if host not in results}
        return PlaybookRun(
            ident=f"check-{number}",
            status="successful" if not failures else "failed",
            rc=0 if not failures else 4,
            results=results,
            failures=failures,
        )


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """Checks: host a collapses from its first check, b stays healthy (unless a test changes
    the behaviours); every playbook run is recorded with what it was given."""
    return fake_fleet(monkeypatch)


def fake_fleet(monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """The :func:`fleet` fixture's fakes in place (other tests run the monitor with them)."""
    FakeJob.started = []
    FakeJob.auto = False
    fake = Fleet()
    monkeypatch.setattr(monitor_loop, "run_playbook", fake.run_playbook)
    monkeypatch.setattr(monitor_rollbacks, "PlaybookJob", FakeJob)
    monkeypatch.setattr(monitor_loop, "resolve_hosts", lambda inventory, limit: fake.hosts())
    return fake


def options(tmp_path: Path, duration: float = 0.6, **settings: Any) -> MonitorOptions:
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True, exist_ok=True)
    for name in ("monitor_check.yml", "monitor_record.yml", "rollback.yml"):
        (project / "playbooks" / name).write_text("---\n[]\n")
    return MonitorOptions(
        settings=MonitorSettings(model=MODEL, duration_s=duration, interval_s=0.05, **settings),
        project_dir=str(project),
        state_dir=str(tmp_path / "state"),
        activation_log=str(tmp_path / "activation.jsonl"),
        check_log=str(tmp_path / "checks.jsonl"),
    )


def records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "activation.jsonl").read_text().splitlines()]


def events(tmp_path: Path) -> list[tuple[str, str]]:
    return [(record["event"], record["host"]) for record in records(tmp_path)]


def check_log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "checks.jsonl").read_text().splitlines()]


def test_a_rollback_runs_beside_the_checks_of_the_other_hosts(tmp_path, fleet):
    monitor = Monitor(options(tmp_path), out=lambda line: None)
    # The signal handlers are the main thread's; run() in the main thread, the rollback ends
    # from a timer once a few checks of b have run beside it.
    timer = threading.Timer(0.3, lambda: FakeJob.started[0].finished.set())
    timer.start()
    try:
        code = monitor.run()
    finally:
        timer.cancel()

    assert code == EXIT_ROLLED_BACK
    (job,) = FakeJob.started
    assert job.playbook == "rollback.yml" and job.hosts == ["a"]
    reason = job.options["extravars"]["reason"]
    assert re.fullmatch(r"monitor [0-9a-f]{8}: a action_collapse", reason), reason
    assert job.options["extravars"]["break_lock"] is False
    assert job.options["extravars"]["cycle"] == "changed"
    # a was decided on its first check's 40 events
    assert fleet.checks[0]["hosts"] == ["a", "b"]
    beside = [check["hosts"] for check in fleet.checks if check["pending"]]
    assert beside and all(hosts == ["b"] for hosts in beside)
    assert events(tmp_path) == [
        ("monitoring_started", "a"),
        ("monitoring_started", "b"),
        ("violation", "a"),
        ("rollback_executed", "a"),
        ("monitoring_completed", "b"),
    ]
    violation = records(tmp_path)[2]
    assert (violation["rule"], violation["detector"], violation["scope"]) == (
        "action_collapse",
        "action_collapse:BUY",
        "host",
    )
    assert violation["text"].startswith("Action collapse: BUY=100.0% (>70%) over the last")
    completed = records(tmp_path)[-1]
    assert completed["result"] == "safe" and completed["missing"] == []


def test_records_reach_the_hosts_logs(tmp_path, fleet):
    FakeJob.auto = True
    code = Monitor(options(tmp_path), out=lambda line: None).run()
    assert code == EXIT_ROLLED_BACK

    # monitoring_started goes with the first check, to be appended before the probe runs ...
    first = fleet.checks[0]["extravars"]
    assert first["monitor_model"] == MODEL and first["monitor_window_events"] == 1000
    assert first["monitor_after"] == {"a": "", "b": ""}
    sent = first["monitor_records"]
    assert sorted(sent) == ["a", "b"]
    for host in ("a", "b"):
        (record,) = sent[host]
        assert (record["event"], record["host"], record["model"]) == (
            "monitoring_started",
            host,
            MODEL,
        )
        assert record["source"] == "model-safety monitor" and record["resumed"] is False
    # ... and once a probe has run (its records written), never again.
    second = fleet.checks[1]["extravars"]
    assert second["monitor_records"] == {"b": []}
    assert second["monitor_after"]["b"] == f"{T0_MS + 1_000_000 + 10 * 39 + 1}-0"
    # The violation goes to a's log as its rollback starts, the end of the watch to b's.
    assert [run["hosts"] for run in fleet.records] == [["a"], ["b"]]
    (violation,) = fleet.records[0]["records"]["a"]
    assert (violation["event"], violation["rule"], violation["check"]) == (
        "violation",
        "action_collapse",
        1,
    )
    (completed,) = fleet.records[1]["records"]["b"]
    assert (completed["event"], completed["result"], completed["missing"]) == (
        "monitoring_completed",
        "safe",
        [],
    )
    assert completed["checks"] == len(fleet.checks)
    # rollback.yml writes its own rollback_executed on the host: the monitor does not send it.
    sent_events = [
        r["event"] for run in fleet.records for rs in run["records"].values() for r in rs
    ]
    assert "rollback_executed" not in sent_events


def test_records_that_could_not_be_written_are_sent_again(tmp_path, fleet):
    # b's first probe fails: its monitoring_started goes with the next check again. The
    # first records run fails: its records go with the next one.
    answers = iter([None])
    good = healthy(40)
    fleet.behaviour = {"b": lambda n, o: next(answers, None) if n == 1 else good(n, o)}
    fleet.record_failures = 1
    code = Monitor(options(tmp_path, duration=0.4), out=lambda line: None).run()
    assert code == EXIT_SAFE
    assert [c["extravars"]["monitor_records"]["b"][0]["event"] for c in fleet.checks[:2]] == [
        "monitoring_started",
        "monitoring_started",
    ]
    assert fleet.checks[2]["extravars"]["monitor_records"] == {"b": []}
    assert [run["hosts"] for run in fleet.records] == [["b"], ["b"]]
    assert fleet.records[0]["records"] == fleet.records[1]["records"]
    errors = [line for line in check_log(tmp_path) if "host_records_error" in line]
    assert [e["host_records_error"] for e in errors] == ["b"]


def test_a_pooled_violation_rolls_back_every_host_of_the_canary(tmp_path, fleet):
    # Three hosts, 2 collapsed events each per check: no host alone has the evidence before
    # the pool of all three does.
    fleet.behaviour = {host: collapsed(2) for host in ("a", "b", "c")}
    FakeJob.auto = True
    code = Monitor(options(tmp_path, duration=30), out=lambda line: None).run()
    assert code == EXIT_ROLLED_BACK
    (job,) = FakeJob.started
    assert job.hosts == ["a", "b", "c"]
    assert re.fullmatch(
        r"monitor [0-9a-f]{8}: a action_collapse; b action_collapse; c action_collapse",
        job.options["extravars"]["reason"],
    )
    assert len(fleet.checks) <= 7  # about 30 pooled events: 5 checks of 6
    found = records(tmp_path)
    violations = [r for r in found if r["event"] == "violation"]
    assert [v["host"] for v in violations] == ["a", "b", "c"]
    assert {v["scope"] for v in violations} == {"pooled over 3 hosts"}
    assert all(v["text"].endswith("(pooled over 3 hosts)") for v in violations)
    rolled = [r for r in found if r["event"] == "rollback_executed"]
    assert [(r["host"], r["result"]) for r in rolled] == [
        ("a", "rolled_back"),
        ("b", "rolled_back"),
        ("c", "rolled_back"),
    ]
    pool = StateStore(str(tmp_path / "state")).load("_pool", MODEL)
    assert pool["hosts"] == ["a", "b", "c"] and len(pool["decided"]) == 1
    # every host's own detectors saw its few events only
    for host in ("a", "b", "c"):
        state = StateStore(str(tmp_path / "state")).load(host, MODEL)
        assert state["status"] == "rolled_back"
        assert state["events"] <= 14 and state["detectors"]["alpha"] == pytest.approx(0.01 / 6)


def watch_to_the_end(tmp_path, fleet, per_check: int) -> tuple[int, list[str], list[dict]]:
    """Hosts a and b healthy with ``per_check`` events a check, watched for 0.3 s: the exit
    code, the output lines and the ``monitoring_completed`` records."""
    fleet.behaviour = {"a": healthy(per_check), "b": healthy(per_check)}
    lines: list[str] = []
    code = Monitor(options(tmp_path, duration=0.3), out=lines.append).run()
    return code, lines, [r for r in records(tmp_path) if r["event"] == "monitoring_completed"]


def test_a_watch_with_too_few_events_ends_inconclusive_exit_5(tmp_path, fleet):
    code, lines, completed = watch_to_the_end(tmp_path, fleet, 1)
    assert code == EXIT_INCONCLUSIVE
    assert [(r["host"], r["result"]) for r in completed] == [
        ("a", "inconclusive"),
        ("b", "inconclusive"),
    ]
    for record in completed:
        assert any(
            m.startswith("model_inactive: no prediction rate 0.0% over ") for m in record["missing"]
        )
        assert record["window_events"] == len(fleet.checks)
        assert record["bounds"][0]["detector"] == "action_collapse:BUY"
    assert any("completed INCONCLUSIVE (not proven safe): " in line for line in lines)
    for host in ("a", "b"):
        assert StateStore(str(tmp_path / "state")).load(host, MODEL)["status"] == "inconclusive"
    # the hosts' logs are told
    (run,) = fleet.records
    assert [r["result"] for rs in run["records"].values() for r in rs] == ["inconclusive"] * 2
    assert FakeJob.started == []


def test_a_watch_with_enough_healthy_events_ends_safe_exit_0(tmp_path, fleet):
    code, lines, completed = watch_to_the_end(tmp_path, fleet, 150)
    assert code == EXIT_SAFE
    assert [(r["host"], r["result"], r["missing"]) for r in completed] == [
        ("a", "safe", []),
        ("b", "safe", []),
    ]
    assert sum("completed SAFE: " in line for line in lines) == 2
    assert FakeJob.started == []


def test_a_stopped_monitor_still_waits_for_its_rollback_and_records_it(tmp_path, fleet):
    monitor = Monitor(options(tmp_path, duration=30), out=lambda line: None)

    def stop_then_finish() -> None:
        monitor.stopping = True
        threading.Timer(0.2, lambda: FakeJob.started[0].finished.set()).start()

    timer = threading.Timer(0.2, stop_then_finish)
    timer.start()
    code = monitor.run()

    assert code == EXIT_ERROR
    assert ("rollback_executed", "a") in events(tmp_path)
    state = StateStore(str(tmp_path / "state")).load("a", MODEL)
    assert state is not None and state["status"] == "rolled_back"
    assert StateStore(str(tmp_path / "state")).load("b", MODEL)["status"] == "monitoring"


def test_a_monitor_restarted_during_a_rollback_runs_it_again(tmp_path, fleet):
    store = StateStore(str(tmp_path / "state"))
    first = Monitor(options(tmp_path, duration=30), out=lambda line: None)
    assert first._prepare() is None
    first.locks.release()
    interrupted = dict(first.states["a"])
    violation = {"rule": "action_collapse", "value": 0.97, "threshold": 0.7, "text": "t"}
    interrupted.update(status=ROLLING_BACK, pending_violations=[violation], rollback_id="feedbeef")
    store.save(interrupted)

    fleet.behaviour["b"] = healthy(150)
    second = Monitor(options(tmp_path, duration=0.3), out=lambda line: None)
    threading.Timer(0.1, lambda: FakeJob.started[0].finished.set()).start()
    code = second.run()

    assert code == EXIT_ROLLED_BACK
    (job,) = FakeJob.started
    assert job.hosts == ["a"]
    # The same rollback, under its id: the lease its interrupted attempt left is its own.
    assert job.options["extravars"]["reason"] == "monitor feedbeef: a action_collapse"
    assert job.options["extravars"]["cycle"] == "always"
    rollbacks = [r for r in records(tmp_path) if r["event"] == "rollback_executed"]
    assert [(r["host"], r["violation_details"]) for r in rollbacks] == [("a", [violation])]
    assert [(r["violations"], r["trigger"]) for r in rollbacks] == [
        (["t"], "monitor feedbeef: a action_collapse")
    ]
    assert store.load("a", MODEL)["status"] == "rolled_back"
    assert all(check["hosts"] == ["b"] for check in fleet.checks)


class OneHostFailsJob(FakeJob):
    """A rollback run of several hosts in which host ``a`` fails: the run fails, the others
    ran to their end."""

    def wait(self) -> PlaybookRun:
        return self.ended({"a": "rollback of a failed at Restore"})


def test_two_interrupted_rollbacks_run_again_each_under_its_own_id(tmp_path, fleet, monkeypatch):
    fleet.behaviour = {"a": healthy(40), "b": healthy(40), "c": healthy(150)}
    store = StateStore(str(tmp_path / "state"))
    first = Monitor(options(tmp_path, duration=30), out=lambda line: None)
    assert first._prepare() is None
    first.locks.release()
    violation = {"rule": "action_collapse", "value": 0.97, "threshold": 0.7, "text": "t"}
    for host, rollback_id in (("a", "aaaa1111"), ("b", "bbbb2222")):
        interrupted = dict(first.states[host])
        interrupted.update(
            status=ROLLING_BACK, pending_violations=[violation], rollback_id=rollback_id
        )
        store.save(interrupted)

    FakeJob.auto = True
    monkeypatch.setattr(monitor_rollbacks, "PlaybookJob", OneHostFailsJob)
    second = Monitor(options(tmp_path, duration=0.3), out=lambda line: None)
    code = second.run()

    # Two runs, each named by its own id (the lease each interrupted attempt left is its own).
    reasons = sorted(job.options["extravars"]["reason"] for job in FakeJob.started)
    assert reasons == ["monitor aaaa1111: a action_collapse", "monitor bbbb2222: b action_collapse"]
    # a's run failed; b's host ran its rollback to the end in a failed run: b is proven.
    assert store.load("a", MODEL)["status"] == "rollback_failed"
    assert store.load("b", MODEL)["status"] == "rolled_back"
    assert code == EXIT_ERROR


class LeaseHeldOnceJob(FakeJob):
    """The first rollback finds the lease held by ``holder``; later ones work."""

    holder = "promotion patchtst"

    def wait(self) -> PlaybookRun:
        if len(FakeJob.started) == 1:
            message = (
                "another activation holds /var/lib/model-safety/activation.lease: held by ops "
                f"for {self.holder} since 2026-01-10T12:00:00Z"
            )
            return PlaybookRun(
                ident="rollback-1",
                status="failed",
                rc=2,
                failures={"a": message},
                stats={"ok": {"a": 1}, "failures": {"a": 1}, "dark": {}},
            )
        return super().wait()

    def done(self) -> bool:
        return len(FakeJob.started) == 1 or super().done()


def run_finishing_the_second_rollback(monitor: Monitor) -> int:
    """monitor.run(), with the second rollback attempt ending as soon as it has started."""

    def finish_the_retry() -> None:
        while len(FakeJob.started) < 2:
            threading.Event().wait(0.02)
        FakeJob.started[1].finished.set()

    helper = threading.Thread(target=finish_the_retry)
    helper.start()
    code = monitor.run()
    helper.join(5)
    return code


def test_a_rollback_refused_for_a_held_lease_is_tried_again(tmp_path, fleet, monkeypatch):
    monkeypatch.setattr(monitor_rollbacks, "PlaybookJob", LeaseHeldOnceJob)
    monkeypatch.setattr(monitor_rollbacks, "ROLLBACK_RETRY_S", 0.1)
    monitor = Monitor(options(tmp_path), out=lambda line: None)

    code = run_finishing_the_second_rollback(monitor)

    assert code == EXIT_ROLLED_BACK
    assert [job.hosts for job in FakeJob.started] == [["a"], ["a"]]
    # Another activation's lease is waited for, never broken.
    assert [job.options["extravars"]["break_lock"] for job in FakeJob.started] == [False, False]
    assert events(tmp_path).count(("rollback_executed", "a")) == 1
    assert [c["attempt"] for c in check_log(tmp_path) if "rollback_retry" in c] == [1]


def test_the_lease_of_its_own_interrupted_rollback_is_taken_over(tmp_path, fleet, monkeypatch):
    class OwnLeaseJob(LeaseHeldOnceJob):
        @property
        def holder(self) -> str:
            return "rollback: " + FakeJob.started[0].options["extravars"]["reason"]

    monkeypatch.setattr(monitor_rollbacks, "PlaybookJob", OwnLeaseJob)
    monitor = Monitor(options(tmp_path), out=lambda line: None)

    code = run_finishing_the_second_rollback(monitor)

    assert code == EXIT_ROLLED_BACK
    first, second = (job.options["extravars"] for job in FakeJob.started)
    assert (first["break_lock"], second["break_lock"]) == (False, True)
    assert (first["cycle"], second["cycle"]) == ("changed", "always")
    assert first["reason"] == second["reason"]
