"""`model-safety status --html OUT`: what stops it before any playbook runs (exit 2, one
sentence): a page directory that does not exist, a page path that is a directory, an
inventory that does not exist, a project without playbooks/status.yml. The run itself is the
lab test's (tests/integration/test_status_page_lab.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_safety.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--html", "{tmp}/missing/fleet.html"],
            "the page's directory {tmp}/missing does not exist",
        ),
        (["--html", "{tmp}"], "the page path {tmp} is a directory"),
        (
            ["--html", "{tmp}/fleet.html", "-i", "{tmp}/nope"],
            "the inventory {tmp}/nope does not exist",
        ),
        (
            ["--html", "{tmp}/fleet.html", "--project-dir", "{tmp}"],
            "no playbooks/status.yml in {tmp}",
        ),
    ],
)
def test_refused_before_the_run(tmp_path, capsys, args, message) -> None:
    argv = ["status", *(arg.format(tmp=tmp_path) for arg in args)]
    if "--project-dir" not in argv:
        argv += ["--project-dir", str(REPO_ROOT)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"model-safety status: {message.format(tmp=tmp_path)}")
    assert not (tmp_path / "fleet.html").exists()


def test_html_is_required(capsys) -> None:
    assert main(["status"]) == 2
    assert "the following arguments are required: --html" in capsys.readouterr().err
