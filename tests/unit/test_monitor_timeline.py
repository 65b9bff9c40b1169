"""``model-safety monitor-timeline``: the page of a check log the monitor itself wrote (its
loop with the playbook runs faked as in test_monitor_loop): a host rolled back beside one
that completed, a production-rate watch whose checks mostly read nothing, a log's earlier
watches and rotated backups, malformed lines, hostile names, and the exit-2 cases."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from model_safety.cli import main
from model_safety.monitor import rollbacks as monitor_rollbacks
from model_safety.monitor.loop import EXIT_INCONCLUSIVE, EXIT_SAFE, Monitor
from model_safety.monitor.store import check_logger, log_check
from model_safety.monitor.timeline import read_timeline
from model_safety.monitor.timeline_page import render_timeline

from .test_monitor_loop import FakeJob, Fleet, OneHostFailsJob, fake_fleet, healthy, options


def watched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rollback_job: type[FakeJob] = FakeJob,
    **behaviour: Any,
) -> Path:
    """Run the monitor over the fake fleet (default: a collapses, b stays healthy; rollbacks
    end at once, as ``rollback_job`` has them); its check log."""
    fleet: Fleet = fake_fleet(monkeypatch)
    monkeypatch.setattr(monitor_rollbacks, "PlaybookJob", rollback_job)
    if behaviour:
        fleet.behaviour = behaviour
    FakeJob.auto = True
    Monitor(options(tmp_path, duration=0.4), out=lambda line: None).run()
    return tmp_path / "checks.jsonl"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The check log of one watch of the default fleet (a rolled back, b completed), shared by
    the tests that only read it."""
    with pytest.MonkeyPatch.context() as patch:
        return watched(tmp_path_factory.mktemp("watch"), patch)


def timeline_cli(*args: str) -> int:
    return main(["monitor-timeline", *args])


def text_of(page: str) -> str:
    """The page's text without its SVG charts."""
    return re.sub(r"<svg.*?</svg>", "", page, flags=re.S)


def test_a_rolled_back_host_beside_a_completed_one(monitored, tmp_path, capsys):
    log = monitored
    out = tmp_path / "pages" / "timeline.html"
    out.parent.mkdir()

    assert timeline_cli("--check-log", str(log), "--html", str(out)) == 0

    printed = capsys.readouterr().out
    assert "MONITOR TIMELINE of patchtst written to" in printed
    assert "a rolled back, b completed; 0 malformed lines skipped" in printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in out.parent.iterdir()] == ["timeline.html"]  # no temporary left
    page = out.read_text()
    text = text_of(page)
    assert '<p id="verdict" class="verdict fail">ROLLED BACK</p>' in text
    outcome = text[text.index('id="outcome"') : text.index('id="host-0"')]
    assert re.search(
        r"<td>a</td><td>rolled back</td>.*?monitor [0-9a-f]{8}: a action_collapse", outcome
    )
    assert re.search(r"<td>b</td><td>completed</td>.*?events bound every rule", outcome)
    assert len(re.findall(r"<svg[ >]", page)) == 2 and 'id="host-1"' in page
    violations = text[text.index('id="violations"') :]
    # the violated rule's value against its threshold
    assert re.search(
        r"<td>a</td><td>1</td><td>action_collapse</td><td>1\.0000</td><td>0\.7000</td>"
        r"<td>host</td><td>Action collapse: BUY=100\.0%",
        violations,
    )
    assert "<td>b</td>" not in violations

    # One host of the same log: the completed watch alone.
    page_b = render_timeline(read_timeline(str(log), host="b"))
    assert '<p id="verdict" class="verdict pass">COMPLETED</p>' in page_b
    assert "<p>No violation.</p>" in page_b and len(re.findall(r"<svg[ >]", page_b)) == 1


def test_a_failed_rollback_is_the_pages_verdict(tmp_path, monkeypatch):
    log = watched(tmp_path, monkeypatch, OneHostFailsJob)
    page = text_of(render_timeline(read_timeline(str(log), host="a")))
    assert '<p id="verdict" class="verdict fail">ROLLBACK FAILED</p>' in page
    assert re.search(r"<td>a</td><td>rollback failed</td>.*?\(ansible-runner failed, rc 2\)", page)


def test_production_rate_checks_mostly_read_nothing(tmp_path, monkeypatch):
    # One event per minute against a check every 30 s, here one event every third check:
    # the window's figures carry on unchanged between events, the page says how many read none.
    one_event = healthy(1)
    log = watched(
        tmp_path, monkeypatch, b=lambda n, offset: one_event(n, offset) if n % 3 == 1 else []
    )
    timeline = read_timeline(str(log))
    (host,) = timeline.hosts.values()
    silent = [check for check in host.checks if check["events"] == 0]
    assert len(host.checks) >= 6 and len(silent) >= len(host.checks) // 2
    assert host.checks[0]["events"] == 1 and host.checks[0]["agreement"] is not None
    assert host.decision()["outcome"] == "inconclusive"
    assert "events" in host.decision()["detail"]  # what was not bounded: too few events
    page = render_timeline(timeline)
    assert re.search(rf"<td>{len(host.checks)}</td><td>\d+</td><td>{len(silent)}</td>", page)
    assert '<p id="verdict" class="verdict other">INCONCLUSIVE</p>' in page


