"""The activation's check of the gate result with the site's feature reference
(``model_safety_gate_refusals(model, overrides, feature_reference)``): a canary is refused
unless the gate judged the features against that very file and found no blocker, so no gate
variable (``-e model_gate_feature_reference=''``) lets it past on features out of
distribution."""

from __future__ import annotations

import pytest

from model_safety.judgement.gate_acceptance import gate_refusals
from tests.unit.test_gate_acceptance import passing

REFERENCE = "/var/lib/model-safety/feature_reference.json"


def judged(status: str, path: str | None = REFERENCE) -> dict:
    return passing(drift={"status": status, "reference": {"path": path} if path else None})


@pytest.mark.parametrize("status", ["ok", "warn"])
def test_a_pass_judged_against_the_reference_is_accepted(status) -> None:
    assert gate_refusals(judged(status), "patchtst", {}, REFERENCE) == []


@pytest.mark.parametrize(
    ("result", "refusal"),
    [
        (passing(), f"the gate judged the features against no reference, not {REFERENCE}"),
        (
            judged("not_judged", None),
            f"the gate judged the features against no reference, not {REFERENCE}",
        ),
        (
            judged("ok", "/tmp/other.json"),
            f"the gate judged the features against /tmp/other.json, not {REFERENCE}",
        ),
        (judged("block"), "the gate's feature drift is 'block', not ok"),
        (judged("undecided"), "the gate's feature drift is 'undecided', not ok"),
        (judged("error"), "the gate's feature drift is 'error', not ok"),
    ],
    ids=["no_drift_key", "not_judged", "other_file", "block", "undecided", "error"],
)
def test_anything_else_is_refused(result, refusal) -> None:
    assert gate_refusals(result, "patchtst", {}, REFERENCE) == [refusal]


def test_without_a_site_reference_drift_is_not_required() -> None:
    assert gate_refusals(passing(), "patchtst", {}, "") == []
    assert gate_refusals(judged("block"), "patchtst", {}, None) == []
