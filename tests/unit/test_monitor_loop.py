"""The monitor's loop with the playbook runs replaced by fakes (pure unit tests; the real runs
are in tests/integration/test_monitor*_lab.py): a rollback runs beside the other hosts'
checks, is always waited for and recorded, and a monitor restarted while one ran runs it
again."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from model_safety import monitor_loop
from model_safety.monitor import ROLLING_BACK, MonitorSettings
from model_safety.monitor_io import StateStore
from model_safety.monitor_loop import EXIT_ERROR, EXIT_ROLLED_BACK, Monitor, MonitorOptions
from model_safety.playbook_runner import PlaybookRun

MODEL = "patchtst"
INVOCATION = "0123456789abcdef0123456789abcdef"


def probe(check: int, collapsed: bool) -> dict[str, Any]:
    findings = (
        [{"rule": "action_collapse", "value": 0.97, "threshold": 0.7, "text": "BUY 97% > 70%"}]
        if collapsed
        else []
    )
    return {
        "service": {"running": True, "invocation_id": INVOCATION, "n_restarts": 0},
        "config": {"canary": MODEL, "canary_weight": 0.1},
        "activation": {
            "event": "activation",
            "invocation_id": INVOCATION,
            "started_at": "2026-01-10T12:00:00.000Z",
            "weight": 0.1,
        },
        "gate": {
            "event_count": 500,
            "min_events": 200,
            "malformed": 0,
            "window": {"last_id": f"{1_767_000_000_000 + check}-0"},
            "models": {MODEL: {"findings": findings, "agreement": 0.7, "hard_disagree": 0.05}},
        },
    }


class FakeJob:
    """A rollback run that ends when the test says so."""

    started: ClassVar[list[FakeJob]] = []

    def __init__(self, project_dir: str, playbook: str, **options: Any) -> None:
        self.playbook = playbook
        self.options = options
        self.finished = threading.Event()
        self.hosts = options["limit"].split(",")
        FakeJob.started.append(self)

    def done(self) -> bool:
        return self.finished.is_set()

    def wait(self) -> PlaybookRun:
        assert self.finished.wait(10), "the test never finished the rollback"
        return PlaybookRun(
            ident="rollback-x",
            status="successful",
            rc=0,
            stats={"ok": dict.fromkeys(self.hosts, 5), "failures": {}, "dark": {}},
        )


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Checks: host a collapses from its first check, b stays healthy; every check is
    recorded with the hosts it probed and whether a rollback was pending then."""
    FakeJob.started = []
    seen: dict[str, Any] = {"checks": []}

    def run_playbook(project_dir: str, playbook: str, **options: Any) -> PlaybookRun:
        hosts = options["limit"].split(",")
        pending = bool(FakeJob.started) and not FakeJob.started[-1].done()
        seen["checks"].append((hosts, pending))
        number = len(seen["checks"])
        results = {host: {"canary_probe": probe(number, host == "a")} for host in hosts}
        return PlaybookRun(ident=f"check-{number}", status="successful", rc=0, results=results)

    monkeypatch.setattr(monitor_loop, "run_playbook", run_playbook)
    monkeypatch.setattr(monitor_loop, "PlaybookJob", FakeJob)
    monkeypatch.setattr(monitor_loop, "resolve_hosts", lambda inventory, limit: ["a", "b"])
    return seen


def options(tmp_path: Path, duration: float = 0.6) -> MonitorOptions:
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True, exist_ok=True)
    for name in ("monitor_check.yml", "rollback.yml"):
        (project / "playbooks" / name).write_text("---\n[]\n")
    settings = MonitorSettings(model=MODEL, duration_s=duration, interval_s=0.05, persist_checks=1)
    return MonitorOptions(
        settings=settings,
        project_dir=str(project),
        state_dir=str(tmp_path / "state"),
        activation_log=str(tmp_path / "activation.jsonl"),
        check_log=str(tmp_path / "checks.jsonl"),
    )


def events(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "activation.jsonl").read_text().splitlines()
    return [(record["event"], record["host"]) for record in map(json.loads, lines)]


