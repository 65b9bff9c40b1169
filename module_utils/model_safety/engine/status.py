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

The readers live beside it (systemd, startup, git, stream_stats); this module composes them
and formats the hosts' results as a table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ..site_defaults import DEFAULT_CHECKOUT, DEFAULT_STREAM, DEFAULT_UNIT
from .commands import EngineStateError, Runner
from .config import CANARY_MODEL_KEY
from .git import build_matches, read_git_head
from .startup import StartupReport, parse_startup
from .stream_stats import DEFAULT_SAMPLE, stream_stats
from .systemd import ServiceState, read_journal, read_service_state, service_uptime
from .validation import validate_checkout, validate_sample, validate_stream_name, validate_unit

MAX_EVENT_AGE_S = 10.0
# The first QSC_CANARY_MODEL=<name> of a canary drop-in names the model it installs.
_CANARY_MODEL_RE = re.compile(re.escape(CANARY_MODEL_KEY) + r"=([a-z][a-z0-9_]*)")


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


def current_start(run: Runner, unit: str) -> str:
    """When the current start of ``unit`` became active (UTC, ISO-8601, engine_status's
    ``service.active_since``): the cutover of a gate over the events of that start.

    Raises :class:`EngineStateError` when the unit is not active: no start to gate after.
    """
    service = read_service_state(run, unit)
    since = service_uptime(service)["active_since"]
    if since is None:
        raise EngineStateError(
            f"{unit} is not active (ActiveState={service.active_state}, "
            f"SubState={service.sub_state}): no start to gate after"
        )
    return since


def read_canary_dropin(path: str) -> dict[str, Any]:
    """Which canary the drop-in at ``path`` installs: ``{"path", "exists", "model"}``, the model
    from its first ``QSC_CANARY_MODEL=<name>``, "unknown" when the file exists without one and
    None when there is no file.

    Raises :class:`EngineStateError` for a path that is not normalised and absolute, and for a
    file that exists but cannot be read (a canary that may be installed is never "none").
    """
    if (
        not isinstance(path, str)
        or not os.path.isabs(path)
        or os.path.normpath(path) != path
        or any(ord(char) < 32 or ord(char) == 127 for char in path)
    ):
        raise EngineStateError(f"canary drop-in must be a normalised absolute path: {path!r}")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {"path": path, "exists": False, "model": None}
    except OSError as exc:
        raise EngineStateError(f"cannot read the canary drop-in {path}: {exc.strerror}") from exc
    found = _CANARY_MODEL_RE.search(text)
    return {"path": path, "exists": True, "model": found.group(1) if found else "unknown"}


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


def host_problems(result: Mapping[str, Any]) -> list[str]:
    """The problems of one host's engine_status ``result``; a result without status data (a
    failed or unreachable task, none at all) is one ``no status`` problem."""
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
        problem_lines.extend(f"  {host}: {problem}" for problem in host_problems(result))
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
