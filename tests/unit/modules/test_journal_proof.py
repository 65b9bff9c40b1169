"""The journal_proof module through its main() against the fake journalctl: bad unit names,
invocation ids and patterns refused before journalctl runs, a proof, a missing line, a
forbidden line, and check mode (read-only: the same answer)."""

from __future__ import annotations

import pytest

from tests.module_harness import INVOCATION, UNIT, fails, succeeds

MODULE = "journal_proof"
JOURNAL = [
    "AI_ENGINE_BUILD: 1a2b3c4",
    "[OK] xgb agent loaded (weight: 31.25%)",
    "[SHADOW] patchtst loaded (weight: 10%)",
    "engine ready",
]
PROVE = {"unit": UNIT, "invocation_id": INVOCATION, "timeout": 0.2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"unit": "../x.service"}, "not a valid systemd unit name: '../x.service'"),
        ({"unit": "a.service\nrm"}, "not a valid systemd unit name"),
        ({"invocation_id": "_SYSTEMD_UNIT=sshd"}, "not a systemd invocation id (32 lowercase"),
        ({"invocation_id": INVOCATION.upper()}, "not a systemd invocation id (32 lowercase"),
        ({"patterns": []}, "patterns: at least one pattern is required"),
        ({"patterns": ["(unclosed"]}, "(unclosed"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_bad_options_run_no_journalctl(fake_systemd, args, message) -> None:
    result = fails(MODULE, {**PROVE, "patterns": ["ready"], **args})
    assert result["msg"].startswith("journal proof impossible: ")
    assert message in result["msg"]
    assert fake_systemd.calls() == []


def test_invocation_id_and_patterns_are_required() -> None:
    result = fails(MODULE, {"unit": UNIT})
    assert "missing required arguments: invocation_id, patterns" in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_lines_are_proven_in_that_invocation(fake_systemd, check_mode) -> None:
    fake_systemd.set(journal=JOURNAL)
    args = {**PROVE, "patterns": [r"AI_ENGINE_BUILD: [0-9a-f]{7}", "engine ready"]}
    result = succeeds(MODULE, {**args, "forbidden": [r"\[ERROR\]"]}, check_mode=check_mode)
    assert (result["changed"], result["invocation_id"], result["missing"]) == (
        False,
        INVOCATION,
        [],
    )
    assert fake_systemd.calls()[0][-1] == f"_SYSTEMD_INVOCATION_ID={INVOCATION}"


def test_a_missing_line_fails_naming_it(fake_systemd) -> None:
    fake_systemd.set(journal=JOURNAL)
    result = fails(MODULE, {**PROVE, "patterns": ["[CANARY] patchtst"], "literal": True})
    assert result["msg"].startswith(
        f"journal proof failed for invocation {INVOCATION} of {UNIT} (4 lines read): not found"
    )
    assert result["missing"] == ["[CANARY] patchtst"]


def test_a_forbidden_line_fails_quoting_it(fake_systemd) -> None:
    fake_systemd.set(journal=[*JOURNAL, "[ERROR] config: SIM_XGB: unknown behaviour"])
    result = fails(MODULE, {**PROVE, "patterns": ["ready"], "forbidden": [r"\[ERROR\]"]})
    assert (
        "forbidden line(s) present: '[ERROR] config: SIM_XGB: unknown behaviour'" in result["msg"]
    )


def test_journalctl_failing_makes_the_proof_impossible(fake_systemd) -> None:
    fake_systemd.set(fail={"journalctl": "Failed to access the journal"})
    result = fails(MODULE, {**PROVE, "patterns": ["ready"]})
    assert result["msg"].startswith("journal proof impossible: `journalctl")
    assert "Failed to access the journal" in result["msg"]
