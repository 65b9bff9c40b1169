"""What the engine on a host is really running, read from systemd, its journal, git and Redis.

Everything here is pure or takes its I/O as an argument, so the same code serves the
``engine_status`` module, the canary/rollback verification and the tests:

* ``run(argv) -> (rc, stdout, stderr)`` executes one command given as an argv list (never a
  shell string); ``AnsibleModule.run_command`` wrapped in a small adapter fits.
* ``client`` is a redis-py client (4.3 on Debian bookworm targets, 8.x on the controller),
  with or without ``decode_responses``.

Input that cannot be right (a malformed unit name, a relative checkout path, ...) and commands
that fail raise :class:`EngineStateError`; ``collect_engine_status`` turns everything that is
merely unhealthy into human-readable ``problems`` (fail-closed: no proof is a problem).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from ..names import is_model_name
from ..utctime import iso_ms

Runner = Callable[[list[str]], tuple[int, str, str]]

DEFAULT_UNIT = "quantum-ai-engine.service"
DEFAULT_CHECKOUT = "/home/qt/quantum_trader"
DEFAULT_STREAM = "quantum:stream:trade.intent"
DEFAULT_SAMPLE = 200
MAX_SAMPLE = 10_000
MAX_EVENT_AGE_S = 10.0

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "InvocationID",
    "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic",
    "Result",
)

# Validation patterns, always used with fullmatch (a trailing newline never slips through).
_UNIT_RE = re.compile(
    r"[A-Za-z0-9:_.\\][A-Za-z0-9:_.\\@-]{0,240}"
    r"\.(service|socket|target|timer|mount|automount|path|swap|slice|scope|device)"
)
_INVOCATION_RE = re.compile(r"[0-9a-f]{32}")
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_BUILD_RE = re.compile(r"[0-9a-fA-F]{7,40}")
_PCT_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_STREAM_ID_RE = re.compile(r"([0-9]+)-[0-9]+")
_STREAM_NAME_RE = re.compile(r"[!-~]{1,256}")

_BUILD_LINE = re.compile(r"\bAI_ENGINE_BUILD:\s*(\S+)")
_OK_LINE = re.compile(r"\[OK\]\s+(\S+)\s+agent loaded\s+\(weight:\s*([^%)]*)%\)")
_SHADOW_LOAD_LINE = re.compile(
    r"\[SHADOW\]\s+(\S+)\s+agent loaded in shadow mode\s+\(weight:\s*([^%)]*)%"
)
_SHADOW_PREDICTION_LINE = re.compile(
    r"\[SHADOW\]\s+(\S+)\s*\|\s*\S+\s*\|\s*action=\S+\s+conf=\S+\s*\|\s*mode=SHADOW_ONLY"
)
_CANARY_LINE = re.compile(r"\[CANARY\]\s+(\S+)\s+weight=([^%\s]*)%\s+weights=(\S+)")
_MODEL_FILE_LINE = re.compile(r"\[[A-Za-z0-9_]+-INIT\]\s+Model file:")
_READY_LINE = re.compile(r"\[READY\]")
_ERROR_LINE = re.compile(r"\[(ERROR|FATAL)\]")

_OUTPUT_EXCERPT = 400


class EngineStateError(Exception):
    """Input that cannot be right, or a command whose output cannot be trusted."""


class CommandError(EngineStateError):
    """A command exited non-zero (or could not run); carries what it said."""

    def __init__(self, argv: Sequence[str], rc: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        said = (stderr.strip() or stdout.strip() or "no output")[:_OUTPUT_EXCERPT]
        super().__init__(f"`{' '.join(self.argv)}` failed (rc {rc}): {said}")


# --------------------------------------------------------------------------- validation


def validate_unit(unit: str) -> str:
    """Return ``unit`` if it is a well-formed systemd unit name, else raise."""
    if not isinstance(unit, str) or not _UNIT_RE.fullmatch(unit):
        raise EngineStateError(f"not a valid systemd unit name: {unit!r}")
    return unit


def validate_invocation_id(invocation_id: str) -> str:
    """Return ``invocation_id`` if it is 32 lowercase hex digits (systemd's format), else raise."""
    if not isinstance(invocation_id, str) or not _INVOCATION_RE.fullmatch(invocation_id):
        raise EngineStateError(f"not a systemd invocation id (32 lowercase hex): {invocation_id!r}")
    return invocation_id


def validate_checkout(checkout: str) -> str:
    """Return ``checkout`` if it is a normalised absolute path without control characters."""
    if (
        not isinstance(checkout, str)
        or not os.path.isabs(checkout)
        or os.path.normpath(checkout) != checkout
        or any(ord(char) < 32 or ord(char) == 127 for char in checkout)
    ):
        raise EngineStateError(f"checkout must be a normalised absolute path: {checkout!r}")
    return checkout


def validate_model_name(model: str) -> str:
    """Return ``model`` if it matches the contract's model-name pattern, else raise."""
    if not is_model_name(model):
        raise EngineStateError(f"not a valid model name: {model!r}")
    return model


def validate_stream_name(stream: str) -> str:
    """Return ``stream`` if it is 1..256 printable, non-blank ASCII characters, else raise."""
    if not isinstance(stream, str) or not _STREAM_NAME_RE.fullmatch(stream):
        raise EngineStateError(f"not a valid stream name: {stream!r}")
    return stream


def validate_sample(sample: int) -> int:
    """Return ``sample`` if it is an int in 2..MAX_SAMPLE (a rate needs two events)."""
    if isinstance(sample, bool) or not isinstance(sample, int) or not 2 <= sample <= MAX_SAMPLE:
        raise EngineStateError(f"sample must be an integer in 2..{MAX_SAMPLE}: {sample!r}")
    return sample


def _run_checked(run: Runner, argv: list[str]) -> str:
    rc, stdout, stderr = run(argv)
    if rc != 0:
        raise CommandError(argv, rc, stdout, stderr)
    return stdout


# --------------------------------------------------------------------------- systemd


@dataclass(frozen=True)
class ServiceState:
    """The systemd view of one unit (``systemctl show``)."""

    unit: str
    load_state: str
    active_state: str
    sub_state: str
    main_pid: int
    n_restarts: int
    invocation_id: str
    active_enter_timestamp: str
    active_enter_monotonic_us: int
    result: str

    @property
    def running(self) -> bool:
        """True when the unit is loaded, active and its main process runs."""
        return (
            self.load_state == "loaded"
            and self.active_state == "active"
            and self.sub_state == "running"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def parse_systemctl_show(text: str) -> dict[str, str]:
    """Parse ``systemctl show`` output (``Key=Value`` lines) into a dict; values may hold ``=``."""
    properties: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise EngineStateError(f"unexpected line in systemctl show output: {line!r}")
        properties[key] = value
    return properties


def _int_property(properties: Mapping[str, str], name: str) -> int:
    value = properties[name]
    try:
        return int(value) if value else 0
    except ValueError:
        raise EngineStateError(f"systemctl show: {name} is not an integer: {value!r}") from None


def service_state_from_properties(unit: str, properties: Mapping[str, str]) -> ServiceState:
    """Build a :class:`ServiceState` from parsed ``systemctl show`` properties."""
    missing = [name for name in SHOW_PROPERTIES if name not in properties]
    if missing:
        raise EngineStateError(f"systemctl show output for {unit} lacks {', '.join(missing)}")
    return ServiceState(
        unit=unit,
        load_state=properties["LoadState"],
        active_state=properties["ActiveState"],
        sub_state=properties["SubState"],
        main_pid=_int_property(properties, "MainPID"),
        n_restarts=_int_property(properties, "NRestarts"),
        invocation_id=properties["InvocationID"],
        active_enter_timestamp=properties["ActiveEnterTimestamp"],
        active_enter_monotonic_us=_int_property(properties, "ActiveEnterTimestampMonotonic"),
        result=properties["Result"],
    )


def read_service_state(run: Runner, unit: str) -> ServiceState:
    """Read the state of ``unit`` with ``systemctl show``; raise on bad input or failure."""
    argv = ["systemctl", "show", validate_unit(unit), "--property=" + ",".join(SHOW_PROPERTIES)]
    return service_state_from_properties(unit, parse_systemctl_show(_run_checked(run, argv)))


def service_uptime(
    service: ServiceState,
    monotonic_now: float | None = None,
    wall_now: float | None = None,
) -> dict[str, Any]:
    """How long the current start has been up, and when it began in UTC.

    Computed from ActiveEnterTimestampMonotonic and this host's monotonic clock (what systemd
    uses), so neither the host's time zone nor ``systemctl``'s timestamp format matters. Both
    values are None when the unit is not active.
    """
    if service.active_state != "active" or service.active_enter_monotonic_us <= 0:
        return {"uptime_s": None, "active_since": None}
    monotonic_now = (
        time.clock_gettime(time.CLOCK_MONOTONIC) if monotonic_now is None else monotonic_now
    )
    wall_now = time.time() if wall_now is None else wall_now
    uptime = max(0.0, monotonic_now - service.active_enter_monotonic_us / 1e6)
    return {"uptime_s": round(uptime, 3), "active_since": iso_ms(wall_now - uptime)}


def read_journal(run: Runner, unit: str, invocation_id: str) -> list[str]:
    """Return the journal messages of one invocation of ``unit``, oldest first."""
    argv = [
        "journalctl",
        "--no-pager",
        "--quiet",
        "-o",
        "cat",
        "-u",
        validate_unit(unit),
        "_SYSTEMD_INVOCATION_ID=" + validate_invocation_id(invocation_id),
    ]
    return _run_checked(run, argv).splitlines()


# --------------------------------------------------------------------------- start-up lines


class Canary(NamedTuple):
    """The ``[CANARY]`` line: the canary model, its weight and the full weight vector."""

    model: str
    weight: float
    weights: dict[str, float]


@dataclass(frozen=True)
class StartupReport:
    """What one invocation of the engine said about itself in its journal.

    ``build`` is the single ``AI_ENGINE_BUILD`` value, or None when it is missing or
    contradicted (every occurrence is kept in ``builds``). Weights are fractions. Lines that
    look like start-up lines but cannot be parsed, contradictions and duplicates are listed in
    ``anomalies``; ``errors`` holds the ``[ERROR]``/``[FATAL]`` lines verbatim.
    """

    build: str | None = None
    builds: list[str] = field(default_factory=list)
    voting: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, float] = field(default_factory=dict)
    canary: Canary | None = None
    model_file: str | None = None
    ready: bool = False
    errors: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    shadow_predictions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the canary becomes an object)."""
        data = asdict(self)
        data["canary"] = None if self.canary is None else self.canary._asdict()
        return data


def parse_weight_pct(text: str) -> float:
    """Turn the engine's percentage text (``"28.125"``) into a fraction (``0.28125``)."""
    if not isinstance(text, str) or not _PCT_RE.fullmatch(text.strip()):
        raise EngineStateError(f"not a weight percentage: {text!r}")
    value = Decimal(text.strip())
    if value > 100:
        raise EngineStateError(f"weight percentage above 100: {text!r}")
    return float(value / 100)


