"""The activation plan (model_safety.activation.plan) and its filter: every kind, every step of
the promotion ladder and its edges, bad input, and float edges."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from model_safety.activation.plan import LADDER, activation_plan, current_step
from model_safety.engine.weights import WeightsError, canary_weights, format_weights
from tests import filter_plugin

BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
DESIGN_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
VOTING = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30}


def in_shadow(model: str = "patchtst") -> dict:
    return {"shadow": [model], "voting": dict(VOTING), "canary": None}


def at_step(weight: float, model: str = "patchtst") -> dict:
    weights = canary_weights(BASELINE, model, weight)
    return {"shadow": [], "voting": weights, "canary": {"model": model, "weight": weight}}


def promoted(model: str = "patchtst") -> dict:
    return {"shadow": [], "voting": dict(BASELINE), "canary": None}


def promote(startup: dict, target=None, allow_jump: bool = False) -> dict:
    return activation_plan(
        "promotion", "patchtst", BASELINE, startup, target=target, allow_jump=allow_jump, host="h1"
    )


# --------------------------------------------------------------------------- canary


def test_canary_plan_is_the_design_canary() -> None:
    plan = activation_plan("canary", "patchtst", BASELINE, weight="0.10")
    assert plan["event"] == "activation" and plan["failure_event"] == "activation_failed"
    assert plan["weights"] == DESIGN_WEIGHTS
    assert plan["env"] == {"PATCHTST_SHADOW_ONLY": "false"}
    assert plan["dropin"] == {
        "state": "present",
        "environment": {
            "QSC_CANARY_MODEL": "patchtst",
            "QSC_CANARY_WEIGHT": "0.1",
            "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
        },
    }
    assert plan["prove"] == {
        "role": "voting",
        "weight": 0.1,
        "weights": DESIGN_WEIGHTS,
        "canary": True,
        "conf_cap": None,
    }
    assert plan["restore_role"] == "shadow"
    assert plan["record"] == {
        "event": "activation",
        "model": "patchtst",
        "conf_cap": None,
        "weight": 0.1,
        "weights": DESIGN_WEIGHTS,
    }
    assert plan["from"] == 0.0 and plan["from_label"] == "shadow" and plan["to"] == 0.1
    assert plan["ladder"] == [0.1, 0.25, 0.5, 1.0]
    assert plan["refusal"] is None


@pytest.mark.parametrize("weight", [0, 1, 1.5, -0.1, "x", True, None, float("nan"), "inf"])
def test_canary_refuses_a_weight_outside_0_1(weight) -> None:
    with pytest.raises(WeightsError):
        activation_plan("canary", "patchtst", BASELINE, weight=weight)


def test_canary_weight_float_edge_is_kept_as_given() -> None:
    plan = activation_plan("canary", "patchtst", BASELINE, weight=0.1 + 0.2)
    assert plan["weights"]["patchtst"] == round(0.1 + 0.2, 12)
    assert abs(sum(plan["weights"].values()) - 1) < 1e-12


# --------------------------------------------------------------------------- shadow


def test_shadow_plan_without_a_model_file() -> None:
    plan = activation_plan("shadow", "patchtst", BASELINE, in_shadow())
    assert plan["event"] == "shadow" and plan["failure_event"] == "shadow_failed"
    assert plan["env"] == {"PATCHTST_SHADOW_ONLY": "true"}
    assert plan["dropin"] == {"state": "absent", "environment": {}}
    assert plan["prove"]["role"] == "shadow" and not plan["prove"]["canary"]
    assert plan["weights"] == {} and plan["restore_role"] == "shadow"
    assert plan["record"] == {"event": "shadow", "model": "patchtst", "model_path": None}


def test_every_plan_proves_the_keys_the_change_task_reads() -> None:
    """roles/model_activation/tasks/change.yml reads each of these from plan.prove: a key
    missing from one kind fails that kind's activation in Jinja (a shadow deployment once)."""
    plans = [
        activation_plan("shadow", "patchtst", BASELINE, in_shadow()),
        activation_plan("canary", "patchtst", BASELINE, in_shadow(), weight=0.1),
        activation_plan("canary", "patchtst", BASELINE, in_shadow(), weight=0.1, conf_cap=0.75),
        activation_plan("promotion", "patchtst", BASELINE, at_step(0.1)),
        activation_plan("promotion", "patchtst", BASELINE, at_step(0.5)),
    ]
    for plan in plans:
        assert set(plan["prove"]) == {"role", "weight", "weights", "canary", "conf_cap"}, plan
    assert plans[0]["prove"]["conf_cap"] is None and plans[2]["prove"]["conf_cap"] == 0.75


