"""The canary's confidence cap (issue 16 item 5, QSC_CANARY_CONF_CAP) end to end in units: the
lab engine caps and says so, the plan writes the drop-in, the proof checks the start, and the
gate and the monitor judge the raw confidences."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_engine.config import ConfigError, load_config
from ai_engine.engine import Engine
from ai_engine.ensemble import vote
from ai_engine.models import Prediction, capped
from ai_engine.service import startup_lines
from model_safety.activation.plan import activation_plan, validate_conf_cap
from model_safety.engine.commands import EngineStateError, StepFailed
from model_safety.engine.config import (
    EngineConfigError,
    config_differences,
    expected_from_environment,
)
from model_safety.engine.dropin import render_dropin
from model_safety.engine.startup import parse_startup
from model_safety.engine.startup_proof import STEP_CONFIG, STEP_ROLE, ModelExpectation, prove_start
from model_safety.engine.weights import WeightsError, canary_weights
from model_safety.judgement.gate import evaluate
from model_safety.judgement.gate_report import render_quality_gate
from model_safety.monitor.probe import _telemetry as probe_telemetry
from model_safety.monitor.report import describe_check
from model_safety.telemetry.events import parse_window
from tests.fake_clock import FakeClock
from tests.fake_engine_host import BASELINE as FAKE_BASELINE
from tests.fake_engine_host import UNIT, FakeHost
from tests.monitor_events import healthy_rows
from tests.unit.test_events_fastpath import (
    SETTINGS,
    assert_both_paths_alike,
    assert_same,
    build,
    entries_of,
    fast_path_hits,
)
from tests.unit.test_monitor_assess import Host as MonitorHost
from tests.unit.test_monitor_assess import probe as monitor_probe

CANARY_WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
MOMENT = datetime(2026, 1, 10, 12, tzinfo=UTC)


def engine_env(cap: str | None = "0.75", **extra: str) -> dict[str, str]:
    env = {
        "QSC_CANARY_MODEL": "patchtst",
        "QSC_CANARY_WEIGHT": "0.1",
        "QSC_MODEL_WEIGHTS": CANARY_WEIGHTS,
        "ENGINE_SEED": "7",
        **extra,
    }
    if cap is not None:
        env["QSC_CANARY_CONF_CAP"] = cap
    return env


# --------------------------------------------------------------------------- the lab engine


@pytest.mark.parametrize(("text", "cap"), [("0.75", 0.75), ("1", 1.0), (" 0.5 ", 0.5), ("", None)])
def test_engine_reads_the_cap(text: str, cap: float | None) -> None:
    assert load_config(engine_env(text)).canary_conf_cap == cap


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "must be in (0, 1]"),
        ("-0.1", "must be in (0, 1]"),
        ("1.01", "must be in (0, 1]"),
        ("nan", "must be a number"),
        ("inf", "must be a number"),
        ("0.7x", "must be a number"),
    ],
)
def test_engine_refuses_a_bad_cap(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=r"QSC_CANARY_CONF_CAP") as raised:
        load_config(engine_env(text))
    assert reason in str(raised.value)


def test_engine_refuses_a_cap_without_a_canary() -> None:
    with pytest.raises(ConfigError, match="QSC_CANARY_CONF_CAP is set without QSC_CANARY_MODEL"):
        load_config({"QSC_CANARY_CONF_CAP": "0.75"})


def test_capped_prediction_keeps_the_raw_confidence() -> None:
    assert capped(Prediction("BUY", 0.9), 0.75) == Prediction("BUY", 0.75, None, 0.9, 0.75)
    assert capped(Prediction("SELL", 0.6), 0.75) == Prediction("SELL", 0.6, None, 0.6, 0.75)
    assert capped(Prediction("BUY", 0.9), None) == Prediction("BUY", 0.9)
    failed = Prediction(inactive_reason="exception_in_predict")
    assert capped(failed, 0.75) is failed


def test_the_vote_uses_the_capped_confidence() -> None:
    weights = {"a": 0.5, "b": 0.5}
    raw = {"a": Prediction("BUY", 0.9), "b": Prediction("SELL", 0.8)}
    assert vote(raw, weights, ("a", "b")).side == "BUY"
    capped_a = {**raw, "a": capped(raw["a"], 0.75)}
    assert vote(capped_a, weights, ("a", "b")).side == "SELL"


def test_engine_publishes_the_capped_canary_with_its_raw_confidence() -> None:
    engine = Engine(load_config(engine_env("0.6")))
    above = 0
    for _ in range(400):
        payload = json.loads(engine.step(0.0, MOMENT).json)
        entry = payload["model_breakdown"]["patchtst"]
        assert list(entry) == ["action", "confidence", "raw_confidence", "confidence_cap", "model"]
        assert entry["confidence_cap"] == 0.6
        assert entry["confidence"] == min(entry["raw_confidence"], 0.6)
        above += entry["raw_confidence"] > 0.6
        for other in ("xgb", "lgbm", "nhits"):
            assert "raw_confidence" not in payload["model_breakdown"][other]
    # Healthy confidences are ~0.52-0.94: a good share is above 0.6 (seeded, wide margin).
    assert 40 < above < 360


def test_engine_without_a_cap_publishes_no_raw_confidence() -> None:
    engine = Engine(load_config(engine_env(None)))
    for _ in range(50):
        entry = json.loads(engine.step(0.0, MOMENT).json)["model_breakdown"]["patchtst"]
        assert set(entry) == {"action", "confidence", "model"}


def test_startup_line_shows_the_cap_on_the_canary_only() -> None:
    lines = startup_lines(load_config(engine_env("0.75")))
    assert "[OK] patchtst agent loaded (weight: 10%) conf_cap=0.75" in lines
    assert "[OK] xgb agent loaded (weight: 28.125%)" in lines
    assert "[OK] patchtst agent loaded (weight: 10%)" in startup_lines(
        load_config(engine_env(None))
    )


# --------------------------------------------------------------------------- plan and drop-in


def test_canary_plan_writes_the_cap_into_the_drop_in() -> None:
    plan = activation_plan("canary", "patchtst", BASELINE, weight=0.1, conf_cap="0.75")
    assert plan["conf_cap"] == 0.75
    assert plan["dropin"]["environment"]["QSC_CANARY_CONF_CAP"] == "0.75"
    assert plan["prove"]["conf_cap"] == 0.75 and plan["record"]["conf_cap"] == 0.75
    text = render_dropin(plan["dropin"]["environment"], "canary patchtst")
    assert 'Environment="QSC_CANARY_CONF_CAP=0.75"\n' in text
    # What the engine reads from it: the lab engine and the proof's reading agree.
    environment = dict(
        line.removeprefix('Environment="').removesuffix('"').split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    )
    assert load_config(environment).canary_conf_cap == 0.75
    assert expected_from_environment(environment, BASELINE)["canary_conf_cap"] == 0.75


@pytest.mark.parametrize("absent", [None, "", "  "])
def test_canary_without_a_cap_writes_none(absent) -> None:
    plan = activation_plan("canary", "patchtst", BASELINE, weight=0.1, conf_cap=absent)
    assert "QSC_CANARY_CONF_CAP" not in plan["dropin"]["environment"]
    assert plan["conf_cap"] is None and plan["prove"]["conf_cap"] is None


@pytest.mark.parametrize(("given", "cap"), [(1, 1.0), ("1.0", 1.0), (0.5, 0.5), ("1e-3", 0.001)])
def test_a_cap_in_0_1(given, cap) -> None:
    assert validate_conf_cap(given) == cap


@pytest.mark.parametrize(
    "bad", [0, "0", -0.5, 1.5, "1.0001", "nan", float("inf"), "0.7x", True, [0.5], {"a": 1}]
)
def test_a_bad_cap_is_refused_by_the_plan(bad) -> None:
    with pytest.raises(WeightsError, match=r"conf_cap must be a finite number in \(0, 1\]"):
        activation_plan("canary", "patchtst", BASELINE, weight=0.1, conf_cap=bad)


def capped_step(step: float, cap: float | None) -> dict:
    startup = {
        "voting": canary_weights(BASELINE, "patchtst", step),
        "shadow": {},
        "canary": {"model": "patchtst", "weight": step, "weights": {}},
        "conf_caps": {} if cap is None else {"patchtst": cap},
    }
    return startup


def promote_plan(startup: dict, **options) -> dict:
    return activation_plan("promotion", "patchtst", BASELINE, startup, host="h1", **options)


def test_a_promotion_step_keeps_the_cap_the_engine_runs() -> None:
    plan = promote_plan(capped_step(0.1, 0.75))
    assert plan["to"] == 0.25 and plan["conf_cap"] == 0.75
    assert plan["dropin"]["environment"]["QSC_CANARY_CONF_CAP"] == "0.75"
    assert plan["prove"]["conf_cap"] == 0.75


def test_a_promotion_step_changes_or_removes_the_cap_when_given() -> None:
    changed = promote_plan(capped_step(0.1, 0.75), conf_cap="0.6")
    assert changed["dropin"]["environment"]["QSC_CANARY_CONF_CAP"] == "0.6"
    removed = promote_plan(capped_step(0.1, 0.75), conf_cap="")
    assert "QSC_CANARY_CONF_CAP" not in removed["dropin"]["environment"]
    assert removed["conf_cap"] is None
    with pytest.raises(WeightsError):
        promote_plan(capped_step(0.1, 0.75), conf_cap="2")


def test_the_promoted_state_has_no_drop_in_and_no_cap() -> None:
    plan = promote_plan(capped_step(0.5, 0.75))
    assert plan["to"] == 1.0 and plan["dropin"] == {"state": "absent", "environment": {}}
    assert plan["conf_cap"] is None and plan["prove"]["conf_cap"] is None
    assert plan["record"]["conf_cap"] is None


def test_a_promotion_out_of_shadow_takes_a_cap_when_given() -> None:
    shadow = {"voting": {"xgb": 0.25}, "shadow": {"patchtst": 0.2}, "canary": None}
    assert promote_plan(shadow)["conf_cap"] is None
    assert promote_plan(shadow, conf_cap=0.8)["dropin"]["environment"]["QSC_CANARY_CONF_CAP"] == (
        "0.8"
    )


# --------------------------------------------------------------------------- the files' config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"QSC_CANARY_CONF_CAP": "0.75"}, "QSC_CANARY_CONF_CAP is set without QSC_CANARY_MODEL"),
        ({"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_CONF_CAP": "0"}, "must be in (0, 1]"),
        ({"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_CONF_CAP": "1.5"}, "must be in (0, 1]"),
        ({"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_CONF_CAP": "nan"}, "must be in (0, 1]"),
    ],
)
def test_the_files_config_refuses_what_the_engine_refuses(values, message) -> None:
    with pytest.raises(EngineConfigError) as raised:
        expected_from_environment(values, BASELINE)
    assert message in str(raised.value)


# --------------------------------------------------------------------------- start-up lines


def test_startup_parses_the_cap_of_the_ok_line() -> None:
    report = parse_startup(
        [
            "[OK] xgb agent loaded (weight: 28.125%)",
            "[OK] patchtst agent loaded (weight: 10%) conf_cap=0.75",
        ]
    )
    assert report.voting["patchtst"] == 0.1 and report.voting["xgb"] == 0.28125
    assert report.conf_caps == {"patchtst": 0.75}
    assert report.anomalies == []
    assert report.as_dict()["conf_caps"] == {"patchtst": 0.75}


@pytest.mark.parametrize("text", ["0", "1.5", "x", "", "-0.5"])
def test_startup_reports_a_bad_cap_as_an_anomaly(text: str) -> None:
    report = parse_startup([f"[OK] patchtst agent loaded (weight: 10%) conf_cap={text}"])
    assert report.conf_caps == {} and report.voting == {"patchtst": 0.1}
    assert len(report.anomalies) == 1 and "conf_cap" in report.anomalies[0]


# --------------------------------------------------------------------------- the proof


CAPPED_DROPIN = (
    "[Service]\n"
    'Environment="QSC_CANARY_MODEL=patchtst"\n'
    'Environment="QSC_CANARY_WEIGHT=0.1"\n'
    f'Environment="QSC_MODEL_WEIGHTS={CANARY_WEIGHTS}"\n'
    'Environment="QSC_CANARY_CONF_CAP=0.75"\n'
)
DESIGN_CANARY = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}


@pytest.fixture
def capped_host(tmp_path) -> FakeHost:
    """A host restarted on a canary drop-in with a cap (the reference engine's lines)."""
    env = tmp_path / "ai-engine.env"
    env.write_text("PATCHTST_SHADOW_ONLY=false\nENGINE_RATE=100\n")
    host = FakeHost(env, tmp_path / "engine.service.d")
    host.dropin_dir.mkdir()
    (host.dropin_dir / "qsc_canary.conf").write_text(CAPPED_DROPIN)
    host.start()
    return host


def prove(host: FakeHost, cap: float | None) -> dict:
    clock = FakeClock()
    expected = ModelExpectation(
        "patchtst", weight=0.1, weights=DESIGN_CANARY, canary=True, conf_cap=cap
    ).checked()
    return prove_start(
        host,
        UNIT,
        host.invocation,
        checkout="/home/qt/quantum_trader",
        baseline=FAKE_BASELINE,
        expected=expected,
        clock=clock,
        sleep=clock.sleep,
    )


def test_the_proof_shows_the_cap_asked_for(capped_host) -> None:
    proof = prove(capped_host, 0.75)
    assert proof["startup"]["conf_caps"] == {"patchtst": 0.75}
    assert proof["config"]["canary_conf_cap"] == 0.75
    assert "patchtst confidence capped at 0.75" in proof["statements"]


def test_a_start_with_another_cap_than_asked_fails_the_proof(capped_host) -> None:
    with pytest.raises(StepFailed) as failed:
        prove(capped_host, 0.6)
    assert failed.value.step == STEP_ROLE
    assert "patchtst does not show conf_cap=0.6 in its [OK] line: conf_cap=0.75" in str(
        failed.value
    )


def test_a_start_that_ignores_the_cap_of_its_files_fails_the_proof(capped_host) -> None:
    journal = capped_host.journals[capped_host.invocation]
    capped_host.journals[capped_host.invocation] = [
        line.replace(" conf_cap=0.75", "") for line in journal
    ]
    with pytest.raises(StepFailed) as failed:
        prove(capped_host, None)
    assert failed.value.step == STEP_CONFIG
    assert "conf_cap of patchtst: the engine logged none, the files set 0.75" in str(failed.value)


def test_a_cap_the_files_do_not_set_fails_the_proof() -> None:
    startup = {"voting": {}, "shadow": {}, "canary": None, "conf_caps": {"xgb": 0.5}}
    expected = {"voting": {}, "shadow": {}, "weights": {}, "canary": None, "canary_weight": None}
    assert config_differences(startup, {**expected, "canary_conf_cap": None}) == [
        "conf_cap of xgb: the engine logged 0.5, the files set none"
    ]


@pytest.mark.parametrize(
    "options",
    [{"conf_cap": 0.0}, {"conf_cap": 1.5}, {"conf_cap": float("nan")}, {"role": "shadow"}],
)
def test_an_expectation_of_a_cap_that_cannot_be_proven_is_refused(options) -> None:
    options = {"conf_cap": 0.5, **options}
    with pytest.raises(EngineStateError, match="conf_cap must be in"):
        ModelExpectation("patchtst", **options).checked()


# --------------------------------------------------------------------------- telemetry parsing


def capped_payloads(count: int, cap: str = "0.6", **env: str) -> list[bytes]:
    engine = Engine(load_config(engine_env(cap, **env)))
    return [
        engine.step(i / 10, MOMENT + timedelta(milliseconds=37 * i)).json.encode()
        for i in range(count)
    ]


CAPPED_POOL = [
    *capped_payloads(60),
    *capped_payloads(30, "1.0", SIM_PATCHTST="flaky"),
    *capped_payloads(30, "0.55", SIM_PATCHTST="noisy", PATCHTST_SHADOW_ONLY="false"),
]


def test_capped_events_are_judged_on_their_raw_confidence(monkeypatch) -> None:
    hits = fast_path_hits(monkeypatch)
    payloads = capped_payloads(300)
    entries = entries_of(payloads)
    window = build(entries, [120], fast=True)
    assert window.n == 300 and not window.malformed
    assert sum(hits) == 299  # all but the first, which teaches the capped layout
    assert_same(window, build(entries, [], fast=False))
    columns = window.models["patchtst"]
    raw = [json.loads(p)["model_breakdown"]["patchtst"]["raw_confidence"] for p in payloads]
    assert columns.confidence.tolist() == raw
    assert columns.capped.all() and columns.capped_events == 300
    assert max(raw) > 0.6  # so the published ones were capped, and are not what is judged
    assert not window.models["xgb"].capped.any()


@settings(SETTINGS, max_examples=100)
@given(st.randoms(use_true_random=False), st.integers(1, 40), st.floats(0.0, 1.0))
def test_capped_fast_path_equals_the_general_parser(rnd, count: int, share: float) -> None:
    """Capped engine events (active and inactive canary), some mutated, in random pages."""
    assert_both_paths_alike(rnd, CAPPED_POOL, count, share)


@pytest.mark.parametrize(
    "value", [b"0", b"1", b"1.0", b"0.0", b"1.5", b"-0.1", b"NaN", b"1e-1", b'"0.6"', b"null"]
)
@pytest.mark.parametrize("key", [b"raw_confidence", b"confidence_cap"])
def test_every_raw_and_cap_value_alike_on_both_paths(key: bytes, value: bytes) -> None:
    payloads = []
    for payload in CAPPED_POOL[:20]:
        start = payload.index(b'"%s":' % key) + len(key) + 3
        end = min(payload.index(b",", start), payload.index(b"}", start))
        payloads.append(payload[:start] + value + payload[end:])
    entries = entries_of([CAPPED_POOL[0], *payloads])
    assert_same(build(entries, [5], fast=True), build(entries, [], fast=False))


def entry_reason(entry: dict) -> str:
    event = json.loads(CAPPED_POOL[0])
    event["model_breakdown"]["patchtst"] = entry
    window = parse_window([("1-0", json.dumps(event))])
    assert window.n == 0
    return window.malformed[0].reason


def test_a_bad_raw_confidence_or_cap_is_a_malformed_event() -> None:
    good = {"action": "BUY", "confidence": 0.6, "model": "patchtst"}
    assert entry_reason({**good, "raw_confidence": 1.2}) == (
        "model patchtst: raw_confidence 1.2 not in [0, 1]"
    )
    assert entry_reason({**good, "raw_confidence": "0.7"}) == (
        "model patchtst: raw_confidence '0.7' is not a number"
    )
    assert entry_reason({**good, "raw_confidence": 0.7, "confidence_cap": 0}) == (
        "model patchtst: confidence_cap 0 not in (0, 1]"
    )
    assert entry_reason(
        {"inactive": True, "inactive_reason": "x", "raw_confidence": 0.7, "model": "patchtst"}
    ) == ("model patchtst: inactive with action or confidence")


def test_without_a_cap_nothing_is_capped() -> None:
    window = parse_window(entries_of(capped_payloads(20, None)))
    assert window.n == 20 and not window.models["patchtst"].capped.any()
    assert window.models["patchtst"].capped_events == 0


# --------------------------------------------------------------------------- the gate


def flat_published(payloads: list[bytes], published: float) -> list[bytes]:
    """The events as an engine would publish them with every confidence of patchtst capped
    at ``published`` (all raw ones above it): the published values are constant."""
    result = []
    for payload in payloads:
        event = json.loads(payload)
        entry = event["model_breakdown"]["patchtst"]
        entry["confidence"] = published
        entry["raw_confidence"] = max(entry["raw_confidence"], published + 0.01)
        entry["confidence_cap"] = published
        result.append(json.dumps(event, separators=(",", ":")).encode())
    return result


def test_the_gate_judges_raw_confidences_and_says_so() -> None:
    payloads = flat_published(capped_payloads(400, "1.0"), 0.3)
    window = parse_window(entries_of(payloads))
    result = evaluate(window, model="patchtst")
    # The published confidences are all 0.3 (constant output); the raw ones are healthy.
    assert result["verdict"] == "PASS", result["blockers"]
    assert result["models"]["patchtst"]["capped_events"] == 400
    assert result["raw_confidences"] == {"patchtst": 400}
    assert result["summary"].endswith("; judged on raw confidences: patchtst 400 events capped")
    report = render_quality_gate(result, MOMENT)
    assert "Judged on raw confidences" in report and "`patchtst` 400 events capped" in report
    # The same events without raw_confidence are judged on what was published: constant.
    stripped = [
        json.dumps(
            {
                **(event := json.loads(p)),
                "model_breakdown": {
                    name: {k: v for k, v in entry.items() if k not in RAW_KEYS}
                    for name, entry in event["model_breakdown"].items()
                },
            },
            separators=(",", ":"),
        ).encode()
        for p in payloads
    ]
    plain = evaluate(parse_window(entries_of(stripped)), model="patchtst")
    assert plain["verdict"] == "FAIL" and plain["raw_confidences"] == {}
    assert any("constant output" in blocker for blocker in plain["blockers"])
    assert "raw confidences" not in plain["summary"]


RAW_KEYS = ("raw_confidence", "confidence_cap")


# --------------------------------------------------------------------------- the monitor


def test_the_probe_reads_raw_confidences_and_counts_the_capped(redis_client, redis_stream):
    payloads = capped_payloads(40)
    for payload in payloads:
        redis_client.xadd(redis_stream, {"payload": payload})
    found = probe_telemetry(redis_client, redis_stream, "patchtst", "0-0", None, 1000, stop=False)
    read = found["observations"]
    raw = [json.loads(p)["model_breakdown"]["patchtst"]["raw_confidence"] for p in payloads]
    assert [row[2] for row in read["rows"]] == raw
    assert read["capped"] == 40
    other = probe_telemetry(redis_client, redis_stream, "xgb", "0-0", None, 1000, stop=False)
    assert other["observations"]["capped"] == 0


@pytest.mark.parametrize("rate", [1 / 60, 100.0])
def test_the_monitor_says_it_judged_raw_confidences(rate: float) -> None:
    host = MonitorHost()
    rows = host.make(healthy_rows, 60)
    item = monitor_probe(rows, rate=rate)
    item["observations"]["capped"] = 45
    check = host.check(item)
    assert check["status"] == "ok" and check["capped_events"] == 45
    assert "judged on raw confidences: 45 events capped" in describe_check("h1", check)
    again = host.check(monitor_probe(host.make(healthy_rows, 60), rate=rate))
    assert "capped_events" not in again and host.state["capped_events"] == 45
    assert "raw confidences" not in describe_check("h1", again)
