"""Unit tests of the logic behind the git_build and journal_proof modules (engine_state):
argv built, git answers interpreted, the journal polled with an injected clock and sleep."""

from __future__ import annotations

import re

import pytest

from model_safety.engine.commands import CommandError, EngineStateError
from model_safety.engine.git import read_git_build
from model_safety.engine.journal_proof import (
    compile_patterns,
    find_forbidden_lines,
    find_journal_lines,
    proof_failure_message,
    prove_journal,
)
from tests.fake_clock import FakeClock
from tests.systemd_fakes import journal_argv

UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
CHECKOUT = "/home/qt/quantum_trader"
SHA = "18c7dbbcf755e62a331fc3064c5f75f832cbf1ea"
GIT = ["git", "--no-optional-locks", "-C", CHECKOUT, "-c", f"safe.directory={CHECKOUT}"]

STARTUP = [
    "AI_ENGINE_BUILD: 18c7dbb",
    "[PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth (present, sha256 0123456789ab)",
    "[OK] xgb agent loaded (weight: 25%)",
    "[OK] lgbm agent loaded (weight: 25%)",
    "[OK] nhits agent loaded (weight: 30%)",
    "[SHADOW] patchtst agent loaded in shadow mode (weight: 20%, never votes)",
    "[READY] publishing to quantum:stream:trade.intent at 10/s, symbols=BTCUSDT",
]
BUILD = r"^AI_ENGINE_BUILD: 18c7dbb$"
XGB = r"^\[OK\] xgb agent loaded \(weight: 25%\)$"


class FakeGit:
    """Answers git subcommands (the argv after the common prefix) and records every argv."""

    def __init__(
        self,
        sha: str = SHA,
        short: str = "18c7dbb",
        status: str = "",
        branch: tuple[int, str] = (0, "main\n"),
        head: tuple[int, str, str] | None = None,
    ) -> None:
        self.calls: list[list[str]] = []
        self.answers = {
            ("rev-parse", "--verify", "HEAD^{commit}"): head or (0, sha + "\n", ""),
            ("rev-parse", "--short", sha): (0, short + "\n", ""),
            ("status", "--porcelain", "--untracked-files=no"): (0, status, ""),
            ("symbolic-ref", "--quiet", "--short", "HEAD"): (branch[0], branch[1], ""),
        }

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list), "argv lists only, never shell strings"
        assert all(isinstance(arg, str) for arg in argv)
        self.calls.append(argv)
        assert argv[: len(GIT)] == GIT, argv
        return self.answers.get(tuple(argv[len(GIT) :]), (99, "", f"unexpected {argv}"))


# --------------------------------------------------------------------------- git_build


def test_clean_checkout_on_a_branch():
    run = FakeGit()
    assert read_git_build(run, CHECKOUT) == {
        "sha": SHA,
        "short": "18c7dbb",
        "dirty": False,
        "branch": "main",
    }
    assert run.calls == [
        [*GIT, "rev-parse", "--verify", "HEAD^{commit}"],
        [*GIT, "rev-parse", "--short", SHA],
        [*GIT, "status", "--porcelain", "--untracked-files=no"],
        [*GIT, "symbolic-ref", "--quiet", "--short", "HEAD"],
    ]


def test_modified_tracked_file_makes_it_dirty():
    run = FakeGit(status=" M ai_engine/service.py\n")
    assert read_git_build(run, CHECKOUT)["dirty"] is True


def test_whitespace_only_status_is_clean():
    assert read_git_build(FakeGit(status="\n"), CHECKOUT)["dirty"] is False


def test_detached_head_has_no_branch():
    build = read_git_build(FakeGit(branch=(1, "")), CHECKOUT)
    assert build["branch"] is None
    assert build["sha"] == SHA


def test_short_is_as_long_as_git_makes_it():
    build = read_git_build(FakeGit(short="18c7dbbcf7"), CHECKOUT)
    assert build["short"] == "18c7dbbcf7"


def test_uppercase_sha_is_normalised():
    run = FakeGit()
    run.answers[("rev-parse", "--verify", "HEAD^{commit}")] = (0, SHA.upper() + "\n", "")
    assert read_git_build(run, CHECKOUT)["sha"] == SHA