def test_shadow_plan_with_a_model_file_of_a_voting_model() -> None:
    path = "/opt/quantum/models/nhits-v2.pth"
    plan = activation_plan("shadow", "nhits", BASELINE, in_shadow(), model_path=path)
    assert plan["env"] == {"NHITS_SHADOW_ONLY": "true", "NHITS_MODEL_PATH": path}
    assert plan["restore_role"] == "voting"
    assert plan["record"]["model_path"] == path


# --------------------------------------------------------------------------- promotion ladder


def test_current_step() -> None:
    assert current_step(in_shadow(), "patchtst") == 0.0
    assert current_step(at_step(0.25), "patchtst") == 0.25
    assert current_step(promoted(), "patchtst") == 1.0
    assert current_step(at_step(0.25, "xgb"), "patchtst") == 1.0
    assert current_step({}, "patchtst") == 1.0


@pytest.mark.parametrize(
    ("startup", "start", "label", "to"),
    [
        (in_shadow(), 0.0, "shadow", 0.10),
        (at_step(0.10), 0.10, 0.10, 0.25),
        (at_step(0.25), 0.25, 0.25, 0.50),
        (at_step(0.50), 0.50, 0.50, 1.0),
    ],
)
def test_each_step_goes_to_the_next(startup, start, label, to) -> None:
    plan = promote(startup)
    assert plan["refusal"] is None
    assert (plan["from"], plan["from_label"], plan["to"], plan["next"]) == (start, label, to, to)
    assert plan["event"] == "promotion" and plan["failure_event"] == "promotion_failed"
    assert plan["env"] == {"PATCHTST_SHADOW_ONLY": "false"}
    assert plan["restore_role"] == ("shadow" if start == 0.0 else "voting")
    assert plan["record"] == {
        "event": "promotion",
        "model": "patchtst",
        "conf_cap": None,
        "from": start,
        "to": to,
        "weights": plan["weights"],
    }
    assert plan["prove"]["role"] == "voting"
    assert plan["prove"]["weight"] == plan["weights"]["patchtst"]


@pytest.mark.parametrize("step", LADDER[:-1])
def test_a_canary_step_deploys_its_canary_weights(step) -> None:
    plan = promote(in_shadow(), target=step, allow_jump=True)
    weights = canary_weights(BASELINE, "patchtst", step)
    assert plan["weights"] == weights and plan["prove"]["weights"] == weights
    assert plan["prove"]["canary"] is True
    assert plan["dropin"]["state"] == "present"
    assert plan["dropin"]["environment"]["QSC_MODEL_WEIGHTS"] == format_weights(weights)
    assert plan["dropin"]["environment"]["QSC_CANARY_WEIGHT"] == str(step)


def test_the_last_step_removes_the_canary_and_votes_at_the_baseline() -> None:
    plan = promote(at_step(0.50))
    assert plan["to"] == 1.0 and plan["weights"] == BASELINE
    assert plan["dropin"] == {"state": "absent", "environment": {}}
    assert plan["prove"] == {
        "role": "voting",
        "weight": 0.2,
        "weights": BASELINE,
        "canary": False,
        "conf_cap": None,
    }


def test_a_promoted_model_is_refused() -> None:
    plan = promote(promoted())
    assert plan["refusal"] == (
        "patchtst already votes at its baseline weight on h1 (promoted); nothing was changed"
    )
    assert plan["env"] == {} and plan["record"] == {} and plan["to"] is None