def _parse_fraction(text: str) -> float:
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise EngineStateError(f"not a weight fraction: {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise EngineStateError(f"weight fraction outside [0, 1]: {text!r}")
    return value


def parse_canary_line(model: str, pct: str, weights: str) -> Canary:
    """Parse the parts of a ``[CANARY]`` line; raise on anything malformed."""
    vector: dict[str, float] = {}
    for item in weights.split(","):
        name, sep, value = item.partition(":")
        if not sep or validate_model_name(name) in vector:
            raise EngineStateError(f"malformed canary weights: {weights!r}")
        vector[name] = _parse_fraction(value)
    return Canary(validate_model_name(model), parse_weight_pct(pct), vector)


class _StartupParser:
    """Accumulates one journal's start-up facts line by line."""

    def __init__(self) -> None:
        self.builds: list[str] = []
        self.voting: dict[str, float] = {}
        self.shadow: dict[str, float] = {}
        self.canary: Canary | None = None
        self.model_file: str | None = None
        self.ready = False
        self.errors: list[str] = []
        self.anomalies: list[str] = []
        self.shadow_predictions: dict[str, int] = {}

    def feed(self, line: str) -> None:
        """Take one journal line."""
        if _ERROR_LINE.search(line):
            self.errors.append(line)
        if match := _BUILD_LINE.search(line):
            self.builds.append(match.group(1))
        elif match := _OK_LINE.search(line):
            self._loaded(self.voting, "voting", match.group(1), match.group(2), line)
        elif match := _SHADOW_LOAD_LINE.search(line):
            self._loaded(self.shadow, "shadow", match.group(1), match.group(2), line)
        elif match := _SHADOW_PREDICTION_LINE.search(line):
            model = match.group(1).lower()
            self.shadow_predictions[model] = self.shadow_predictions.get(model, 0) + 1
        elif match := _CANARY_LINE.search(line):
            self._canary(match.group(1), match.group(2), match.group(3), line)
        elif _MODEL_FILE_LINE.search(line):
            self.model_file = self.model_file or line.strip()
        elif _READY_LINE.search(line):
            self.ready = True

    def _loaded(self, table: dict[str, float], role: str, model: str, pct: str, line: str) -> None:
        try:
            weight = parse_weight_pct(pct)
            validate_model_name(model)
        except EngineStateError as exc:
            self.anomalies.append(f"unparseable {role} load line ({exc}): {line.strip()}")
            return
        if model in table and table[model] != weight:
            self.anomalies.append(
                f"{model} loaded twice as {role} with different weights: "
                f"{table[model]:g} then {weight:g}"
            )
        table[model] = weight

    def _canary(self, model: str, pct: str, weights: str, line: str) -> None:
        try:
            canary = parse_canary_line(model, pct, weights)
        except EngineStateError as exc:
            self.anomalies.append(f"unparseable canary line ({exc}): {line.strip()}")
            return
        if self.canary is not None and self.canary != canary:
            self.anomalies.append("conflicting [CANARY] lines")
        self.canary = canary

    def report(self) -> StartupReport:
        """The facts gathered so far, with cross-line contradictions as anomalies."""
        anomalies = list(self.anomalies)
        distinct = list(dict.fromkeys(self.builds))
        if len(distinct) > 1:
            anomalies.append(f"conflicting AI_ENGINE_BUILD lines: {', '.join(distinct)}")
        both = sorted(set(self.voting) & set(self.shadow))
        if both:
            anomalies.append(f"loaded both as voting and as shadow: {', '.join(both)}")
        return StartupReport(
            build=distinct[0] if len(distinct) == 1 else None,
            builds=list(self.builds),
            voting=dict(self.voting),
            shadow=dict(self.shadow),
            canary=self.canary,
            model_file=self.model_file,
            ready=self.ready,
            errors=list(self.errors),
            anomalies=anomalies,
            shadow_predictions=dict(self.shadow_predictions),
        )


def parse_startup(lines: Iterable[str]) -> StartupReport:
    """Parse the journal lines of one engine invocation (see DESIGN.md "Engine start-up lines")."""
    parser = _StartupParser()
    for line in lines:
        parser.feed(line)
    return parser.report()


# --------------------------------------------------------------------------- git


def read_git_head(run: Runner, checkout: str) -> str:
    """Return the full SHA of HEAD in ``checkout`` (trusted as a safe.directory for this call)."""
    validate_checkout(checkout)
    argv = ["git", "-C", checkout, "-c", "safe.directory=" + checkout, "rev-parse", "HEAD"]
    sha = _run_checked(run, argv).strip().lower()
    if not _SHA_RE.fullmatch(sha):
        raise EngineStateError(f"git rev-parse HEAD in {checkout} returned {sha[:80]!r}")
    return sha


def build_matches(build_short: str | None, full_sha: str | None) -> bool:
    """True only if ``build_short`` is 7..40 hex digits and a prefix of ``full_sha``."""
    if not isinstance(build_short, str) or not isinstance(full_sha, str):
        return False
    if not _BUILD_RE.fullmatch(build_short) or not _SHA_RE.fullmatch(full_sha.lower()):
        return False
    return full_sha.lower().startswith(build_short.lower())


# --------------------------------------------------------------------------- git build

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
        said = (stderr.strip() or stdout.strip() or "no output")[:_OUTPUT_EXCERPT]
        raise EngineStateError(f"git is missing or cannot run on this host: {said}")
    if rc != 0:
        said = (stderr.strip() or stdout.strip() or "no output")[:_OUTPUT_EXCERPT]
        raise EngineStateError(
            f"{checkout} is not a readable git checkout with a commit "
            f"(`git {' '.join(args)}` failed, rc {rc}): {said}"
        )
    return stdout


def read_git_build(run: Runner, checkout: str) -> dict[str, Any]:
    """What is deployed in ``checkout``: ``sha`` (40 hex), ``short`` (as long as
    ``git rev-parse --short`` makes it), ``dirty`` (tracked files modified, staged or not) and
    ``branch`` (None when HEAD is detached).

    Read-only (no index refresh). Raises :class:`EngineStateError` with a clear message when
    git is missing, ``checkout`` is not a git checkout (or has no commit), or git answers
    something that is not a SHA.
    """
    validate_checkout(checkout)
    sha = _git_checked(run, checkout, "rev-parse", "--verify", "HEAD^{commit}").strip().lower()
    if not _SHA_RE.fullmatch(sha):
        raise EngineStateError(f"git rev-parse HEAD in {checkout} returned {sha[:80]!r}")
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


# --------------------------------------------------------------------------- journal proof

MAX_PROOF_TIMEOUT_S = 3600.0
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


def validate_timeout(timeout: float) -> float:
    """Return ``timeout`` as a float if it is a finite number in 0..MAX_PROOF_TIMEOUT_S."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise EngineStateError(f"timeout must be a number of seconds: {timeout!r}")
    if not (math.isfinite(timeout) and 0 <= timeout <= MAX_PROOF_TIMEOUT_S):
        raise EngineStateError(f"timeout must be in 0..{MAX_PROOF_TIMEOUT_S:g} s: {timeout!r}")
    return float(timeout)


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


# --------------------------------------------------------------------------- redis stream


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def stream_id_ms(stream_id: bytes | str) -> int:
    """The millisecond part of a Redis stream id such as ``1700000000000-0``."""
    match = _STREAM_ID_RE.fullmatch(_text(stream_id))
    if not match:
        raise EngineStateError(f"not a stream id: {stream_id!r}")
    return int(match.group(1))


def span_rate(ids_ms: list[int]) -> float | None:
    """Events per second of the stream-id times ``ids_ms`` (newest first): ``(n - 1) / span``;
    None with fewer than two ids or a zero span."""
    span_ms = ids_ms[0] - ids_ms[-1] if ids_ms else 0
    return (len(ids_ms) - 1) * 1000.0 / span_ms if len(ids_ms) >= 2 and span_ms > 0 else None


def _server_now_ms(client: Any) -> int:
    seconds, microseconds = client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def stream_stats(
    client: Any, stream: str, sample: int = DEFAULT_SAMPLE, now_ms: int | None = None
) -> dict[str, Any]:
    """Length, newest id, age of the newest event and recent rate of a Redis stream.

    The rate is ``(n - 1) / span`` over the ids of the newest ``sample`` entries (None with
    fewer than two entries or a zero span). ``now_ms`` defaults to the Redis server's clock,
    the one that stamps auto-generated ids. A missing stream has length 0 and no rates.
    """
    validate_stream_name(stream)
    validate_sample(sample)
    length = int(client.xlen(stream))
    entries = client.xrevrange(stream, max="+", min="-", count=sample) if length else []
    ids_ms = [stream_id_ms(entry_id) for entry_id, _fields in entries]
    stats: dict[str, Any] = {
        "stream": stream,
        "length": length,
        "last_id": _text(entries[0][0]) if entries else None,
        "last_event_age_s": None,
        "rate_per_s": None,
        "sampled": len(ids_ms),
    }
    if ids_ms:
        now = _server_now_ms(client) if now_ms is None else now_ms
        stats["last_event_age_s"] = round((now - ids_ms[0]) / 1000.0, 3)
        rate = span_rate(ids_ms)
        stats["rate_per_s"] = None if rate is None else round(rate, 3)
    return stats


# --------------------------------------------------------------------------- composition


def _service_problems(service: ServiceState) -> list[str]:
    if service.load_state != "loaded":
        return [f"service {service.unit} is not loaded (LoadState={service.load_state})"]
    if not service.running:
        return [
            f"service {service.unit} is not running (ActiveState={service.active_state}, "
            f"SubState={service.sub_state}, Result={service.result})"
        ]
    return []


def _startup_of(run: Runner, service: ServiceState) -> tuple[StartupReport, list[str]]:
    if not service.invocation_id:
        return StartupReport(), [f"service {service.unit} has no InvocationID: no start to prove"]
    try:
        lines = read_journal(run, service.unit, service.invocation_id)
    except EngineStateError as exc:
        return StartupReport(), [f"journal of invocation {service.invocation_id} unreadable: {exc}"]
    startup = parse_startup(lines)
    return startup, _startup_problems(startup, service.invocation_id)


def _startup_problems(startup: StartupReport, invocation_id: str) -> list[str]:
    problems = list(startup.anomalies)
    if startup.build is None and not startup.builds:
        problems.append(f"AI_ENGINE_BUILD missing from the journal of invocation {invocation_id}")
    if not startup.voting:
        problems.append(f"no voting model loaded in invocation {invocation_id}")
    if not startup.ready:
        problems.append(f"engine never logged [READY] in invocation {invocation_id}")
    if startup.errors:
        problems.append(
            f"{len(startup.errors)} [ERROR]/[FATAL] line(s) in invocation {invocation_id}, "
            f"latest: {startup.errors[-1].strip()}"
        )
    return problems


def _git_of(run: Runner, checkout: str) -> tuple[dict[str, str | None], list[str]]:
    try:
        sha = read_git_head(run, checkout)
    except EngineStateError as exc:
        return {"sha": None, "short": None}, [f"git HEAD of {checkout} unreadable: {exc}"]
    return {"sha": sha, "short": sha[:7]}, []


def _build_problems(build: str | None, sha: str | None) -> list[str]:
    if build is None or sha is None or build_matches(build, sha):
        return []
    return [f"running build {build} does not match git HEAD {sha[:12]}"]


def _stream_of(
    client: Any, stream: str, sample: int, max_event_age_s: float
) -> tuple[dict[str, Any], list[str]]:
    try:
        stats = stream_stats(client, stream, sample)
    except Exception as exc:  # any client failure is a fact about the host, never a crash
        stats = {
            "stream": stream,
            "length": None,
            "last_id": None,
            "last_event_age_s": None,
            "rate_per_s": None,
            "sampled": 0,
            "error": f"{type(exc).__name__}: {exc}",
        }
        return stats, [f"redis unreachable or failing: {stats['error']}"]
    stats["error"] = None
    age = stats["last_event_age_s"]
    if age is None:
        return stats, [f"no events on stream {stream} (empty or missing)"]
    if age > max_event_age_s:
        return stats, [
            f"no events on stream {stream} in the last {max_event_age_s:g} s "
            f"(newest is {age:.1f} s old)"
        ]
    return stats, []


def collect_engine_status(
    run: Runner,
    redis_client: Any,
    unit: str = DEFAULT_UNIT,
    checkout: str = DEFAULT_CHECKOUT,
    stream: str = DEFAULT_STREAM,
    *,
    sample: int = DEFAULT_SAMPLE,
    max_event_age_s: float = MAX_EVENT_AGE_S,
) -> dict[str, Any]:
    """Everything known about the engine on this host, as a JSON-serialisable dict.

    Raises :class:`EngineStateError` only for bad input or when ``systemctl show`` fails;
    everything else that is not healthy (journal, git, Redis) ends up in ``problems``, and
    ``build_verified`` is True only with a proven build equal to git HEAD.
    """
    validate_unit(unit)
    validate_checkout(checkout)
    validate_stream_name(stream)
    validate_sample(sample)
    service = read_service_state(run, unit)
    startup, startup_problems = _startup_of(run, service)
    git, git_problems = _git_of(run, checkout)
    stream_info, stream_problems = _stream_of(redis_client, stream, sample, max_event_age_s)
    return {
        "service": {**service.as_dict(), **service_uptime(service)},
        "startup": startup.as_dict(),
        "git": git,
        "build_verified": build_matches(startup.build, git["sha"]),
        "stream": stream_info,
        "problems": [
            *_service_problems(service),
            *startup_problems,
            *git_problems,
            *_build_problems(startup.build, git["sha"]),
            *stream_problems,
        ],
    }


# --------------------------------------------------------------------------- table

_COLUMNS = (
    "HOST",
    "SERVICE (restarts)",
    "BUILD (journal)",
    "GIT HEAD",
    "VERIFIED",
    "STREAM LEN",
    "RATE (/s)",
    "LAST EVENT (s ago)",
)


def _cell(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def _build_cell(startup: Mapping[str, Any]) -> str:
    if startup.get("build"):
        return str(startup["build"])
    return "CONFLICT" if startup.get("builds") else "-"


def _row(host: str, result: Mapping[str, Any]) -> list[str]:
    service = result.get("service") or {}
    startup = result.get("startup") or {}
    stream = result.get("stream") or {}
    state = "-"
    if service:
        state = (
            f"{service.get('active_state')}/{service.get('sub_state')} "
            f"({service.get('n_restarts')})"
        )
    return [
        str(host),
        state,
        _build_cell(startup),
        _cell((result.get("git") or {}).get("short")),
        "yes" if result.get("build_verified") is True else "NO",
        _cell(stream.get("length")),
        _cell(stream.get("rate_per_s"), "{:.1f}"),
        _cell(stream.get("last_event_age_s"), "{:.1f}"),
    ]


def _host_problems(result: Mapping[str, Any]) -> list[str]:
    if "problems" in result and "service" in result:
        return [str(problem) for problem in result["problems"] or []]
    reason = result.get("msg") or ("host unreachable" if result.get("unreachable") else None)
    return [f"no status: {reason or 'the engine_status module returned nothing'}"]


def format_status_table(results: Mapping[str, Mapping[str, Any] | None]) -> str:
    """Render ``{host: engine_status result}`` as a fixed-width table plus problems per host.

    Results without status data (a failed or unreachable host) show as dashes, ``NO`` and a
    ``no status`` problem, so nothing unknown ever looks healthy.
    """
    rows = [list(_COLUMNS)]
    problem_lines: list[str] = []
    for host, result in results.items():
        result = result or {}
        rows.append(_row(host, result))
        problem_lines.extend(f"  {host}: {problem}" for problem in _host_problems(result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    if problem_lines:
        lines.append("PROBLEMS:")
        lines.extend(problem_lines)
    else:
        lines.append("PROBLEMS: none")
    return "\n".join(lines)