def run_in_thread(monitor: Monitor) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(monitor.run()))
    thread.start()
    return thread, codes


def test_a_rollback_runs_beside_the_checks_of_the_other_hosts(tmp_path, fakes):
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
    beside = [hosts for hosts, pending in fakes["checks"] if pending]
    assert beside and all(hosts == ["b"] for hosts in beside)
    assert events(tmp_path) == [
        ("monitoring_started", "a"),
        ("monitoring_started", "b"),
        ("violation", "a"),
        ("rollback_executed", "a"),
        ("monitoring_completed", "b"),
    ]


def test_a_stopped_monitor_still_waits_for_its_rollback_and_records_it(tmp_path, fakes):
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


def test_a_monitor_restarted_during_a_rollback_runs_it_again(tmp_path, fakes):
    store = StateStore(str(tmp_path / "state"))
    first = Monitor(options(tmp_path, duration=30), out=lambda line: None)
    assert first._prepare() is None
    first.locks.release()
    interrupted = dict(first.states["a"])
    violation = {"rule": "action_collapse", "value": 0.97, "threshold": 0.7, "text": "t"}
    interrupted.update(status=ROLLING_BACK, pending_violations=[violation], rollback_id="feedbeef")
    store.save(interrupted)

    second = Monitor(options(tmp_path, duration=0.3), out=lambda line: None)
    threading.Timer(0.1, lambda: FakeJob.started[0].finished.set()).start()
    code = second.run()

    assert code == EXIT_ROLLED_BACK
    (job,) = FakeJob.started
    assert job.hosts == ["a"]
    # The same rollback, under its id: the lease its interrupted attempt left is its own.
    assert job.options["extravars"]["reason"] == "monitor feedbeef: a action_collapse"
    assert job.options["extravars"]["cycle"] == "always"
    rollbacks = [
        json.loads(line)
        for line in (tmp_path / "activation.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "rollback_executed"
    ]
    assert [(r["host"], r["violation_details"]) for r in rollbacks] == [("a", [violation])]
    assert [(r["violations"], r["trigger"]) for r in rollbacks] == [
        (["t"], "monitor feedbeef: a action_collapse")
    ]
    assert store.load("a", MODEL)["status"] == "rolled_back"


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


def test_a_rollback_refused_for_a_held_lease_is_tried_again(tmp_path, fakes, monkeypatch):
    monkeypatch.setattr(monitor_loop, "PlaybookJob", LeaseHeldOnceJob)
    monkeypatch.setattr(monitor_loop, "ROLLBACK_RETRY_S", 0.1)
    monitor = Monitor(options(tmp_path), out=lambda line: None)

    code = run_finishing_the_second_rollback(monitor)

    assert code == EXIT_ROLLED_BACK
    assert [job.hosts for job in FakeJob.started] == [["a"], ["a"]]
    # Another activation's lease is waited for, never broken.
    assert [job.options["extravars"]["break_lock"] for job in FakeJob.started] == [False, False]
    assert events(tmp_path).count(("rollback_executed", "a")) == 1
    checks = [json.loads(line) for line in (tmp_path / "checks.jsonl").read_text().splitlines()]
    assert [c["attempt"] for c in checks if "rollback_retry" in c] == [1]


def test_the_lease_of_its_own_interrupted_rollback_is_taken_over(tmp_path, fakes, monkeypatch):
    class OwnLeaseJob(LeaseHeldOnceJob):
        @property
        def holder(self) -> str:
            return "rollback: " + FakeJob.started[0].options["extravars"]["reason"]

    monkeypatch.setattr(monitor_loop, "PlaybookJob", OwnLeaseJob)
    monitor = Monitor(options(tmp_path), out=lambda line: None)

    code = run_finishing_the_second_rollback(monitor)

    assert code == EXIT_ROLLED_BACK
    first, second = (job.options["extravars"] for job in FakeJob.started)
    assert (first["break_lock"], second["break_lock"]) == (False, True)
    assert (first["cycle"], second["cycle"]) == ("changed", "always")
    assert first["reason"] == second["reason"]
