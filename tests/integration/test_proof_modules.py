"""The git_build and journal_proof modules run for real (issue 4's custom modules).

Against the lab: real `ansible` ad hoc runs over SSH on Debian bookworm hosts, compared with
what the engine itself logged (its AI_ENGINE_BUILD line comes from its own
`git rev-parse --short HEAD`). A stale build is simulated with SIM_BUILD_OVERRIDE and a real
stop + start (`configure` on the `engine_host` fixture, which puts the host back afterwards).
On the controller: git_build on throw-away git checkouts (clean, dirty, detached, not a
checkout, no git), through the local connection, to cover what the lab's checkouts never are.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from labctl.remote import LabHost, configure
from model_safety.engine.startup import parse_startup
from tests.local_ansible import ansible, printed

pytestmark = pytest.mark.lab

FORBIDDEN = [r"^\[(ERROR|FATAL)\]"]
XGB_LOADED = r"^\[OK\] xgb agent loaded \(weight: 25%\)$"


# Results as a JSON document after "<host> | <STATUS> =>", which module() parses.
JSON_FORMAT = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


def module(host: str, name: str, *options: str, **args: object) -> tuple[bool, dict]:
    """Run one module ad hoc on one host (a name or `localhost`): (succeeded, its result)."""
    arguments = ("-a", json.dumps(args)) if args else ()
    result = ansible("ansible", host, "-m", name, *arguments, *options, env=JSON_FORMAT)
    found = re.search(rf"^{re.escape(host)} \| ([A-Z]+)!? => ", result.stdout, re.M)
    assert found, printed(result)
    succeeded = found.group(1) == "SUCCESS"
    assert succeeded == (result.returncode == 0), printed(result)
    return succeeded, json.JSONDecoder().raw_decode(result.stdout[found.end() :])[0]


def current_journal_proof(host: LabHost, *options: str, **args: object) -> tuple[bool, dict]:
    """journal_proof on ``host`` over the engine's current start: (succeeded, its result)."""
    return module(host.name, "journal_proof", *options, invocation_id=host.invocation(), **args)


def build_pattern(short: str) -> str:
    return f"^AI_ENGINE_BUILD: {re.escape(short)}$"


def healthy(lab) -> LabHost:
    """A host no test reconfigures (the engine_host fixture uses the second one)."""
    return lab.hosts[0]


# --------------------------------------------------------------------------- lab: git_build


def test_git_build_is_the_build_the_engine_logged(lab):
    host = healthy(lab)
    ok, build = module(host.name, "git_build")
    assert ok, build
    assert build["changed"] is False
    assert re.fullmatch(r"[0-9a-f]{40}", build["sha"])
    assert build["sha"] == host.git_head()
    assert build["sha"].startswith(build["short"]) and len(build["short"]) >= 7
    assert build["dirty"] is False
    assert build["branch"] == host.out(
        "git", "-C", "/home/qt/quantum_trader", "-c", "safe.directory=*", "branch", "--show-current"
    )
    # The engine's own proof of what it runs, in the journal of its current start.
    startup = parse_startup(host.journal(host.invocation()))
    assert startup.build == build["short"]


def test_git_build_on_every_engine_host_in_check_mode(lab):
    result = ansible("ansible", "engine", "-m", "git_build", "--check", env=JSON_FORMAT)
    assert result.returncode == 0, printed(result)
    for host in lab.hosts:
        assert re.search(rf"^{host.name} \| SUCCESS => ", result.stdout, re.M), printed(result)
    assert "CHANGED" not in result.stdout


def test_git_build_outside_a_checkout_fails_clearly(lab):
    host = healthy(lab)
    ok, result = module(host.name, "git_build", path="/etc")
    assert not ok
    assert "cannot read the git build of /etc" in result["msg"]
    assert "not a git repository" in result["msg"]
    ok, result = module(host.name, "git_build", path="/nonexistent/checkout")
    assert not ok and "/nonexistent/checkout" in result["msg"]


# --------------------------------------------------------------------------- lab: journal_proof


