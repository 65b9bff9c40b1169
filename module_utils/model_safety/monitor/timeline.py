"""``model-safety monitor-timeline``: the monitor's check log read back as one page to look at.

A long-running monitor writes one JSON line per host and check to its check log (and each of
its records: ``monitoring_started``, ``violation``, ``rollback_executed``,
``monitoring_completed``, as ``{"record": {...}}``); rewriting a growing page at every check
would cost the monitor more with every hour, so this separate reader builds the page when
someone asks for it. :func:`read_timeline` streams the log once, line by line (its rotated
backups ``PATH.N`` .. ``PATH.1`` first, oldest first), keeps a few numbers per check and
counts the lines it cannot use; :mod:`.timeline_page` draws them.

Without ``--since`` each host's latest run is shown (the lines from its newest
``monitoring_started`` that did not resume a window); with ``--since TIME`` everything from
TIME on. Exit codes: 0 page written, 2 when the log cannot be read, holds nothing usable, or
has no check of the model/host asked for (nothing written then).

Standard library only at import time (the page module loads matplotlib when it runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..names import is_model_name

EXIT_WRITTEN, EXIT_ERROR = 0, 2
DECISION_EVENTS = ("monitoring_started", "violation", "rollback_executed", "monitoring_completed")
# The window measures a check carries, kept per check for the charts.
WINDOW_FIGURES = ("n", "agreement", "hard_disagree", "p10", "median", "p90")


class TimelineError(Exception):
    """A check log that cannot be read, or holds nothing for the page."""


def record_outcome(record: Mapping[str, Any]) -> str | None:
    """The end of a watch a record tells (``rollback_executed``: rolled back or rollback
    failed; ``monitoring_completed``: completed, inconclusive or ended), else None."""
    result = record.get("result")
    if record["event"] == "rollback_executed":
        return "rolled back" if result == "rolled_back" else "rollback failed"
    if record["event"] == "monitoring_completed":
        return {"safe": "completed", "inconclusive": "inconclusive"}.get(str(result), "ended")
    return None


@dataclass
class HostTimeline:
    """One model's checks on one host, in the log's order."""

    model: str
    host: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    earlier_runs: int = 0

    def decision(self) -> dict[str, Any]:
        """How the watch ended: ``outcome`` (rolled back, rollback failed, completed,
        inconclusive, ended, or still open), when and why."""
        for record in reversed(self.records):
            outcome = record_outcome(record)
            if outcome is None:
                continue
            if record["event"] == "rollback_executed":
                runner = record.get("runner") or {}
                detail = (
                    f"{record.get('trigger') or ''} (ansible-runner "
                    f"{runner.get('status', '?')}, rc {runner.get('rc', '?')})"
                )
            elif outcome == "completed":
                detail = (
                    f"{record.get('window_events')} events bound every rule on the healthy side"
                )
            else:
                why = record.get("missing") or [record.get("reason")]
                detail = "; ".join(str(item) for item in why if item)
            return {"outcome": outcome, "ts": record["ts"], "detail": detail}
        if self.violations:
            last = self.violations[-1]
            return {
                "outcome": "violation, no rollback recorded",
                "ts": last["ts"],
                "detail": "the log ends before the rollback's record (still running, or the "
                "monitor stopped)",
            }
        return {"outcome": "monitoring", "ts": None, "detail": "no decision recorded yet"}


@dataclass
class Timeline:
    """What the page shows: each host's timeline of one model and what was left out."""

    path: str
    model: str
    hosts: dict[str, HostTimeline]
    since: float | None = None
    lines: int = 0
    malformed: int = 0
    other_models: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def log_files(path: str) -> list[str]:
    """``path``'s rotated backups as the monitor's logger names them (``PATH.5`` ..
    ``PATH.1``, the oldest first) and ``path`` itself."""
    from .store import CHECK_LOG_BACKUPS  # here: the CLI's start imports this module

    backups = [f"{path}.{n}" for n in range(CHECK_LOG_BACKUPS, 0, -1)]
    return [*(name for name in backups if os.path.isfile(name)), path]


