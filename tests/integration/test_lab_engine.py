"""The reference engine on real lab hosts: start-up proof, telemetry, trade log, every switch."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from labctl.remote import configure, wait_for
from tests.event_schema import validate_event

pytestmark = pytest.mark.lab

CANARY_WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
CANARY_DROPIN = {
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": CANARY_WEIGHTS,
}
FAST = {"ENGINE_RATE": "100"}


def model_series(events: list[dict], model: str) -> tuple[list[str], np.ndarray]:
    entries = [e["model_breakdown"][model] for e in events]
    active = [entry for entry in entries if not entry.get("inactive")]
    return [a["action"] for a in active], np.array([a["confidence"] for a in active])


def shares(actions: list[str]) -> dict[str, float]:
    counts = Counter(actions)
    return {action: counts[action] / len(actions) for action in ("BUY", "SELL", "HOLD")}


def event_time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


# --- start-up proof ------------------------------------------------------------------


def test_engine_logs_the_build_of_its_own_checkout(lab):
    for host in lab.hosts:
        lines = host.journal(host.invocation())
        builds = [line.split(": ", 1)[1] for line in lines if line.startswith("AI_ENGINE_BUILD: ")]
        assert len(builds) == 1, lines
        assert host.git_head().startswith(builds[0]) and len(builds[0]) >= 7
        assert "[OK] xgb agent loaded (weight: 25%)" in lines
        assert "[OK] lgbm agent loaded (weight: 25%)" in lines
        assert "[OK] nhits agent loaded (weight: 30%)" in lines
        assert not any(line.startswith("[OK] patchtst") for line in lines)
        assert any(
            line.startswith("[PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth")
            for line in lines
        )


def test_checkout_is_a_git_repository_with_history(lab):
    host = lab.hosts[0]
    log = host.out(
        "git",
        "-C",
        "/home/qt/quantum_trader",
        "-c",
        "safe.directory=/home/qt/quantum_trader",
        "log",
        "--format=%s",
    )
    assert len(log.splitlines()) >= 2
    assert host.out("stat", "-c", "%U", "/home/qt/quantum_trader/.git") == "qt"
    assert host.show("User")["User"] == "qt"


# --- telemetry and trade log ---------------------------------------------------------


def test_events_follow_the_design_schema_at_the_lab_rate(lab):
    host = lab.hosts[0]
    start = host.last_stream_id()
    events = host.wait_events(start, 60, timeout=30)
    for event in events:
        validate_event(event)
    symbols = {event["symbol"] for event in events}
    assert len(symbols) >= 3
    rate = (len(events) - 1) / (event_time(events[-1]) - event_time(events[0]))
    assert 8.0 <= rate <= 12.0, f"lab default is 10 events/s, measured {rate:.2f}"


def test_shadow_model_is_reported_but_never_votes(lab):
    host = lab.hosts[0]
    events = host.wait_events(host.last_stream_id(), 20, timeout=15)
    for event in events:
        entry = event["model_breakdown"]["patchtst"]
        assert entry["shadow"] is True and entry["model"] == "patchtst_shadow"
        assert event["total_models"] == 3
    since = host.show("ActiveEnterTimestamp")["ActiveEnterTimestamp"]
    shadow_lines = [
        line
        for line in host.unit_journal_since(" ".join(since.split()[1:3]))
        if re.match(
            r"^\[SHADOW\] PatchTST \| [A-Z]+ \| action=(BUY|SELL|HOLD) "
            r"conf=\d\.\d\d \| mode=SHADOW_ONLY$",
            line,
        )
    ]
    assert shadow_lines, "no [SHADOW] PatchTST lines in the journal"


def test_every_decision_is_written_to_trade_intents(lab):
    host = lab.hosts[0]
    before = int(host.sql("SELECT COUNT(*) FROM trade_intents")[0][0])
    wait_for(
        lambda: int(host.sql("SELECT COUNT(*) FROM trade_intents")[0][0]) >= before + 20,
        timeout=20,
        what="new trade_intents rows",
    )
    rows = host.sql(
        "SELECT side, confidence, model_source, payload FROM trade_intents "
        "ORDER BY id DESC LIMIT 20"
    )
    for side, confidence, model_source, payload in rows:
        event = json.loads(payload)
        assert event["side"] == side and abs(event["confidence"] - float(confidence)) < 1e-9
        agreeing = [
            name
            for name, entry in event["model_breakdown"].items()
            if not entry.get("shadow") and entry.get("action") == side
        ]
        assert model_source == ",".join(agreeing)


# --- simulated behaviours ------------------------------------------------------------


def test_healthy_models_pass_the_gate_thresholds(engine_host):
    started = configure(engine_host, env=FAST)
    events = engine_host.wait_events(started.cutover, 600, timeout=30)
    for model in ("xgb", "lgbm", "nhits", "patchtst"):
        actions, conf = model_series(events, model)
        assert max(shares(actions).values()) <= 0.70, (model, shares(actions))
        assert conf.std() >= 0.05, (model, conf.std())
        p10, p90 = np.percentile(conf, [10, 90])
        assert p90 - p10 >= 0.12, (model, p10, p90)


def test_collapse_behaviours_produce_the_collapse_they_name(engine_host):
    started = configure(
        engine_host,
        env={
            **FAST,
            "SIM_XGB": "constant",
            "SIM_LGBM": "hold_collapse",
            "SIM_NHITS": "buy_bias",
            "SIM_PATCHTST": "low_spread",
        },
    )
    events = engine_host.wait_events(started.cutover, 400, timeout=30)
    actions, conf = model_series(events, "xgb")
    assert set(actions) == {"BUY"} and set(conf.tolist()) == {0.5}
    actions, conf = model_series(events, "lgbm")
    assert shares(actions)["HOLD"] >= 0.85 and 0.4 <= float(np.median(conf)) <= 0.6
    actions, conf = model_series(events, "nhits")
    assert shares(actions)["BUY"] >= 0.9 and conf.std() >= 0.05
    actions, conf = model_series(events, "patchtst")
    p10, p90 = np.percentile(conf, [10, 90])
    assert conf.std() < 0.05 and p90 - p10 < 0.12 and max(shares(actions).values()) <= 0.7


def test_noisy_inactive_and_flaky_behaviours(engine_host):
    started = configure(
        engine_host, env={**FAST, "SIM_XGB": "noisy", "SIM_LGBM": "inactive", "SIM_NHITS": "flaky"}
    )
    events = engine_host.wait_events(started.cutover, 400, timeout=30)
    for event in events:
        validate_event(event)
    actions, _ = model_series(events, "xgb")
    assert all(0.2 <= share <= 0.47 for share in shares(actions).values()), shares(actions)
    assert all(e["model_breakdown"]["lgbm"]["inactive"] is True for e in events)
    assert all(
        e["model_breakdown"]["lgbm"]["inactive_reason"] == "exception_in_predict" for e in events
    )
    flaky = sum(bool(e["model_breakdown"]["nhits"].get("inactive")) for e in events) / len(events)
    assert 0.03 <= flaky <= 0.2, flaky


def test_schedule_switches_behaviour_without_a_restart(engine_host):
    started = configure(engine_host, env={**FAST, "SIM_PATCHTST": "healthy,constant@4"})
    events = engine_host.wait_events(started.cutover, 700, timeout=30)
    first = event_time(events[0])
    early = [e for e in events if event_time(e) - first < 3]
    late = [e for e in events if event_time(e) - first > 5]
    assert len({e["model_breakdown"]["patchtst"]["confidence"] for e in early}) > 5
    assert {e["model_breakdown"]["patchtst"]["confidence"] for e in late} == {0.5}
    assert engine_host.invocation() == started.invocation


@pytest.mark.parametrize("mode", ["flatline", "nan"])
def test_feature_faults(engine_host, mode):
    started = configure(engine_host, env={**FAST, "SIM_FEATURES": mode})
    events = engine_host.wait_events(started.cutover, 50, timeout=15)
    if mode == "nan":
        assert any(math.isnan(v) for e in events for v in e["features"].values())
    else:
        assert len({tuple(sorted(e["features"].items())) for e in events}) == 1


# --- fault switches ------------------------------------------------------------------


def test_fail_start_fails_the_start(engine_host):
    started = configure(engine_host, env={"SIM_FAIL_START": "1"}, expect_active=False)
    state = engine_host.show("ActiveState", "Result")
    assert state["ActiveState"] in {"failed", "activating"}, state
    lines = engine_host.journal(started.invocation)
    assert any(line.startswith("AI_ENGINE_BUILD: ") for line in lines)
    assert "[ERROR] simulated start failure (SIM_FAIL_START=1)" in lines


def test_build_override_logs_a_stale_build(engine_host):
    started = configure(engine_host, env={"SIM_BUILD_OVERRIDE": "deadbeef"})
    lines = engine_host.journal(started.invocation)
    assert "AI_ENGINE_BUILD: deadbeef" in lines
    assert not engine_host.git_head().startswith("deadbeef")


def test_crash_after_makes_a_crash_loop(engine_host):
    configure(engine_host, env={"SIM_CRASH_AFTER": "1"})
    wait_for(
        lambda: int(engine_host.show("NRestarts")["NRestarts"]) >= 2,
        timeout=30,
        what="NRestarts >= 2",
    )
    since = engine_host.show("ActiveEnterTimestamp")["ActiveEnterTimestamp"]
    assert since
    lines = engine_host.out(
        "journalctl", "--no-pager", "-o", "cat", "-u", "quantum-ai-engine.service", "-n", "200"
    ).splitlines()
    assert "[FATAL] simulated crash (SIM_CRASH_AFTER=1)" in lines


def test_silent_engine_runs_but_publishes_nothing(engine_host):
    configure(engine_host, env={"SIM_SILENT": "1"})
    length = engine_host.stream_length()
    rows = engine_host.sql("SELECT COUNT(*) FROM trade_intents")[0][0]
    time.sleep(3)
    assert engine_host.show("ActiveState")["ActiveState"] == "active"
    assert engine_host.stream_length() == length
    assert engine_host.sql("SELECT COUNT(*) FROM trade_intents")[0][0] == rows


def test_canary_variables_make_the_model_vote_with_its_weight(engine_host):
    started = configure(engine_host, env={"PATCHTST_SHADOW_ONLY": "false"}, dropin=CANARY_DROPIN)
    lines = engine_host.journal(started.invocation)
    assert "[OK] patchtst agent loaded (weight: 10%)" in lines
    assert "[OK] xgb agent loaded (weight: 28.125%)" in lines
    assert "[OK] nhits agent loaded (weight: 33.75%)" in lines
    events = engine_host.wait_events(started.cutover, 20, timeout=15)
    for event in events:
        validate_event(event)
        assert "shadow" not in event["model_breakdown"]["patchtst"]
        assert event["total_models"] == 4


def test_inconsistent_canary_config_is_refused(engine_host):
    started = configure(engine_host, dropin=CANARY_DROPIN, expect_active=False)
    assert engine_host.show("ActiveState")["ActiveState"] != "active"
    lines = engine_host.journal(started.invocation)
    assert any("canary model patchtst is shadow-only" in line for line in lines), lines


def test_faults_only_with_canary(engine_host):
    faults = {"SIM_FAULTS_ONLY_WITH_CANARY": "1", "SIM_FAIL_START": "1", "SIM_XGB": "constant"}
    started = configure(engine_host, env=faults)
    events = engine_host.wait_events(started.cutover, 30, timeout=15)
    assert len({e["model_breakdown"]["xgb"]["confidence"] for e in events}) > 1
    started = configure(
        engine_host,
        env={"PATCHTST_SHADOW_ONLY": "false"},
        dropin=CANARY_DROPIN,
        expect_active=False,
    )
    lines = engine_host.journal(started.invocation)
    assert "[ERROR] simulated start failure (SIM_FAIL_START=1)" in lines


def test_patchtst_model_path_is_logged_with_its_state(engine_host):
    started = configure(engine_host, env={"PATCHTST_MODEL_PATH": "/opt/quantum/models/none.pth"})
    lines = engine_host.journal(started.invocation)
    assert any(
        line.startswith("[PatchTST-INIT] Model file: /opt/quantum/models/none.pth (missing")
        for line in lines
    ), lines
    digest = engine_host.out("sha256sum", "/opt/quantum/models/patchtst.pth").split()[0]
    started = configure(
        engine_host, env={"PATCHTST_MODEL_PATH": "/opt/quantum/models/patchtst.pth"}
    )
    lines = engine_host.journal(started.invocation)
    assert (
        f"[PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth "
        f"(present, sha256 {digest[:12]})" in lines
    ), lines
