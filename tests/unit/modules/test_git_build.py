"""The git_build module through its main() on a real git checkout: the build (SHA, short,
branch, dirty) and check mode (read-only), bad paths refused, and a directory that is not a
checkout."""

from __future__ import annotations

import subprocess

import pytest

from tests.module_harness import fails, succeeds

MODULE = "git_build"


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_build_of_a_clean_checkout(git_checkout, check_mode) -> None:
    checkout, sha = git_checkout
    result = succeeds(MODULE, {"path": str(checkout)}, check_mode=check_mode)
    assert (result["changed"], result["checkout"], result["sha"]) == (False, str(checkout), sha)
    assert sha.startswith(result["short"])
    assert (result["branch"], result["dirty"]) == ("main", False)


def test_a_modified_tracked_file_is_dirty_and_detached_head_has_no_branch(git_checkout) -> None:
    checkout, sha = git_checkout
    tracked = checkout / "engine.py"
    tracked.write_text("print(1)\n")
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@e.invalid"]
    subprocess.run([*git, "add", "engine.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "engine"], check=True)
    subprocess.run([*git, "checkout", "-q", "--detach", "HEAD"], check=True)
    tracked.write_text("print(2)\n")
    result = succeeds(MODULE, {"checkout": str(checkout)})
    assert (result["branch"], result["dirty"]) == (None, True)
    assert result["sha"] != sha


@pytest.mark.parametrize("path", ["relative/checkout", "/opt/quantum/../etc", "/opt/a\nb"])
def test_a_path_that_is_not_normalised_and_absolute_is_refused(path) -> None:
    result = fails(MODULE, {"path": path})
    assert result["msg"].startswith("cannot read the git build of ")
    assert "checkout must be a normalised absolute path" in result["msg"]


def test_a_directory_without_git_fails(tmp_path) -> None:
    result = fails(MODULE, {"path": str(tmp_path)})
    assert result["msg"].startswith(f"cannot read the git build of {tmp_path}: ")
    assert result["checkout"] == str(tmp_path)