def test_journal_proof_of_a_healthy_start(lab):
    host = healthy(lab)
    _, build = module(host.name, "git_build")
    invocation = host.invocation()
    patterns = [build_pattern(build["short"]), XGB_LOADED]
    ok, proof = module(
        host.name,
        "journal_proof",
        invocation_id=invocation,
        patterns=patterns,
        forbidden=FORBIDDEN,
        timeout=10,
    )
    assert ok, proof
    assert proof["changed"] is False
    assert proof["matched"] == {
        patterns[0]: f"AI_ENGINE_BUILD: {build['short']}",
        patterns[1]: "[OK] xgb agent loaded (weight: 25%)",
    }
    assert proof["missing"] == [] and proof["found_forbidden"] == []
    assert proof["invocation_id"] == invocation
    assert proof["lines_read"] >= 2 and proof["elapsed"] < 10
    assert proof["startup"]["build"] == build["short"]
    assert proof["startup"]["voting"]["xgb"] == 0.25


def test_journal_proof_with_fixed_strings_and_in_check_mode(lab):
    host = healthy(lab)
    ok, proof = current_journal_proof(
        host,
        "--check",
        patterns=["[OK] xgb agent loaded (weight: 25%)", "AI_ENGINE_BUILD: "],
        literal=True,
    )
    assert ok, proof
    assert proof["changed"] is False and proof["missing"] == []
    ok, proof = current_journal_proof(
        host, "--check", patterns=["[OK] xgb agent loaded (weight: 25%)$"], literal=True, timeout=0
    )
    assert not ok, "a literal `$` must not act as an anchor"


def test_journal_proof_of_an_unknown_invocation_fails_after_the_timeout(lab):
    host = healthy(lab)
    unknown = uuid.uuid4().hex
    ok, proof = module(
        host.name, "journal_proof", invocation_id=unknown, patterns=[XGB_LOADED], timeout=1.5
    )
    assert not ok
    assert proof["missing"] == [XGB_LOADED] and proof["lines_read"] == 0
    assert proof["reads"] >= 3 and proof["elapsed"] >= 1.5
    assert repr(XGB_LOADED) in proof["msg"] and unknown in proof["msg"]


@pytest.mark.parametrize(
    "invocation", ["not-an-id", "0123456789ABCDEF0123456789ABCDEF", "0123", "x; reboot"]
)
def test_journal_proof_refuses_a_malformed_invocation_id(lab, invocation):
    ok, proof = module(
        healthy(lab).name, "journal_proof", invocation_id=invocation, patterns=[XGB_LOADED]
    )
    assert not ok
    assert "not a systemd invocation id" in proof["msg"]


def test_journal_proof_refuses_a_bad_regex(lab):
    host = healthy(lab)
    ok, proof = current_journal_proof(host, patterns=["[OK"])
    assert not ok
    assert "invalid regular expression '[OK'" in proof["msg"]
    ok, proof = current_journal_proof(host, patterns=[XGB_LOADED], forbidden=["(ERROR"])
    assert not ok and "forbidden: invalid regular expression" in proof["msg"]


def test_journal_proof_fails_on_forbidden_lines(lab):
    host = healthy(lab)
    # Every start logs AI_ENGINE_BUILD: forbidding it must fail the proof, with the line.
    ok, proof = current_journal_proof(host, patterns=[XGB_LOADED], forbidden=["^AI_ENGINE_BUILD: "])
    assert not ok
    assert proof["missing"] == []
    assert len(proof["found_forbidden"]) == 1
    assert proof["found_forbidden"][0].startswith("AI_ENGINE_BUILD: ")
    assert "forbidden line(s) present" in proof["msg"]


