"""What is deployed in the engine's checkout, read with git (read-only), and whether the
build the engine announced is that commit.
"""

from __future__ import annotations

import re
from typing import Any

from .commands import OUTPUT_EXCERPT, CommandError, EngineStateError, Runner
from .validation import validate_checkout

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_BUILD_RE = re.compile(r"[0-9a-fA-F]{7,40}")
_SHORT_SHA_RE = re.compile(r"[0-9a-f]{4,40}")
_GIT_MISSING_RC = 127


def _git_argv(checkout: str, *args: str) -> list[str]:
    """``git`` on ``checkout`` (trusted as a safe.directory for this one call), read-only:
    ``--no-optional-locks`` keeps ``git status`` from refreshing (writing) the index."""
    return ["git", "--no-optional-locks", "-C", checkout, "-c", "safe.directory=" + checkout, *args]


def _git_checked(run: Runner, checkout: str, *args: str) -> str:
    argv = _git_argv(checkout, *args)
    rc, stdout, stderr = run(argv)
    if rc == _GIT_MISSING_RC:
        said = (stderr.strip() or stdout.strip() or "no output")[:OUTPUT_EXCERPT]
        raise EngineStateError(f"git is missing or cannot run on this host: {said}")
    if rc != 0:
        said = (stderr.strip() or stdout.strip() or "no output")[:OUTPUT_EXCERPT]
        raise EngineStateError(
            f"{checkout} is not a readable git checkout with a commit "
            f"(`git {' '.join(args)}` failed, rc {rc}): {said}"
        )
    return stdout


def read_git_head(run: Runner, checkout: str) -> str:
    """The full SHA of the commit HEAD names in ``checkout`` (read-only, one git call)."""
    validate_checkout(checkout)
    sha = _git_checked(run, checkout, "rev-parse", "--verify", "HEAD^{commit}").strip().lower()
    if not _SHA_RE.fullmatch(sha):
        raise EngineStateError(f"git rev-parse HEAD in {checkout} returned {sha[:80]!r}")
    return sha


def read_git_build(run: Runner, checkout: str) -> dict[str, Any]:
    """What is deployed in ``checkout``: ``sha`` (40 hex), ``short`` (as long as
    ``git rev-parse --short`` makes it), ``dirty`` (tracked files modified, staged or not) and
    ``branch`` (None when HEAD is detached).

    Read-only (no index refresh). Raises :class:`EngineStateError` with a clear message when
    git is missing, ``checkout`` is not a git checkout (or has no commit), or git answers
    something that is not a SHA.
    """
    sha = read_git_head(run, checkout)
    # Abbreviating the SHA just read (not HEAD again) keeps sha and short consistent.
    short = _git_checked(run, checkout, "rev-parse", "--short", sha).strip().lower()
    if not _SHORT_SHA_RE.fullmatch(short) or not sha.startswith(short):
        raise EngineStateError(
            f"git rev-parse --short in {checkout} returned {short[:80]!r}, not a prefix of {sha}"
        )
    status = _git_checked(run, checkout, "status", "--porcelain", "--untracked-files=no")
    argv = _git_argv(checkout, "symbolic-ref", "--quiet", "--short", "HEAD")
    rc, stdout, stderr = run(argv)
    if rc == 0 and stdout.strip():
        branch: str | None = stdout.strip()
    elif rc == 1 and not stdout.strip():
        branch = None  # detached HEAD
    else:
        raise CommandError(argv, rc, stdout, stderr)
    return {"sha": sha, "short": short, "dirty": bool(status.strip()), "branch": branch}


def build_matches(build_short: str | None, full_sha: str | None) -> bool:
    """True only if ``build_short`` is 7..40 hex digits and a prefix of ``full_sha``."""
    if not isinstance(build_short, str) or not isinstance(full_sha, str):
        return False
    if not _BUILD_RE.fullmatch(build_short) or not _SHA_RE.fullmatch(full_sha.lower()):
        return False
    return full_sha.lower().startswith(build_short.lower())
