"""The runbook's stop conditions on a real lab host (issue 16 item 4), one host and few runs:

* the lab engine's SIM_LOG_SPAM, SIM_DISK_GROWTH and SIM_PAYLOAD_PAD at once, after an
  activation record that holds the host's sizes (as the preflight + change record them): the
  preflight's engine_status finds log_spam, disk_growth (lab threshold 5 MB) and payload_p95;
  the monitor's probe (canary_probe) measures the same and the monitor's judgement
  (monitor.stop_watch) makes them violations; canary.yml refuses in its preflight with the
  rule's sentence and changes nothing;
* SIM_CRASH_AFTER under the unit's Restart=on-failure: a restart loop, counted from the
  journal's scheduled restarts (and NRestarts), found by engine_status;
* the consensus settings measured in tests/unit/test_lab_engine_consensus.py: the monitor's
  probe and judgement make the broken one a consensus_broken violation and the redundant one a
  consensus_redundant warning, never a rollback.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from labctl.remote import configure, wait_for
from model_safety.judgement.thresholds import Thresholds
from model_safety.monitor.settings import MonitorSettings
from model_safety.monitor.stop_watch import judge_stop_conditions
from model_safety.utctime import iso_ms
from tests.integration.lab_activation import FAST, LOG, playbook, snapshot
from tests.local_ansible import ansible, printed
from tests.unit.test_lab_engine_consensus import CONSENSUS_BROKEN, CONSENSUS_REDUNDANT

pytestmark = pytest.mark.lab

STOP_PATHS = ["/opt/quantum/data", "/var/log/quantum"]
# Lab thresholds: disk growth 5 MB (the engine grows 5 MB/s) so the test takes seconds.
LAB_THRESHOLDS = {"max_disk_growth_bytes": 5_000_000}
# 12000 lines/min: over 1000/min also in the preflight's 60 s window, 10 s after the start
# (and under journald's default rate limit of 10000 lines per 30 s).
LOAD = {"SIM_LOG_SPAM": "12000", "SIM_DISK_GROWTH": "5000000", "SIM_PAYLOAD_PAD": "1600"}
JSON_FORMAT = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


def module(host: str, name: str, **args: object) -> dict:
    """One module run ad hoc on one lab host; its result (it must succeed)."""
    result = ansible("ansible", host, "-m", name, "-a", json.dumps(args), env=JSON_FORMAT)
    found = re.search(rf"^{re.escape(host)} \| ([A-Z]+)!? => ", result.stdout, re.M)
    assert found and found.group(1) == "SUCCESS", printed(result)
    return json.JSONDecoder().raw_decode(result.stdout[found.end() :])[0]


def stop_status(host: str, **args: object) -> dict:
    return module(
        host,
        "engine_status",
        stop_paths=STOP_PATHS,
        stop_thresholds=LAB_THRESHOLDS,
        **args,
    )["stop_conditions"]


def rules(findings: list[dict]) -> list[str]:
    return sorted(finding["rule"] for finding in findings)


@pytest.fixture(scope="module")
def host(lab):
    """One host for both tests (the second adds its crash to the first one's load), reset
    once at the end."""
    host = lab.hosts[2]
    yield host
    host.reset()


def test_log_spam_disk_growth_and_payload_in_the_preflight_and_the_monitor(host) -> None:
    started = host.reset({**FAST, **LOAD})
    # The sizes an activation records (preflight + change), in the host's activation log.
    baseline = stop_status(host.name)["measures"]
    record = {
        "event": "activation",
        "action": "canary_activated",
        "ts": iso_ms(time.time()),
        "model": "patchtst",
        "invocation_id": host.invocation(),
        "started_at": iso_ms(time.time()),
        "stop_baseline": baseline,
    }
    host.write_file(LOG, json.dumps(record) + "\n")
    # 250 padded events at 100/s: 2.5 s, over 5 MB grown since the record at 5 MB/s.
    host.wait_events(started.cutover, 250, timeout=30)

    found = stop_status(host.name, stop_log_window=5)
    assert rules(found["findings"]) == ["disk_growth", "log_spam", "payload_p95"], found
    assert all(finding["blocking"] for finding in found["findings"])
    assert found["disk_growth"] > 5_000_000 and found["errors"] == []
    spam = next(f for f in found["findings"] if f["rule"] == "log_spam")
    assert 9000 <= spam["value"] <= 15000, spam  # 12000 lines/min, measured over 5 s

    probe = module(
        host.name,
        "canary_probe",
        model="patchtst",
        baseline={"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3, "patchtst": 0.2},
        stop_paths=STOP_PATHS,
        stop_log_window=5,
    )
    settings = MonitorSettings(model="patchtst", thresholds=LAB_THRESHOLDS)
    _, violations, _ = judge_stop_conditions({}, probe, settings)
    assert rules(violations) == ["disk_growth", "log_spam", "payload_p95"], probe

    before = snapshot(host)
    # The lab's smaller threshold, as an inventory or -e sets it.
    lab_thresholds = json.dumps({"model_safety_stop_thresholds": LAB_THRESHOLDS})
    run = playbook("canary.yml", "-e", "model=patchtst", "-e", lab_thresholds, "--limit", host.name)
    assert run.returncode != 0
    assert "stop condition, nothing was changed" in run.output, run.output
    refusal = run.output[run.output.index("stop condition") :][:600]
    assert all(rule in refusal for rule in ("Log spam:", "Disk growth:", "payload p95")), refusal
    assert snapshot(host) == before


def test_a_restart_loop_is_found_in_the_journal(host) -> None:
    # The lab's reset cleared the journal: no restart_loop in the first test's findings.
    configure(host, {"SIM_CRASH_AFTER": "0.5"}, expect_active=False)
    wait_for(lambda: int(host.show("NRestarts")["NRestarts"]) >= 3, timeout=30, what="3 restarts")
    found = stop_status(host.name)
    assert "restart_loop" in rules(found["findings"]), found
    restarts = found["measures"]["restarts"]
    assert restarts["journal_24h"] >= 3 and restarts["count"] >= 3
    assert Thresholds().max_restarts_24h == 2 < restarts["count"]


def consensus_judged(host, env: dict[str, str]) -> tuple[dict, list[dict], list[dict]]:
    """The engine restarted with ``env``; once 200 events of that start are in, one probe of
    them and the monitor's judgement: (the probe's stop_events, violations, warnings)."""
    started = host.reset({**FAST, **env})
    host.wait_events(started.cutover, 200, timeout=30)
    probe = module(
        host.name,
        "canary_probe",
        model="patchtst",
        after=started.cutover,
        baseline={"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3, "patchtst": 0.2},
        stop_paths=STOP_PATHS,
    )
    _, violations, warnings = judge_stop_conditions({}, probe, MonitorSettings(model="patchtst"))
    return probe["stop_events"], violations, warnings


def test_consensus_broken_rolls_back_and_consensus_redundant_warns(host) -> None:
    events, violations, warnings = consensus_judged(host, CONSENSUS_BROKEN)
    assert events["events"] >= 200 and events["low"] / events["events"] > 0.45, events
    assert rules(violations) == ["consensus_broken"] and warnings == [], (violations, warnings)
    broken = violations[0]
    assert broken["blocking"] and broken["value"] > 0.45 and broken["threshold"] == 0.30
    assert re.fullmatch(
        rf"Consensus broken: consensus 0-1 in \d+\.\d% of {events['events']} events \(>30%\)",
        broken["text"],
    ), broken

    events, violations, warnings = consensus_judged(host, CONSENSUS_REDUNDANT)
    assert events["full"] == events["events"] >= 200 and events["low"] == 0, events
    assert violations == [] and rules(warnings) == ["consensus_redundant"], (violations, warnings)
    redundant = warnings[0]
    assert not redundant["blocking"] and redundant["threshold"] == 0.80
    assert redundant["text"] == (
        f"Consensus redundant: full consensus with patchtst in 100.0% of {events['events']} "
        "events (>80%)"
    )
