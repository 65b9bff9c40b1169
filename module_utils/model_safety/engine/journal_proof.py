"""Proof that one start of the engine logged the lines it must (and none it must not), read
from the journal of that invocation until found or timed out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .commands import EngineStateError, Runner
from .startup import parse_startup
from .systemd import read_journal
from .validation import validate_invocation_id, validate_timeout, validate_unit

PROOF_POLL_INTERVAL_S = 0.5
MAX_FORBIDDEN_LINES = 100


def compile_patterns(
    patterns: Iterable[str], *, literal: bool = False, what: str = "patterns"
) -> dict[str, re.Pattern[str]]:
    """``{pattern: compiled}`` in the given order (duplicates once); with ``literal`` each
    pattern is a fixed string. A pattern that is not a string or not a valid regular expression
    raises :class:`EngineStateError` naming it."""
    compiled: dict[str, re.Pattern[str]] = {}
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise EngineStateError(f"{what}: every entry must be a non-empty string: {pattern!r}")
        try:
            compiled[pattern] = re.compile(re.escape(pattern) if literal else pattern)
        except re.error as exc:
            raise EngineStateError(
                f"{what}: invalid regular expression {pattern!r}: {exc}"
            ) from None
    return compiled


def find_journal_lines(
    lines: Iterable[str], patterns: Mapping[str, re.Pattern[str]]
) -> tuple[dict[str, str], list[str]]:
    """``(matched, missing)``: each pattern to the first line it is found in (``re.search``,
    so ``^``/``$`` anchor at the line's start and end), and the patterns found nowhere, both in
    the order of ``patterns``."""
    matched: dict[str, str] = {}
    pending = dict(patterns)
    for line in lines:
        if not pending:
            break
        for pattern, regex in list(pending.items()):
            if regex.search(line):
                matched[pattern] = line
                del pending[pattern]
    in_order = {pattern: matched[pattern] for pattern in patterns if pattern in matched}
    return in_order, list(pending)


def find_forbidden_lines(
    lines: Iterable[str], forbidden: Mapping[str, re.Pattern[str]], limit: int = MAX_FORBIDDEN_LINES
) -> list[str]:
    """The lines (at most ``limit``, oldest first) that any of the ``forbidden`` patterns finds."""
    found: list[str] = []
    for line in lines:
        if len(found) >= limit:
            break
        if any(regex.search(line) for regex in forbidden.values()):
            found.append(line)
    return found


def prove_journal(
    run: Runner,
    unit: str,
    invocation_id: str,
    patterns: Sequence[str],
    *,
    forbidden: Sequence[str] = (),
    literal: bool = False,
    timeout: float = 30.0,
    interval: float = PROOF_POLL_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the journal of one invocation of ``unit`` until every pattern matches a line.

    Reads the journal every ``interval`` seconds until all ``patterns`` are found, a
    ``forbidden`` line appears (no need to wait: the proof has failed) or ``timeout`` seconds
    have passed (at least one read always happens). ``literal`` makes ``patterns`` fixed
    strings; ``forbidden`` are always regular expressions. Returns ``proven`` (all found and
    nothing forbidden), ``matched``, ``missing``, ``found_forbidden``, ``lines_read``,
    ``elapsed`` (s) and ``startup`` (:func:`parse_startup` of the lines read), and ``reads``.
    Raises :class:`EngineStateError` on bad input or when ``journalctl`` fails.
    """
    validate_unit(unit)
    validate_invocation_id(invocation_id)
    timeout = validate_timeout(timeout)
    wanted = compile_patterns(patterns, literal=literal, what="patterns")
    if not wanted:
        raise EngineStateError("patterns: at least one pattern is required (nothing to prove)")
    unwanted = compile_patterns(forbidden, what="forbidden")
    start = clock()
    reads = 0
    while True:
        lines = read_journal(run, unit, invocation_id)
        reads += 1
        matched, missing = find_journal_lines(lines, wanted)
        found_forbidden = find_forbidden_lines(lines, unwanted)
        elapsed = clock() - start
        if not missing or found_forbidden or elapsed >= timeout:
            break
        sleep(max(0.0, min(interval, timeout - elapsed)))
    return {
        "proven": not missing and not found_forbidden,
        "matched": matched,
        "missing": missing,
        "found_forbidden": found_forbidden,
        "lines_read": len(lines),
        "reads": reads,
        "elapsed": round(elapsed, 3),
        "startup": parse_startup(lines).as_dict(),
    }


def proof_failure_message(unit: str, invocation_id: str, proof: Mapping[str, Any]) -> str:
    """One line saying why ``proof`` (a :func:`prove_journal` result) failed."""
    parts = []
    if proof["missing"]:
        parts.append(
            f"not found after {proof['elapsed']:g} s: "
            + ", ".join(repr(pattern) for pattern in proof["missing"])
        )
    if proof["found_forbidden"]:
        shown = [repr(line.strip()) for line in proof["found_forbidden"][:3]]
        more = len(proof["found_forbidden"]) - len(shown)
        parts.append(
            "forbidden line(s) present: " + ", ".join(shown) + (f" (+{more} more)" if more else "")
        )
    return (
        f"journal proof failed for invocation {invocation_id} of {unit} "
        f"({proof['lines_read']} lines read): " + "; ".join(parts)
    )
