"""prove_start against a fake host that logs what the reference engine logs for its files:
the build, READY and the config of the files proven; each model expectation (voting at a
weight, canary with its weights, shadow-only, model file) proven and refused, each with the
step it fails at; and the expectations that cannot be proven refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_safety.engine.commands import EngineStateError, StepFailed
from model_safety.engine.startup_proof import (
    STEP_BUILD,
    STEP_CONFIG,
    STEP_GIT,
    STEP_JOURNAL,
    STEP_ROLE,
    ModelExpectation,
    prove_start,
)
from tests.fake_clock import FakeClock
from tests.fake_engine_host import BASELINE, SHA, UNIT, FakeHost

CHECKOUT = "/home/qt/quantum_trader"
PRISTINE = "PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\n"
CANARY_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CANARY_DROPIN = (
    "[Service]\n"
    'Environment="QSC_CANARY_MODEL=patchtst"\n'
    'Environment="QSC_CANARY_WEIGHT=0.1"\n'
    'Environment="QSC_MODEL_WEIGHTS=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"\n'
)


@pytest.fixture
def engine(tmp_path: Path) -> FakeHost:
    """A host running the pristine files (patchtst shadow)."""
    env = tmp_path / "ai-engine.env"
    env.write_text(PRISTINE)
    return FakeHost(env, tmp_path / "engine.service.d")


def canary(engine: FakeHost) -> FakeHost:
    """The same host restarted on the canary's files."""
    engine.env_file.write_text(PRISTINE.replace("=true", "=false"))
    engine.dropin_dir.mkdir()
    (engine.dropin_dir / "qsc_canary.conf").write_text(CANARY_DROPIN)
    engine.start()
    return engine


def prove(engine: FakeHost, **options) -> dict:
    clock = FakeClock()
    options.setdefault("checkout", CHECKOUT)
    return prove_start(engine, UNIT, engine.invocation, clock=clock, sleep=clock.sleep, **options)


def refused(engine: FakeHost, **options) -> StepFailed:
    with pytest.raises(StepFailed) as caught:
        prove(engine, **options)
    return caught.value


def test_the_build_ready_and_the_config_of_the_files_are_proven(engine) -> None:
    proof = prove(engine, baseline=BASELINE)
    assert (proof["invocation_id"], proof["build"], proof["git"]["sha"]) == (
        engine.invocation,
        SHA[:7],
        SHA,
    )
    assert proof["config"]["shadow"] == {"patchtst": 0.2}
    assert proof["statements"] == [
        f"build {SHA[:7]} == git HEAD {SHA[:7]}",
        "the model config of the env file and drop-ins",
    ]


def test_without_a_baseline_the_config_is_not_read(engine) -> None:
    proof = prove(engine)
    assert proof["config"] is None
    assert not any("Environment" in " ".join(argv) for argv in engine.calls)


def test_a_canary_is_proven_with_its_weights(engine) -> None:
    expected = ModelExpectation("patchtst", "voting", 0.1, CANARY_WEIGHTS, canary=True)
    proof = prove(canary(engine), baseline=BASELINE, expected=expected)
    assert proof["statements"][-2:] == [
        "patchtst loaded as a voter at 0.1",
        f"[CANARY] patchtst with {CANARY_WEIGHTS}",
    ]


def test_a_shadow_model_is_proven(engine) -> None:
    proof = prove(engine, expected=ModelExpectation("patchtst", "shadow"))
    assert proof["statements"][-1] == "patchtst loaded in shadow mode"


def test_a_voter_without_a_weight_is_proven_at_any_weight(engine) -> None:
    assert prove(engine, expected=ModelExpectation("xgb"))["statements"][-1] == (
        "xgb loaded as a voter at 0.25"
    )


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (ModelExpectation("xgb", "voting", 0.3), "xgb is not voting at 0.3: voting {"),
        (ModelExpectation("patchtst", "voting"), "patchtst is not voting: voting {"),
        (ModelExpectation("xgb", "shadow"), "xgb is not shadow-only: voting {"),
        (
            ModelExpectation("xgb", "voting", 0.25, {"xgb": 0.25}, canary=True),
            "the start runs canary None and voting weights",
        ),
        (
            ModelExpectation("xgb", model_file={"path": "/m/xgb.json", "sha256": "ab" * 32}),
            "the start did not load /m/xgb.json (present, sha256 abababababab): its "
            "model-file line is [PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth",
        ),
    ],
)
def test_a_model_not_in_its_role_fails_the_role_step(engine, expected, message) -> None:
    failure = refused(engine, expected=expected)
    assert failure.step == STEP_ROLE and message in failure.message
    assert failure.details["differences"]


def test_a_canary_with_other_weights_fails(engine) -> None:
    weights = {**CANARY_WEIGHTS, "xgb": 0.3, "lgbm": 0.2625}
    expected = ModelExpectation("patchtst", "voting", 0.1, weights, canary=True)
    failure = refused(canary(engine), expected=expected)
    assert failure.step == STEP_ROLE
    assert "xgb: 0.28125 != 0.3" in failure.message


def test_another_build_fails_before_the_config(engine) -> None:
    engine.build = "deadbee"
    engine.start()
    failure = refused(engine, baseline=BASELINE)
    assert failure.step == STEP_BUILD
    assert failure.message == (
        f"invocation {engine.invocation} runs build deadbee, the checkout {CHECKOUT} is at {SHA}"
    )


def test_an_error_line_fails_the_journal_step(engine) -> None:
    engine.journals[engine.invocation].append("[ERROR] model xgb failed to load")
    failure = refused(engine)
    assert failure.step == STEP_JOURNAL
    assert "forbidden line(s) present: '[ERROR] model xgb failed to load'" in failure.message


def test_a_start_that_never_becomes_ready_fails_after_the_timeout(engine) -> None:
    engine.journals[engine.invocation] = engine.journals[engine.invocation][:1]
    failure = refused(engine, journal_timeout=2)
    assert failure.step == STEP_JOURNAL and "not found after 2 s" in failure.message
    assert failure.details["journal_proof"]["missing"] == [r"^\[READY\]"]


def test_files_changed_since_the_start_fail_the_config_step(engine) -> None:
    engine.env_file.write_text(PRISTINE.replace("=true", "=false"))
    failure = refused(engine, baseline=BASELINE)
    assert failure.step == STEP_CONFIG
    assert failure.message.startswith(f"{UNIT} does not run the model configuration of its files")


def test_an_unreadable_checkout_fails_the_git_step(engine) -> None:
    def no_git(argv):
        return (128, "", "fatal: not a git repository") if argv[0] == "git" else engine(argv)

    with pytest.raises(StepFailed) as caught:
        prove_start(no_git, UNIT, engine.invocation, checkout=CHECKOUT)
    assert caught.value.step == STEP_GIT
    assert caught.value.message.startswith(f"cannot read the git build of {CHECKOUT}")


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (ModelExpectation("xgb", "primary"), "role must be voting or shadow"),
        (ModelExpectation("xgb", "voting", 0.1, canary=True), "a canary is proven as a voter"),
        (ModelExpectation("xgb", "shadow", weights={"xgb": 1}, canary=True), "a canary is"),
        (ModelExpectation("xgb", model_file={"path": "/m"}), "model_file needs its path and"),
    ],
)
def test_an_expectation_that_cannot_be_proven_is_refused(expected, message) -> None:
    with pytest.raises(EngineStateError, match=message):
        expected.checked()
