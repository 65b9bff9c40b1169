"""Running commands on the host: the ``Runner`` every reader takes (``run(argv) -> (rc,
stdout, stderr)``, argv lists only, never a shell string), the errors, and the one checked run
that systemctl, journalctl and git calls share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Runner = Callable[[list[str]], tuple[int, str, str]]

# How much of a failing command's output a message quotes.
OUTPUT_EXCERPT = 400


class EngineStateError(Exception):
    """Input that cannot be right, or a command whose output cannot be trusted."""


class StepFailed(EngineStateError):
    """A step of a longer operation on the host failed: ``step`` names it (the name operators
    know it by, from the task that once did it alone), ``message`` says why and ``details``
    holds what the step found (a journal, differences, the unit's state)."""

    def __init__(self, step: str, message: str, **details: object) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.details = details


class CommandError(EngineStateError):
    """A command exited non-zero (or could not run); carries what it said."""

    def __init__(self, argv: Sequence[str], rc: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        said = (stderr.strip() or stdout.strip() or "no output")[:OUTPUT_EXCERPT]
        super().__init__(f"`{' '.join(self.argv)}` failed (rc {rc}): {said}")


def run_checked(run: Runner, argv: list[str]) -> str:
    """The standard output of ``argv``; :class:`CommandError` when it exits non-zero."""
    rc, stdout, stderr = run(argv)
    if rc != 0:
        raise CommandError(argv, rc, stdout, stderr)
    return stdout