def test_not_a_git_checkout_fails_clearly():
    head = (128, "", "fatal: not a git repository (or any of the parent directories): .git\n")
    with pytest.raises(EngineStateError, match="not a readable git checkout") as caught:
        read_git_build(FakeGit(head=head), CHECKOUT)
    assert "not a git repository" in str(caught.value)


def test_missing_git_fails_clearly():
    head = (127, "", "cannot run git: [Errno 2] No such file or directory: 'git'")
    with pytest.raises(EngineStateError, match="git is missing or cannot run"):
        read_git_build(FakeGit(head=head), CHECKOUT)


@pytest.mark.parametrize("output", ["", "HEAD\n", "1234\n", SHA[:39] + "\n", SHA + "0\n"])
def test_anything_but_a_sha_is_refused(output):
    with pytest.raises(EngineStateError, match="returned"):
        read_git_build(FakeGit(head=(0, output, "")), CHECKOUT)


@pytest.mark.parametrize("short", ["", "18c", "9999999", "18c7dbb\n18c7dbb", "18C7DBB!"])
def test_a_short_sha_that_is_not_a_prefix_is_refused(short):
    with pytest.raises(EngineStateError, match="rev-parse --short"):
        read_git_build(FakeGit(short=short), CHECKOUT)


def test_failing_symbolic_ref_is_not_taken_for_detached():
    with pytest.raises(CommandError, match="symbolic-ref"):
        read_git_build(FakeGit(branch=(128, "")), CHECKOUT)


@pytest.mark.parametrize("checkout", ["relative/path", "/a/../b", "/a/", "/a\nb", ""])
def test_bad_checkout_never_reaches_git(checkout):
    run = FakeGit()
    with pytest.raises(EngineStateError, match="normalised absolute path"):
        read_git_build(run, checkout)
    assert run.calls == []


# --------------------------------------------------------------------------- patterns


def test_find_journal_lines_returns_first_match_and_missing_in_order():
    patterns = compile_patterns([XGB, BUILD, r"^\[OK\] \w+ agent", "^nowhere$"])
    matched, missing = find_journal_lines(STARTUP, patterns)
    assert matched == {
        XGB: "[OK] xgb agent loaded (weight: 25%)",
        BUILD: "AI_ENGINE_BUILD: 18c7dbb",
        r"^\[OK\] \w+ agent": "[OK] xgb agent loaded (weight: 25%)",
    }
    assert list(matched) == list(patterns)[:3]
    assert missing == ["^nowhere$"]


def test_anchors_apply_to_each_line():
    patterns = compile_patterns([r"^AI_ENGINE_BUILD: 18c7db$", r"^AI_ENGINE_BUILD: 18c7dbb$"])
    matched, missing = find_journal_lines(["AI_ENGINE_BUILD: 18c7dbb"], patterns)
    assert list(matched) == [r"^AI_ENGINE_BUILD: 18c7dbb$"]
    assert missing == [r"^AI_ENGINE_BUILD: 18c7db$"]


def test_literal_patterns_are_fixed_strings():
    line = "[OK] xgb agent loaded (weight: 25%)"
    literal = compile_patterns([line, "loaded (weight"], literal=True)
    assert find_journal_lines([line], literal) == ({line: line, "loaded (weight": line}, [])
    dotted = compile_patterns(["xgb.agent"], literal=True)
    assert find_journal_lines([line], dotted) == ({}, ["xgb.agent"])


@pytest.mark.parametrize("bad", ["(unclosed", "[a-", "*x", "a{2,1}"])
def test_invalid_regex_is_named(bad):
    with pytest.raises(EngineStateError, match="invalid regular expression") as caught:
        compile_patterns(["fine", bad])
    assert repr(bad) in str(caught.value)


def test_invalid_regex_is_fine_as_a_literal():
    assert list(compile_patterns(["(unclosed"], literal=True)) == ["(unclosed"]


@pytest.mark.parametrize("bad", ["", None, 3])
def test_empty_or_non_string_pattern_is_refused(bad):
    with pytest.raises(EngineStateError, match="non-empty string"):
        compile_patterns([bad])


