"""The engine's git history, as the lab deploys it to every host's /home/qt/quantum_trader.

Production hosts run the engine from a git checkout, and the activation proof compares the
build the engine logs with that checkout's HEAD. The lab therefore builds a real repository
from lab/engine/ with two commits (the code, then its model configuration). Author, committer
and dates are fixed, so the commit SHAs depend on the engine's content alone: an unchanged
engine keeps its SHA across lab-ups and machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .config import LabConfig, LabError
from .proc import run

BRANCH = "main"
CONFIG_DIR = "config"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Quantum Trader CI",
    "GIT_AUTHOR_EMAIL": "ci@quantum.invalid",
    "GIT_COMMITTER_NAME": "Quantum Trader CI",
    "GIT_COMMITTER_EMAIL": "ci@quantum.invalid",
}
COMMITS = (
    ("2026-01-05T09:00:00+00:00", "engine: reference AI engine", "code"),
    ("2026-01-06T09:00:00+00:00", "config: baseline model weights", "config"),
)


def _git(worktree: Path, *args: str, env: dict[str, str] | None = None) -> str:
    argv = [
        "git",
        "-C",
        str(worktree),
        "-c",
        "init.defaultBranch=" + BRANCH,
        "-c",
        "commit.gpgsign=false",
        *args,
    ]
    full_env = {**os.environ, **_GIT_IDENTITY, **(env or {})}
    result = subprocess.run(argv, capture_output=True, text=True, env=full_env, check=False)
    if result.returncode != 0:
        raise LabError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def build_engine_repo(config: LabConfig) -> str:
    """(Re)build the bare engine repository; return the SHA of its HEAD commit."""
    with tempfile.TemporaryDirectory(prefix="engine-src-") as tmp:
        worktree = Path(tmp) / "quantum_trader"
        shutil.copytree(config.engine_src, worktree, ignore=_IGNORED)
        config_dir = worktree / CONFIG_DIR
        held_back = Path(tmp) / CONFIG_DIR
        shutil.move(config_dir, held_back)
        _git(worktree, "init", "--quiet")
        for date, message, part in COMMITS:
            if part == "config":
                shutil.move(held_back, config_dir)
            _git(worktree, "add", "--all")
            _git(
                worktree,
                "commit",
                "--quiet",
                "-m",
                message,
                env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
            )
        head = _git(worktree, "rev-parse", "HEAD")
        if _current_head(config) != head:
            staging = config.engine_repo.with_name("engine.git.new")
            shutil.rmtree(staging, ignore_errors=True)
            run(["git", "clone", "--quiet", "--bare", str(worktree), str(staging)])
            shutil.rmtree(config.engine_repo, ignore_errors=True)
            staging.rename(config.engine_repo)
    return head


def _current_head(config: LabConfig) -> str | None:
    if not (config.engine_repo / "HEAD").exists():
        return None
    result = run(
        ["git", "--git-dir", str(config.engine_repo), "rev-parse", BRANCH], check=False, quiet=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def clone_into(config: LabConfig, destination: Path) -> None:
    run(["git", "clone", "--quiet", "--branch", BRANCH, str(config.engine_repo), str(destination)])
    # The clone's origin is a path on the lab's host machine, meaningless inside a lab host.
    run(["git", "-C", str(destination), "remote", "remove", "origin"])