def test_a_jump_is_refused_without_allow_jump() -> None:
    plan = promote(in_shadow(), target="0.25")
    assert plan["refusal"] == (
        "patchtst is at shadow on h1: the next step is 0.1 (ladder 0.1 -> 0.25 -> 0.5 -> 1.0), "
        "0.25 is refused (a jump needs -e allow_jump=true); nothing was changed"
    )
    assert plan["next"] == 0.1 and plan["to"] is None


def test_a_jump_is_allowed_with_allow_jump() -> None:
    plan = promote(at_step(0.10), target=1.0, allow_jump=True)
    assert plan["refusal"] is None and plan["to"] == 1.0 and plan["from"] == 0.1


@pytest.mark.parametrize(
    ("startup", "target"),
    [
        (at_step(0.25), "0.1"),  # backwards
        (at_step(0.25), 0.25),  # the same step
        (in_shadow(), 0.3),  # off the ladder
        (in_shadow(), 0.1 + 0.2),  # off the ladder, however close to 0.3
        (in_shadow(), "abc"),  # no number
        (in_shadow(), "nan"),
        (in_shadow(), True),
        (in_shadow(), 0),
        (in_shadow(), 2.0),
    ],
)
def test_steps_off_the_ladder_or_backwards_are_refused(startup, target) -> None:
    plan = promote(startup, target=target, allow_jump=True)
    assert plan["refusal"] is not None and "is refused" in plan["refusal"]
    assert plan["to"] is None and plan["env"] == {}


@pytest.mark.parametrize("target", [0.1 + 0.15, 0.25 + 1e-9, "0.250", 0.25])
def test_a_step_within_the_tolerance_is_that_step(target) -> None:
    plan = promote(at_step(0.10), target=target)
    assert plan["refusal"] is None and plan["to"] == 0.25


def test_the_running_weight_read_back_is_its_step() -> None:
    # The journal's weight may differ from the ladder's text in the last digits.
    plan = promote(at_step(0.25 + 3e-13))
    assert plan["from"] == pytest.approx(0.25) and plan["to"] == 0.5


def test_a_canary_off_the_ladder_goes_to_the_next_step_above_it() -> None:
    plan = promote(at_step(0.05))
    assert plan["next"] == 0.1 and plan["to"] == 0.1


@pytest.mark.parametrize("target", [None, ""])
def test_no_target_is_the_next_step(target) -> None:
    assert promote(in_shadow(), target=target)["to"] == 0.1


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kind", "model", "baseline"),
    [
        ("rollback", "patchtst", BASELINE),
        ("canary ", "patchtst", BASELINE),
        ("canary", "tft", BASELINE),
        ("canary", "PatchTST", BASELINE),
        ("canary", "patchtst", {"patchtst": 0.5, "xgb": 0.4}),
        ("canary", "patchtst", {}),
        ("canary", "patchtst", {"patchtst": 1.0}),
    ],
)
def test_bad_input_raises_with_the_reason(kind, model, baseline) -> None:
    with pytest.raises(WeightsError):
        activation_plan(kind, model, baseline, in_shadow(), weight=0.1)


def test_the_plan_does_not_change_its_input() -> None:
    baseline, startup = dict(BASELINE), at_step(0.5)
    promote(startup)
    activation_plan("canary", "patchtst", baseline, weight=0.1)
    assert baseline == BASELINE and startup == at_step(0.5)


# --------------------------------------------------------------------------- filter


def test_the_filter_is_the_plan() -> None:
    filters = filter_plugin.filters("activation_plan")
    assert set(filters) == {"model_safety_activation_plan"}
    plan = filters["model_safety_activation_plan"]
    assert plan("canary", "patchtst", BASELINE, weight=0.1) == activation_plan(
        "canary", "patchtst", BASELINE, weight=0.1
    )
    with pytest.raises(AnsibleFilterError, match="canary weight must be strictly between"):
        plan("canary", "patchtst", BASELINE, weight=2)