def test_a_stale_build_fails_the_proof_of_the_deployed_sha(lab, engine_host):
    _, build = module(engine_host.name, "git_build")
    assert build["short"] != "deadbeef"
    started = configure(engine_host, env={"SIM_BUILD_OVERRIDE": "deadbeef"})
    real = build_pattern(build["short"])
    ok, proof = module(
        engine_host.name,
        "journal_proof",
        invocation_id=started.invocation,
        patterns=[real, XGB_LOADED],
        forbidden=FORBIDDEN,
        timeout=3,
    )
    assert not ok, proof
    assert proof["missing"] == [real]
    assert repr(real) in proof["msg"]
    assert proof["startup"]["build"] == "deadbeef"
    assert proof["matched"] == {XGB_LOADED: "[OK] xgb agent loaded (weight: 25%)"}
    # What it does run is provable, so the failure above is about the build and nothing else.
    ok, proof = module(
        engine_host.name,
        "journal_proof",
        invocation_id=started.invocation,
        patterns=[build_pattern("deadbeef")],
        timeout=10,
    )
    assert ok, proof


def test_proof_of_a_fresh_start_waits_for_its_lines(lab, engine_host):
    """Right after `systemctl start`, the proof of the new invocation holds (polling covers
    journald's lag), and the previous invocation's journal does not count for it."""
    _, build = module(engine_host.name, "git_build")
    before = engine_host.invocation()
    started = engine_host.cycle()
    assert started.invocation != before
    ok, proof = module(
        engine_host.name,
        "journal_proof",
        invocation_id=started.invocation,
        patterns=[build_pattern(build["short"]), XGB_LOADED],
        forbidden=FORBIDDEN,
        timeout=20,
    )
    assert ok, proof
    assert proof["startup"]["builds"] == [build["short"]]


# --------------------------------------------------------------------------- controller: git


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed on the controller")
    repo = tmp_path / "quantum_trader"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "test")
    (repo / "engine.py").write_text("print('v1')\n")
    git(repo, "add", "engine.py")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


LOCAL = ("-c", "local", "-e", f"ansible_python_interpreter={sys.executable}")


def local_build(path: Path, *options: str) -> tuple[bool, dict]:
    return module("localhost", "git_build", *LOCAL, *options, path=str(path))


def test_local_clean_dirty_detached(checkout):
    ok, build = local_build(checkout)
    assert ok, build
    assert build["sha"] == git(checkout, "rev-parse", "HEAD")
    assert build["short"] == git(checkout, "rev-parse", "--short", "HEAD")
    assert (build["dirty"], build["branch"], build["checkout"]) == (False, "main", str(checkout))

    (checkout / "untracked.txt").write_text("not part of the build\n")
    assert local_build(checkout)[1]["dirty"] is False
    index = (checkout / ".git" / "index").stat()

    (checkout / "engine.py").write_text("print('v2')\n")
    ok, build = local_build(checkout, "--check")
    assert ok and build["dirty"] is True and build["changed"] is False
    # Read-only: not even the index was refreshed.
    assert (checkout / ".git" / "index").stat().st_mtime_ns == index.st_mtime_ns
    git(checkout, "add", "engine.py")
    assert local_build(checkout)[1]["dirty"] is True
    git(checkout, "commit", "-q", "-m", "v2")

    git(checkout, "checkout", "-q", "--detach", "HEAD~1")
    ok, build = local_build(checkout)
    assert ok and build["branch"] is None and build["dirty"] is False
    assert build["sha"] == git(checkout, "rev-parse", "HEAD~0")


def test_local_short_sha_follows_core_abbrev(checkout):
    git(checkout, "config", "core.abbrev", "12")
    ok, build = local_build(checkout)
    assert ok and len(build["short"]) == 12 and build["sha"].startswith(build["short"])


def test_local_not_a_checkout_or_no_commit(tmp_path, checkout):
    plain = tmp_path / "plain"
    plain.mkdir()
    ok, result = local_build(plain)
    assert not ok and "not a git repository" in result["msg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    ok, result = local_build(empty)
    assert not ok and "not a readable git checkout with a commit" in result["msg"]


def test_local_missing_git_fails_clearly(tmp_path, checkout):
    playbook = tmp_path / "no_git.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - git_build:\n"
        f"        path: {checkout}\n"
        "      environment:\n"
        f"        PATH: {tmp_path}/no-bin\n"
    )
    result = ansible("ansible-playbook", str(playbook), *LOCAL, env=JSON_FORMAT)
    assert result.returncode != 0, printed(result)
    assert "git is missing or cannot run" in result.stdout, printed(result)