def test_find_forbidden_lines_keeps_order_and_limit():
    lines = ["[ERROR] a", "ok", "[FATAL] b", "x [ERROR] not at start", *["[ERROR] c"] * 5]
    forbidden = compile_patterns([r"^\[(ERROR|FATAL)\]"])
    assert find_forbidden_lines(lines, forbidden, limit=3) == [
        "[ERROR] a",
        "[FATAL] b",
        "[ERROR] c",
    ]
    assert len(find_forbidden_lines(lines, forbidden)) == 7
    assert find_forbidden_lines(lines, {}) == []


# --------------------------------------------------------------------------- polling


class FakeJournal:
    """A journal that grows: read n returns ``batches[min(n, last)]``; time is simulated."""

    def __init__(self, batches: list[list[str]], rc: int = 0, stderr: str = "") -> None:
        self.batches = batches
        self.rc = rc
        self.stderr = stderr
        self.calls: list[list[str]] = []
        self.clock = FakeClock()

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list)
        self.calls.append(argv)
        self.clock.now += 0.01  # a read takes a little time
        lines = self.batches[min(len(self.calls) - 1, len(self.batches) - 1)]
        return self.rc, "".join(line + "\n" for line in lines), self.stderr

    def prove(self, patterns, **options):
        return prove_journal(
            self, UNIT, INVOCATION, patterns, clock=self.clock, sleep=self.clock.sleep, **options
        )


JOURNALCTL = journal_argv(UNIT, INVOCATION)


def test_found_at_once_reads_once():
    journal = FakeJournal([STARTUP])
    proof = journal.prove([BUILD, XGB])
    assert proof["proven"] is True
    assert proof["matched"] == {BUILD: STARTUP[0], XGB: STARTUP[2]}
    assert proof["missing"] == [] and proof["found_forbidden"] == []
    assert proof["lines_read"] == len(STARTUP) and proof["reads"] == 1
    assert journal.calls == [JOURNALCTL]
    assert journal.clock.sleeps == []
    assert proof["startup"]["build"] == "18c7dbb"
    assert proof["startup"]["voting"] == {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3}
    assert proof["startup"]["ready"] is True


def test_lines_found_after_some_polls():
    journal = FakeJournal([[], STARTUP[:1], STARTUP[:2], STARTUP])
    proof = journal.prove([BUILD, XGB], timeout=30)
    assert proof["proven"] is True
    assert proof["reads"] == 4
    assert journal.clock.sleeps == [0.5, 0.5, 0.5]
    assert proof["elapsed"] == pytest.approx(1.54)
    assert all(call == JOURNALCTL for call in journal.calls)


def test_timeout_reports_what_is_missing():
    journal = FakeJournal([STARTUP[:1]])
    proof = journal.prove([BUILD, XGB], timeout=2)
    assert proof["proven"] is False
    assert proof["matched"] == {BUILD: STARTUP[0]}
    assert proof["missing"] == [XGB]
    # Polls every 0.5 s and never waits past the timeout.
    assert proof["elapsed"] == pytest.approx(2.0, abs=0.02)
    assert sum(journal.clock.sleeps) <= 2.0
    assert all(0 <= s <= 0.5 for s in journal.clock.sleeps)
    assert 4 <= proof["reads"] <= 5
    message = proof_failure_message(UNIT, INVOCATION, proof)
    assert f"invocation {INVOCATION}" in message and repr(XGB) in message
    assert "not found after 2" in message


def test_zero_timeout_reads_exactly_once():
    journal = FakeJournal([[], STARTUP])
    proof = journal.prove([BUILD], timeout=0)
    assert proof["proven"] is False and proof["reads"] == 1 and journal.clock.sleeps == []


def test_empty_journal_of_unknown_invocation_fails_after_timeout():
    journal = FakeJournal([[]])
    proof = journal.prove([BUILD], timeout=1)
    assert proof["proven"] is False and proof["missing"] == [BUILD]
    assert proof["lines_read"] == 0
    assert proof["startup"]["build"] is None