def _lines(files: list[str]) -> Iterator[bytes]:
    for name in files:
        try:
            handle = open(name, "rb")  # noqa: SIM115 - closed below, after the last line
        except FileNotFoundError:
            if name == files[-1]:
                raise
            continue  # rotated away since the listing
        with handle:
            yield from handle


def _epoch(text: Any) -> float | None:
    """The check log's ``ts`` (``2026-01-10T12:00:00.123Z``) as epoch seconds, else None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def parse_since(text: str) -> float:
    """``--since``: an ISO-8601 time with a zone, as epoch seconds."""
    moment = _epoch(str(text).strip())
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time with a zone (Z, +01:00): {text!r}")
    return moment


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _check_entry(line: Mapping[str, Any], ts: float) -> dict[str, Any]:
    """The few numbers the page needs of one check line (a check's full line is ~1-2 KB)."""
    window = line.get("window") if isinstance(line.get("window"), Mapping) else {}
    actions = window.get("actions") if isinstance(window.get("actions"), Mapping) else {}
    events = _number(line.get("events"))
    return {
        "ts": ts,
        "check": line.get("check"),
        "status": str(line["status"]),
        "events": int(events) if events is not None else 0,
        "reason": line.get("reason"),
        **{name: _number(window.get(name)) for name in WINDOW_FIGURES},
        "actions": {str(a): _number(v) for a, v in actions.items()},
    }


def _violations_of(line: Mapping[str, Any], ts: float) -> list[dict[str, Any]]:
    triggered = line.get("triggered") if isinstance(line.get("triggered"), list) else []
    return [
        {
            "ts": ts,
            "check": line.get("check"),
            "rule": v.get("rule"),
            "value": v.get("value"),
            "threshold": v.get("threshold"),
            "scope": v.get("scope") or "host",
            "text": v.get("text"),
        }
        for v in triggered
        if isinstance(v, Mapping)
    ]


def _usable(line: Any) -> tuple[str, dict[str, Any], float] | None:
    """(kind, the check line or the record, ts) of a line the page uses: ``check`` or
    ``record``; None for the log's other lines (webhook outcomes, pooled findings, rollback
    runner states, errors). ValueError for a line that claims to be either and is not."""
    if not isinstance(line, dict):
        raise ValueError("not a JSON object")
    if isinstance(line.get("record"), Mapping):
        kind, body = "record", dict(line["record"])
        if body.get("event") not in DECISION_EVENTS:
            return None
    elif "check" in line and "host" in line:
        kind, body = "check", line
        if not isinstance(line.get("status"), str):
            raise ValueError("a check without a status")
    else:
        return None
    ts = _epoch(line.get("ts"))
    if (
        ts is None
        or not isinstance(body.get("host"), str)
        or not isinstance(body.get("model"), str)
    ):
        raise ValueError("a check or record without ts, host or model")
    return kind, body, ts


def read_timeline(
    path: str, model: str | None = None, host: str | None = None, since: float | None = None
) -> Timeline:
    """Stream ``path`` (and its rotated backups) once into the timeline of ``model`` (default:
    the model of the log's last check) on every host, or only ``host``. TimelineError when
    the log cannot be read or has no check for them."""
    files = log_files(path)
    by_model: dict[str, dict[str, HostTimeline]] = {}
    lines = malformed = 0
    last_model = None
    try:
        for raw in _lines(files):
            if not raw.strip():
                continue
            lines += 1
            try:
                usable = _usable(json.loads(raw))
            except (ValueError, RecursionError):  # not JSON or UTF-8, or not what it claims
                malformed += 1
                continue
            if usable is None:
                continue
            kind, body, ts = usable
            if (since is not None and ts < since) or (host is not None and body["host"] != host):
                continue
            if model is not None and body["model"] != model:
                continue
            hosts = by_model.setdefault(body["model"], {})
            timeline = hosts.get(body["host"])
            if timeline is None:
                timeline = hosts[body["host"]] = HostTimeline(body["model"], body["host"])
            if kind == "check":
                last_model = body["model"]
                timeline.checks.append(_check_entry(body, ts))
                timeline.violations += _violations_of(body, ts)
                continue
            if body["event"] == "monitoring_started":
                if not body.get("resumed") and since is None and timeline.checks:
                    # A new watch of this host: without --since only the latest is shown,
                    # so what came before is dropped here (memory: one run per host).
                    hosts[body["host"]] = timeline = HostTimeline(
                        body["model"], body["host"], earlier_runs=timeline.earlier_runs + 1
                    )
                settings = body.get("settings")
                timeline.settings = dict(settings) if isinstance(settings, Mapping) else {}
            timeline.records.append({**body, "ts": ts})
    except OSError as exc:
        raise TimelineError(f"cannot read the check log {path}: {exc}") from None
    if not lines:
        raise TimelineError(f"the check log {path} is empty")
    chosen = model or last_model
    found = {
        name: timeline for name, timeline in by_model.get(chosen, {}).items() if timeline.checks
    }
    if not found:
        wanted = " ".join(
            part
            for part in (
                f"of model {model}" if model else "",
                f"on host {host}" if host else "",
                "since the --since time" if since is not None else "",
            )
            if part
        )
        raise TimelineError(
            f"no check {wanted or 'at all'} in the check log {path} ({lines} lines, "
            f"{malformed} malformed)"
        )
    return Timeline(
        path=path,
        model=str(chosen),
        hosts=dict(sorted(found.items())),
        lines=lines,
        malformed=malformed,
        since=since,
        other_models=sorted(name for name in by_model if name != chosen),
        files=files,
    )


def summary_line(timeline: Timeline, out: str) -> str:
    """What the command prints when the page is written."""
    outcomes = ", ".join(
        f"{name} {host.decision()['outcome']}" for name, host in timeline.hosts.items()
    )
    checks = sum(len(host.checks) for host in timeline.hosts.values())
    violations = sum(len(host.violations) for host in timeline.hosts.values())
    return (
        f"MONITOR TIMELINE of {timeline.model} written to {out}: {checks} checks, "
        f"{violations} violations; {outcomes}; {timeline.malformed} malformed lines skipped"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``monitor-timeline`` subcommand."""
    text = (
        "the monitor's check log as one HTML page: per host its checks over time, the "
        "violations, the decision and the rollback (read-only; exit 0 written, 2 not)"
    )
    parser = subparsers.add_parser("monitor-timeline", help=text, description=text)
    parser.set_defaults(handler=run_timeline)
    parser.add_argument("--check-log", metavar="PATH", required=True, help="the monitor's log")
    parser.add_argument("--html", metavar="OUT", required=True, help="the page to write (0640)")
    parser.add_argument("--model", metavar="M", help="default: the model of the last check")
    parser.add_argument("--host", metavar="H", help="only this host (default: every host)")
    parser.add_argument(
        "--since",
        metavar="TIME",
        type=parse_since,
        help="every check from this ISO-8601 time on (default: each host's latest run)",
    )


def run_timeline(args: argparse.Namespace) -> int:
    """The ``monitor-timeline`` handler: read, render, write atomically."""
    from ..judgement.reports import atomic_write

    if args.model is not None and not is_model_name(args.model):
        print(f"model-safety monitor-timeline: not a model name: {args.model!r}", file=sys.stderr)
        return EXIT_ERROR
    out = os.path.realpath(args.html)
    if any(os.path.realpath(name) == out for name in log_files(args.check_log)):
        print(f"model-safety monitor-timeline: {args.html} is the check log", file=sys.stderr)
        return EXIT_ERROR
    try:
        timeline = read_timeline(args.check_log, args.model, args.host, args.since)
        # Only now: matplotlib takes a while to load, a log with nothing to show is told first.
        from .timeline_page import render_timeline

        page = render_timeline(timeline)
        atomic_write(os.path.abspath(args.html), page)
    except (TimelineError, OSError) as exc:
        print(f"model-safety monitor-timeline: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(summary_line(timeline, args.html))
    return EXIT_WRITTEN
