"""`playbooks/monitor_record.yml` runs for real (`ansible-playbook` from the checkout, three
`engine` hosts that are all this machine, each with its own log in tmp_path): the monitor's
records for a host are appended to that host's activation log in order, with the seed's keys;
a host without an entry appends nothing; a bad value appends nothing. What it appends is what
promote.yml's check reads (promotion_watch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from model_safety.activation import log as activation_log
from model_safety.monitor import promotion_watch
from tests.local_ansible import ansible

HOSTS = ("engine1", "engine2", "engine3")
STARTED = {
    "event": "monitoring_started",
    "model": "patchtst",
    "window_start": "2026-01-10T12:00:00.123Z",
    "resumed": False,
}
COMPLETED = {
    "event": "monitoring_completed",
    "model": "patchtst",
    "result": "inconclusive",
    "missing": ["only 120 of the 200 events the gate needs"],
    "checks": 720,
    "duration_s": 21600,
    "window_start": "2026-01-10T12:00:00.123Z",
}


def run_playbook(tmp_path: Path, extra: dict) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[engine]\n"
        + "".join(
            f"{host} ansible_connection=local ansible_python_interpreter={sys.executable} "
            f"model_safety_activation_log={tmp_path / host / 'qsc_canary.jsonl'}\n"
            for host in HOSTS
        )
    )
    return ansible(
        "ansible-playbook",
        "-i",
        str(inventory),
        "-e",
        json.dumps({"activation_log_group": str(os.getegid()), **extra}),
        "playbooks/monitor_record.yml",
    )


def test_each_hosts_records_are_appended_to_its_own_log(tmp_path):
    # engine1 already has its canary's activation; the monitor's two records follow it.
    log = str(tmp_path / "engine1" / "qsc_canary.jsonl")
    activation_log.append_record(log, {"event": "activation", "model": "patchtst", "weight": 0.1})
    engine3 = {**COMPLETED, "result": "safe", "missing": []}

    done = run_playbook(
        tmp_path, {"monitor_records": {"engine1": [STARTED, COMPLETED], "engine3": [engine3]}}
    )

    assert done.returncode == 0, done.stdout + done.stderr
    records, problems = activation_log.read_records(log)
    assert problems == [] and len(records) == 3
    started, completed = records[1:]
    assert started["action"] == "monitoring_started" and started["canary_model"] == "patchtst"
    assert started["timestamp"] == started["ts"]
    assert completed["action"] == "monitoring_completed"
    assert completed["result"] == "inconclusive"
    assert completed["missing"] == COMPLETED["missing"]
    assert (completed["checks_performed"], completed["duration_hours"]) == (720, 6.0)
    assert completed["canary_model"] == "patchtst" and completed["timestamp"] == completed["ts"]
    assert {key: completed[key] for key in COMPLETED} == COMPLETED
    # promote.yml's check finds exactly that for the canary's current step.
    assert promotion_watch.check_monitor(log, "patchtst")["result"] == "inconclusive"

    assert not (tmp_path / "engine2").exists()  # no entry: nothing appended, no log made
    (safe,) = activation_log.read_records(str(tmp_path / "engine3" / "qsc_canary.jsonl"))[0]
    assert (safe["action"], safe["result"]) == ("monitoring_completed", "safe")


def test_bad_values_append_nothing(tmp_path):
    done = run_playbook(
        tmp_path,
        {"monitor_records": {"engine1": {"event": "monitoring_completed"}, "engine2": ["x"]}},
    )
    assert done.returncode != 0
    output = " ".join((done.stdout + done.stderr).split())
    assert "monitor_records must be a dict of host -> list of record dicts" in output
    assert "for engine1 it gives" in output and "for engine2 it gives" in output
    assert not (tmp_path / "engine1").exists() and not (tmp_path / "engine2").exists()

    done = run_playbook(tmp_path, {"monitor_records": {"engine3": [{"event": "bogus"}]}})
    assert done.returncode != 0 and "event must be one of" in done.stdout + done.stderr
    assert not (tmp_path / "engine3" / "qsc_canary.jsonl").exists()


def test_the_completed_watch_carries_the_comparison_since_its_start(
    tmp_path, redis_server, redis_client, redis_stream
):
    # The reference engine's events with a contrarian patchtst; the watch started 30 s in.
    from tests.module_harness import engine_payloads, stream_id

    for index, payload in enumerate(engine_payloads(600, (("SIM_PATCHTST", "contrarian"),))):
        redis_client.xadd(redis_stream, {"payload": payload}, id=stream_id(index))
    completed = {
        **COMPLETED,
        "result": "safe",
        "missing": [],
        "window_start": "2026-01-10T12:00:29.950Z",
    }
    reports = tmp_path / "reports"
    done = run_playbook(
        tmp_path,
        {
            "monitor_records": {"engine1": [STARTED, completed], "engine2": [STARTED]},
            "ai_engine_redis_url": redis_server.url,
            "ai_engine_stream": redis_stream,
            "model_safety_target_report_dir": str(reports),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records, _ = activation_log.read_records(str(tmp_path / "engine1" / "qsc_canary.jsonl"))
    started, ended = records
    assert "comparison" not in started
    comparison = ended["comparison"]
    # The default 300 s horizon over 30 s of events: nothing judged yet, and that is said.
    assert comparison["decided"] is False
    assert comparison["summary"] == (
        "patchtst: not decided: patchtst made no directional call with an outcome"
    )
    (markdown,) = reports.glob("compare_*.md")
    assert comparison["report"] == str(markdown)
    assert "300 events" in markdown.read_text()
    (only_started,) = activation_log.read_records(str(tmp_path / "engine2" / "qsc_canary.jsonl"))[0]
    assert "comparison" not in only_started


def test_a_comparison_that_cannot_be_made_is_recorded_not_fatal(tmp_path):
    done = run_playbook(
        tmp_path,
        {
            "monitor_records": {"engine1": [COMPLETED]},
            "ai_engine_redis_url": "redis://127.0.0.1:1/0",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (completed,) = activation_log.read_records(str(tmp_path / "engine1" / "qsc_canary.jsonl"))[0]
    assert completed["result"] == "inconclusive"
    assert completed["comparison"]["decided"] is False
    assert completed["comparison"]["summary"].startswith("patchtst: not compared: ")
    assert completed["comparison"]["report"] is None
