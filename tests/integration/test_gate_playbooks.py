"""The gate's Ansible modules and playbooks on the real lab hosts (issue 3).

Real `ansible-playbook` and `ansible` runs against the lab: the modules run on a Debian
bookworm host (python3-numpy 1.24, python3-redis 4.3) over SSH, read that host's own
telemetry, write their reports there and the playbooks fetch them. The engine is reconfigured
with a real stop + start (`configure`), and only the events after that restart are judged
(`after` = the stream id right before it), so a window holds exactly one behaviour.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.config import REPO_ROOT
from labctl.remote import LabHost, configure

pytestmark = pytest.mark.lab

FAST = {"ENGINE_RATE": "100"}
TARGET_REPORT_DIR = "/var/lib/model-safety/reports"
# Enough events for canary mode (200) with some margin; at 100 events/s about 3 s.
WINDOW_EVENTS = 260


def ansible(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an Ansible command of the venv from the checkout, with its ansible.cfg."""
    return subprocess.run(
        [str(Path(sys.executable).parent / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), **(env or {})},
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"


def playbook(
    name: str, host: LabHost, fetch_dir: Path, *options: str, **variables: object
) -> subprocess.CompletedProcess[str]:
    """Run playbooks/<name> on one host; the reports are fetched into fetch_dir/<host>/."""
    extra = {"model_safety_report_dir": str(fetch_dir), **variables}
    return ansible(
        "ansible-playbook", f"playbooks/{name}", "-l", host.name, "-e", json.dumps(extra), *options
    )


def module(host: LabHost, name: str, **args: object) -> tuple[bool, dict]:
    """Run one module ad hoc on one host: (succeeded, its result)."""
    result = ansible(
        "ansible",
        host.name,
        "-m",
        name,
        "-a",
        json.dumps(args),
        env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )
    found = re.search(rf"^{re.escape(host.name)} \| ([A-Z]+)!? => ", result.stdout, re.M)
    assert found, output(result)
    succeeded = found.group(1) == "SUCCESS"
    assert succeeded == (result.returncode == 0), output(result)
    return succeeded, json.JSONDecoder().raw_decode(result.stdout[found.end() :])[0]


def recap(result: subprocess.CompletedProcess[str], host: LabHost) -> dict[str, int]:
    """The PLAY RECAP counters of host."""
    line = next(
        line
        for line in reversed(result.stdout.splitlines())
        if line.split(" ", 1)[0] == host.name and "ok=" in line
    )
    return {key: int(value) for key, value in (f.split("=") for f in line.split()[2:])}


def fetched(fetch_dir: Path, host: LabHost, kind: str) -> tuple[Path, dict]:
    """The newest fetched report pair of `kind`: the Markdown path and the parsed JSON."""
    markdowns = sorted((fetch_dir / host.name).glob(f"{kind}_2*.md"))
    assert markdowns, f"no {kind} report fetched into {fetch_dir / host.name}"
    markdown = markdowns[-1]
    return markdown, json.loads(markdown.with_suffix(".json").read_text())


def stream_key(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def target_reports(host: LabHost) -> set[str]:
    text = host.run("ls", "-1", TARGET_REPORT_DIR, check=False).stdout
    return set(text.split())


@pytest.fixture
def gate_host(engine_host: LabHost):
    """engine_host; the report files the test leaves on it are removed afterwards."""
    before = target_reports(engine_host)
    yield engine_host
    left = sorted(target_reports(engine_host) - before)
    if left:
        engine_host.run("rm", "-f", *(f"{TARGET_REPORT_DIR}/{name}" for name in left))


def test_healthy_host_passes_the_canary_gate_and_check_mode_writes_nothing(gate_host, tmp_path):
    started = configure(gate_host, env=FAST)
    gate_host.wait_events(started.cutover, WINDOW_EVENTS, timeout=30)

    # The play passes, and the reports are on the controller.
    result = playbook("quality_gate.yml", gate_host, tmp_path, gate_after=started.cutover)
    assert result.returncode == 0, output(result)
    assert "PASS (canary, every voting model" in result.stdout
    markdown, gate = fetched(tmp_path, gate_host, "quality_gate")
    assert gate["verdict"] == "PASS" and gate["mode"] == "canary", gate["blockers"]
    assert gate["blockers"] == [] and gate["malformed"] == 0
    assert gate["event_count"] >= 200
    assert stream_key(gate["window"]["first_id"]) > stream_key(started.cutover)
    assert set(gate["models"]) == {"xgb", "lgbm", "nhits", "patchtst"}
    assert gate["models"]["patchtst"]["shadow"] is True
    assert all(model["passed"] for model in gate["models"].values()), gate["models"]
    assert markdown.read_text().startswith("# MODE: CANARY")
    # ... and were written on the host, private to root.
    assert gate_host.out("stat", "-c", "%a %U", TARGET_REPORT_DIR) == "750 root"
    assert gate_host.out("stat", "-c", "%a", f"{TARGET_REPORT_DIR}/{markdown.name}") == "640"

    # --check judges the same way, changes nothing, writes and fetches no file.
    before = target_reports(gate_host)
    check_dir = tmp_path / "check"
    result = playbook(
        "quality_gate.yml", gate_host, check_dir, "--check", gate_after=started.cutover
    )
    assert result.returncode == 0, output(result)
    assert recap(result, gate_host)["changed"] == 0, output(result)
    assert "none written (check mode)" in result.stdout
    assert target_reports(gate_host) == before
    assert not check_dir.exists()

    # The module itself: the --json result at the top level, changed false, no report; with a
    # model, its paired comparison on the same window (a 1 s horizon: seconds of events).
    succeeded, gate = module(
        gate_host,
        "quality_gate",
        model="xgb",
        after=started.cutover,
        thresholds={"compare_horizon_s": 1.0},
    )
    assert succeeded and gate["verdict"] == "PASS" and gate["model"] == "xgb"
    assert gate["changed"] is False and "reports" not in gate
    comparison = gate["comparison"]
    assert (comparison["model"], comparison["decided"]) == ("xgb", True), comparison
    assert comparison["events"] == gate["event_count"] and comparison["horizon_s"] == 1.0

    # canary_compare on the host's numpy 1.24: patchtst (healthy) against the baseline.
    succeeded, compared = module(
        gate_host, "canary_compare", model="patchtst", after=started.cutover, horizon=1.0
    )
    assert succeeded and compared["decided"] is True, compared
    assert compared["events_with_outcome"] > 200 and compared["late_outcomes"] == 0
    assert compared["worse_than_ensemble_without"] is False, compared["summary"]
    assert compared["comparisons"][-1]["other"] == "ensemble without patchtst"

    # The shadow report of patchtst: the four gates, each with value and threshold.
    succeeded, shadow = module(
        gate_host, "shadow_report", model="patchtst", after=started.cutover, report_only=True
    )
    assert succeeded, shadow
    assert shadow["model"] == "patchtst" and shadow["status"] == "READY", shadow["gates"]
    assert set(shadow["gates"]) == {
        "action_diversity",
        "confidence_spread",
        "agreement",
        "calibration",
    }
    assert all({"status", "value", "threshold"} <= set(g) for g in shadow["gates"].values())
    for name in ("action_diversity", "confidence_spread", "agreement"):
        assert shadow["gates"][name]["status"] == "PASS", shadow["gates"][name]
    # Seconds of events cannot judge a 60 s calibration horizon.
    assert shadow["gates"]["calibration"]["status"] == "DEFER"
    assert shadow["hard_blockers"] == []
    succeeded, _ = module(gate_host, "shadow_report", model="patchtst", after=started.cutover)
    assert succeeded


def test_collapsed_models_fail_the_gate_but_collection_and_scoreboard_only_report_them(
    gate_host, tmp_path
):
    # patchtst (shadow, not judged by the gate) collapses too, for its shadow report:
    # constant fails two of its four gates (diversity and spread), so it is never READY
    # (buy_bias failed only diversity, and READY needs 3 of 4: it could pass by chance).
    started = configure(
        gate_host,
        env={**FAST, "SIM_XGB": "constant", "SIM_PATCHTST": "constant", "SIM_FEATURES": "nan"},
    )
    gate_host.wait_events(started.cutover, WINDOW_EVENTS, timeout=30)

    # Canary: the play fails closed, naming the blocker; the reports are still fetched.
    result = playbook("quality_gate.yml", gate_host, tmp_path, gate_after=started.cutover)
    assert result.returncode != 0, output(result)
    assert "quality gate FAIL" in result.stdout and "xgb: " in result.stdout, output(result)
    markdown, gate = fetched(tmp_path, gate_host, "quality_gate")
    assert gate["verdict"] == "FAIL"
    assert gate["blockers"] and all(b.startswith("xgb: ") for b in gate["blockers"])
    assert gate["models"]["xgb"]["passed"] is False
    assert gate["models"]["lgbm"]["passed"] and gate["models"]["nhits"]["passed"]
    assert gate["blockers"][0] in markdown.read_text()

    # The module fails the task with every blocker in msg, unless it only reports.
    succeeded, failed = module(gate_host, "quality_gate", after=started.cutover)
    assert not succeeded and failed["verdict"] == "FAIL"
    assert all(blocker in failed["msg"] for blocker in failed["blockers"]), failed["msg"]
    succeeded, reported = module(gate_host, "quality_gate", after=started.cutover, report_only=True)
    assert succeeded and reported["verdict"] == "FAIL"

    # Collection mode never fails and says so, blockers included.
    result = playbook(
        "quality_gate.yml", gate_host, tmp_path, gate_after=started.cutover, gate_mode="collection"
    )
    assert result.returncode == 0, output(result)
    assert "COLLECTION (collection" in result.stdout
    markdown, gate = fetched(tmp_path, gate_host, "quality_gate")
    assert gate["verdict"] == "COLLECTION" and gate["mode"] == "collection"
    assert any(b.startswith("xgb: ") for b in gate["blockers"])
    assert markdown.read_text().startswith("# MODE: COLLECTION")

    # The scoreboard reports xgb NO-GO without failing, and scoreboard_latest.md arrives.
    result = playbook("scoreboard.yml", gate_host, tmp_path, scoreboard_after=started.cutover)
    assert result.returncode == 0, output(result)
    assert "xgb: NO-GO" in result.stdout, output(result)
    latest = tmp_path / gate_host.name / "scoreboard_latest.md"
    assert latest.is_file()
    markdown, board = fetched(tmp_path, gate_host, "scoreboard")
    assert latest.read_text() == markdown.read_text()
    assert board["models"]["xgb"]["status"] == "NO-GO"
    assert board["models"]["lgbm"]["status"] != "NO-GO"
    assert board["models"]["patchtst"]["status"] == "NO-GO"

    # Feature sanity fails on the NaN features (the events themselves are not malformed).
    succeeded, sanity = module(gate_host, "feature_sanity", after=started.cutover)
    assert not succeeded and sanity["exit_code"] == 2
    assert sanity["problems"] and "NaN" in sanity["msg"], sanity["msg"]
    assert all(feature["nan"] > 0 for feature in sanity["features"].values())

    # The collapsed shadow model is not ready to leave shadow mode: the task fails.
    succeeded, shadow = module(gate_host, "shadow_report", model="patchtst", after=started.cutover)
    assert not succeeded and shadow["status"] in ("NOT_READY", "BLOCKED"), shadow
    assert shadow["gates"]["action_diversity"]["status"] == "FAIL"
    assert "action_diversity FAIL" in shadow["msg"], shadow["msg"]


def test_modules_fail_closed_on_bad_input_and_an_unreachable_redis(lab, tmp_path):
    host = lab.hosts[0]  # its engine is untouched: only read
    password = "s3cret-Pw"  # made up, to look for in the output
    unreachable = f"redis://:{password}@127.0.0.1:1/0"

    # The play fails closed, says why, and never shows the password, nor do its reports.
    # (Ad hoc `ansible` is not used here: on a failed task, Ansible itself echoes the
    # command-line arguments of an ad hoc task, whatever the module masks.)
    target_dir = f"/tmp/gate-test-reports-{tmp_path.name}"
    result = playbook(
        "quality_gate.yml",
        host,
        tmp_path,
        ai_engine_redis_url=unreachable,
        model_safety_target_report_dir=target_dir,
    )
    host.run("rm", "-rf", target_dir)
    assert result.returncode != 0, output(result)
    assert "quality gate FAIL" in result.stdout and "unreachable" in result.stdout, output(result)
    assert password not in output(result)
    markdown, gate = fetched(tmp_path, host, "quality_gate")
    assert gate["verdict"] == "FAIL" and gate["event_count"] == 0
    assert password not in markdown.read_text() + json.dumps(gate)

    # Collection mode never fails, not even then; the result says COLLECTION with the reason.
    succeeded, gate = module(host, "quality_gate", mode="collection", redis_url=unreachable)
    assert succeeded and gate["verdict"] == "COLLECTION"
    assert gate["blockers"] and password not in json.dumps(gate)

    # No scoreboard, no shadow report, no feature sanity without Redis.
    for name, args in (
        ("scoreboard", {}),
        ("feature_sanity", {}),
        ("shadow_report", {"model": "patchtst"}),
    ):
        succeeded, failed = module(host, name, redis_url=unreachable, **args)
        assert not succeeded and "unreachable" in failed["msg"], (name, failed["msg"])
        assert password not in json.dumps(failed)

    # Invalid options fail the task whatever the mode.
    succeeded, failed = module(
        host, "quality_gate", mode="collection", thresholds={"max_action_shar": 0.5}
    )
    assert not succeeded and "max_action_shar" in failed["msg"]
    succeeded, failed = module(host, "quality_gate", thresholds={"min_spread": 2})
    assert not succeeded and "min_spread" in failed["msg"]
    succeeded, failed = module(host, "shadow_report", model="PatchTST; rm -rf /")
    assert not succeeded and "model name" in failed["msg"]