def test_forbidden_line_fails_at_once_even_with_everything_found():
    lines = [*STARTUP, "[ERROR] redis: connection refused"]
    journal = FakeJournal([lines])
    proof = journal.prove([BUILD], forbidden=[r"^\[(ERROR|FATAL)\]"], timeout=30)
    assert proof["proven"] is False
    assert proof["missing"] == []
    assert proof["found_forbidden"] == ["[ERROR] redis: connection refused"]
    assert proof["reads"] == 1
    assert proof["startup"]["errors"] == ["[ERROR] redis: connection refused"]
    message = proof_failure_message(UNIT, INVOCATION, proof)
    assert "forbidden" in message and "connection refused" in message


def test_forbidden_line_stops_the_wait_for_missing_patterns():
    journal = FakeJournal([[], ["AI_ENGINE_BUILD: 18c7dbb", "[FATAL] config: bad"]])
    proof = journal.prove([BUILD, XGB], forbidden=[r"^\[(ERROR|FATAL)\]"], timeout=30)
    assert proof["reads"] == 2
    assert proof["missing"] == [XGB] and proof["found_forbidden"] == ["[FATAL] config: bad"]
    message = proof_failure_message(UNIT, INVOCATION, proof)
    assert repr(XGB) in message and "[FATAL] config: bad" in message


def test_forbidden_lines_are_capped_in_the_message():
    journal = FakeJournal([[f"[ERROR] e{i}" for i in range(10)]])
    proof = journal.prove(["x"], forbidden=[r"^\[ERROR\]"], timeout=0)
    assert len(proof["found_forbidden"]) == 10
    assert "(+7 more)" in proof_failure_message(UNIT, INVOCATION, proof)


def test_literal_applies_to_patterns_not_to_forbidden():
    journal = FakeJournal([[*STARTUP, "[ERROR] boom"]])
    proof = journal.prove(
        ["[OK] xgb agent loaded (weight: 25%)"], literal=True, forbidden=[r"^\[ERROR\]"]
    )
    assert proof["missing"] == []
    assert proof["found_forbidden"] == ["[ERROR] boom"]


def test_journalctl_failure_raises():
    journal = FakeJournal([[]], rc=1, stderr="Failed to open journal")
    with pytest.raises(CommandError, match="Failed to open journal"):
        journal.prove([BUILD])


@pytest.mark.parametrize(
    ("invocation", "unit"),
    [
        ("0123456789ABCDEF0123456789ABCDEF", UNIT),
        ("0123456789abcdef", UNIT),
        ("0123456789abcdef0123456789abcdef\n", UNIT),
        ("; rm -rf /", UNIT),
        ("", UNIT),
        (INVOCATION, "../evil"),
        (INVOCATION, "a b.service"),
    ],
)
def test_bad_invocation_or_unit_never_reaches_journalctl(invocation, unit):
    journal = FakeJournal([STARTUP])
    with pytest.raises(EngineStateError, match="not a"):
        prove_journal(journal, unit, invocation, [BUILD], clock=journal.clock)
    assert journal.calls == []


def test_bad_regex_never_reaches_journalctl():
    journal = FakeJournal([STARTUP])
    with pytest.raises(EngineStateError, match=re.escape("forbidden: invalid regular")):
        journal.prove([BUILD], forbidden=["[ERROR"])
    with pytest.raises(EngineStateError, match=re.escape("patterns: invalid regular")):
        journal.prove(["(x"])
    assert journal.calls == []


def test_no_pattern_is_no_proof():
    journal = FakeJournal([STARTUP])
    with pytest.raises(EngineStateError, match="at least one pattern"):
        journal.prove([])
    assert journal.calls == []


@pytest.mark.parametrize("timeout", [-1, 3601, float("nan"), float("inf"), True, "30"])
def test_bad_timeout_is_refused(timeout):
    journal = FakeJournal([STARTUP])
    with pytest.raises(EngineStateError, match="timeout"):
        journal.prove([BUILD], timeout=timeout)
    assert journal.calls == []


def test_result_is_json_serialisable():
    import json

    proof = FakeJournal([STARTUP]).prove([BUILD], forbidden=["^never$"])
    assert json.loads(json.dumps(proof)) == proof