def test_the_latest_watch_unless_since_and_the_rotated_backups(tmp_path, monkeypatch):
    log = watched(tmp_path, monkeypatch, b=healthy(10))
    first = read_timeline(str(log))
    code = Monitor(options(tmp_path, duration=0.2), out=lambda line: None).run()
    assert code in (EXIT_SAFE, EXIT_INCONCLUSIVE)
    latest = read_timeline(str(log))
    assert latest.hosts["b"].earlier_runs == 1
    assert latest.hosts["b"].checks[0]["ts"] > first.hosts["b"].checks[-1]["ts"]
    started = first.hosts["b"].records[0]["ts"]
    both = read_timeline(str(log), since=started)
    assert len(both.hosts["b"].checks) == len(first.hosts["b"].checks) + len(
        latest.hosts["b"].checks
    )
    assert "since 20" in render_timeline(both)
    # The logger's rotation: the older lines in checks.jsonl.1, read first.
    lines = log.read_bytes().splitlines(keepends=True)
    Path(f"{log}.1").write_bytes(b"".join(lines[:5]))
    log.write_bytes(b"".join(lines[5:]))
    rotated = read_timeline(str(log), since=started)
    assert rotated.files == [f"{log}.1", str(log)]
    assert rotated.hosts["b"].checks == both.hosts["b"].checks


def test_malformed_lines_are_counted_and_skipped(monitored, tmp_path):
    log = tmp_path / "checks.jsonl"
    shutil.copy(monitored, log)
    good = read_timeline(str(log))
    with open(log, "ab") as handle:
        handle.write(b"not json\n[1, 2]\n\xff\xfe\n")
        handle.write(b'{"check": 9, "host": "a", "model": "patchtst", "ts": "2026"}\n')
        handle.write(b'{"check": 9, "host": "a", "model": "patchtst", "status": "ok", "ts": 5}\n')
        handle.write(b'{"ts": "2026-01-10T12:00:00Z", "webhook": "failed", "event": "x"}\n')
        handle.write(b'{"check": 9, "host": "a", "model": "patchtst", "status": "o')  # torn
    timeline = read_timeline(str(log))
    assert timeline.malformed == 6
    assert timeline.lines == good.lines + 7
    assert timeline.hosts["a"].checks == good.hosts["a"].checks
    assert "6 malformed lines skipped" in render_timeline(read_timeline(str(log), host="b"))


def test_hostile_model_and_host_names_are_escaped(tmp_path):
    hostile_host, hostile_model = "<img src=x onerror=alert(1)>", '"><script>alert(2)</script>'
    log = tmp_path / "hostile.jsonl"
    logger = check_logger(str(log))
    try:
        base = {"host": hostile_host, "model": hostile_model}
        # Settings the monitor never writes: the page falls back to the monitor's defaults.
        settings = {"thresholds": {"bogus": 1}, "max_hard_disagree": "<s>", "interval_s": None}
        started = {"event": "monitoring_started", **base, "resumed": False, "settings": settings}
        log_check(logger, {"record": started})
        log_check(logger, {"check": 1, **base, "status": "ok", "events": 3, "triggered": []})
        violation = {"rule": "<b>rule</b>", "value": "<i>v</i>", "threshold": 1, "text": "<u>t"}
        log_check(
            logger,
            {"check": 2, **base, "status": "violation", "events": 1, "triggered": [violation]},
        )
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    page = render_timeline(read_timeline(str(log)))
    for raw in (hostile_host, hostile_model, "<b>rule</b>", "<i>v</i>", "<u>t"):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert '<p id="verdict" class="verdict fail">VIOLATION, NO ROLLBACK RECORDED</p>' in page
    assert "<s>" not in page


def test_nothing_to_show_exits_2_and_writes_nothing(monitored, tmp_path, capsys):
    log = monitored
    out = tmp_path / "out" / "page.html"
    out.parent.mkdir()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    cases = {
        "cannot read the check log": [str(tmp_path / "missing.jsonl")],
        "is empty": [str(empty)],
        "no check of model other on host a": [str(log), "--model", "other", "--host", "a"],
        "no check on host zzz": [str(log), "--host", "zzz"],
        "no check since the --since time": [str(log), "--since", "2999-01-01T00:00:00Z"],
        "not a model name": [str(log), "--model", "Bad-Name"],
    }
    for message, args in cases.items():
        assert timeline_cli("--check-log", *args, "--html", str(out)) == 2, message
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == "", (message, captured)
    assert timeline_cli("--check-log", str(log), "--html", str(out), "--since", "yesterday") == 2
    assert "not an ISO-8601 time" in capsys.readouterr().err
    assert os.listdir(out.parent) == []
    before = log.read_bytes()
    assert timeline_cli("--check-log", str(log), "--html", str(log)) == 2
    assert "is the check log" in capsys.readouterr().err and log.read_bytes() == before
    # A directory that cannot take the page: exit 2, the message says why.
    assert timeline_cli("--check-log", str(log), "--html", str(tmp_path / "no" / "p.html")) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_the_monitor_logs_its_records_in_the_check_log(monitored):
    lines = [json.loads(line) for line in monitored.read_text().splitlines()]
    activation_log = monitored.parent / "activation.jsonl"
    activation = [json.loads(line) for line in activation_log.read_text().splitlines()]
    records = [line["record"] for line in lines if "record" in line]
    assert [(r["event"], r["host"], r.get("result")) for r in records] == [
        (r["event"], r["host"], r.get("result")) for r in activation
    ]
    assert [r["event"] for r in records if r["host"] == "a"] == [
        "monitoring_started",
        "violation",
        "rollback_executed",
    ]
