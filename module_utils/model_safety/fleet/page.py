"""The fleet status page: one self-contained HTML file (inline CSS, no script, nothing from
the network) and the copies of the reports it links, written on the controller.

``render_status_page(fleet, reports_href, now)`` turns ``{host: {"engine": engine_status
result, "details": status_details result}}`` into the page: an overview row per host and a
card per host with its service, build (and whether it is proven), every model's running and
configured role and weight, the last gate verdict, the monitor's state, the last activation
and rollback, the links to its reports and its problems. A host whose status could not be
read (unreachable, a failed task, nothing registered) is shown as such, never left out; a
piece that is missing reads "unknown", a log without such a record "none".

``write_status_page(path, fleet)`` writes each host's reports (the texts status_details read)
to ``<page stem>_reports/<host>/<name>`` beside the page, then the page, each atomically with
mode 0640, so the page and its reports can be copied together and the links stay relative.
Host and report names from the hosts are checked before they become paths (a host may be
anything): a name that is not plain is not written and says so on the page.

Every text from a host is escaped with ``html.escape``. Standard library only: the
``status_page`` module runs this on the controller, where no plotting library is assumed.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..engine.status import host_problems
from ..fileio import absolute_path_problem, ensure_directory, write_atomic
from ..judgement.report_names import LATEST_NAME_RE, REPORT_NAME_RE
from ..utctime import iso_s
from .details import model_roles

FILE_MODE = 0o640
DIR_MODE = 0o750
REPORTS_SUFFIX = "_reports"
HOST_DIR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
"""A host name that can be a directory name as it is (no '/', no leading dot)."""
UNKNOWN, NONE = "unknown", "none"
_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.1em; } h2 { margin: 0 0 0.4em 0; font-size: 1.2em; }
.meta { color: #555; margin-bottom: 1em; }
table { border-collapse: collapse; margin: 0.3em 0; }
td, th { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #eceff1; }
section.host { border: 1px solid #90a4ae; border-radius: 4px; padding: 0.8em; margin: 1em 0; }
.state { font-weight: bold; padding: 0.1em 0.5em; }
.healthy { background: #c8e6c9; } .problem { background: #ffcdd2; }
.unreachable { background: #e0e0e0; color: #b71c1c; }
ul.problems li { color: #b71c1c; }
"""
_STATE_TEXT = {"healthy": "HEALTHY", "problem": "PROBLEM", "unreachable": "NO STATUS"}


class StatusPageError(Exception):
    """A page path that cannot be used."""


def _text(value: Any, missing: str = UNKNOWN) -> str:
    """``value`` escaped for HTML; ``missing`` for None or an empty text."""
    if value is None or value == "":
        return html.escape(missing)
    return html.escape(str(value), quote=True)


def _fraction(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.6g}"


def _section(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------- one host


def has_status(engine: Mapping[str, Any]) -> bool:
    """engine_status ran and returned its data (the host answered)."""
    return "service" in engine and "problems" in engine


def host_state(entry: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``(state, problems)`` of one host: ``unreachable`` (no status read: unreachable, failed
    or missing), ``problem`` or ``healthy``; the problems of engine_status, a build that is
    not proven, and those of status_details (or why it has none)."""
    engine, details = _section(entry.get("engine")), _section(entry.get("details"))
    problems = host_problems(engine)
    if not has_status(engine):
        return "unreachable", problems
    if engine.get("build_verified") is not True and not problems:
        problems.append("build not verified")
    if isinstance(details.get("problems"), list):
        problems += [str(problem) for problem in details["problems"]]
    else:
        problems.append(f"no status details: {details.get('msg') or 'nothing returned'}")
    return ("problem" if problems else "healthy"), problems


def report_copies(host: str, details: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list]:
    """``(copies, skipped)`` of one host's reports: each copy ``{kind, name, time, text}`` is
    written and linked; each skipped one ``{name, why}`` is only named. A report is copied
    when the host sent its text and both its name and the host's are plain."""
    copies, skipped = [], []
    for report in details.get("reports") or []:
        if not isinstance(report, Mapping):
            continue
        name = str(report.get("name"))
        if not (REPORT_NAME_RE.fullmatch(name) or LATEST_NAME_RE.fullmatch(name)):
            skipped.append({"name": name, "why": "not a report name"})
        elif not HOST_DIR_RE.fullmatch(host):
            skipped.append({"name": name, "why": "the host name is no directory name"})
        elif not isinstance(report.get("text"), str):
            skipped.append({"name": name, "why": report.get("skipped") or "not fetched"})
        else:
            copies.append({**report, "name": name})
    return copies, skipped


def _models_table(engine: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    startup = _section(engine.get("startup"))
    configured = details.get("models") if isinstance(details.get("models"), Mapping) else None
    running = None
    if startup.get("voting"):
        canary = _section(startup.get("canary")).get("model")
        running = model_roles(
            startup.get("voting"), startup.get("shadow"), canary, configured or ()
        )
    if running is None and configured is None:
        return "<p>models: unknown</p>"
    names = list(dict.fromkeys([*(running or {}), *(configured or {})]))
    rows = [
        "<tr><th>model</th><th>running role</th><th>weight</th>"
        "<th>configured role</th><th>weight</th></tr>"
    ]
    for name in names:
        cells = [_text(name)]
        for roles in (running, configured):
            role = _section((roles or {}).get(name))
            cells += [_text(role.get("role")), _fraction(role.get("weight"))]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return '<table class="models">' + "".join(rows) + "</table>"


def _service(engine: Mapping[str, Any]) -> str:
    service = _section(engine.get("service"))
    if not service:
        return UNKNOWN
    state = f"{service.get('active_state')}/{service.get('sub_state')}"
    return (
        f"{_text(state)} since {_text(service.get('active_since'))}, "
        f"{_text(service.get('n_restarts'))} restart(s)"
    )


def _build(engine: Mapping[str, Any]) -> str:
    startup, git = _section(engine.get("startup")), _section(engine.get("git"))
    verified = "verified" if engine.get("build_verified") is True else "NOT verified"
    return f"{_text(startup.get('build'))} ({verified}; git HEAD {_text(git.get('short'))})"


def _stream(engine: Mapping[str, Any]) -> str:
    stream = _section(engine.get("stream"))
    if not stream:
        return UNKNOWN
    return (
        f"{_text(stream.get('length'))} events, {_fraction(stream.get('rate_per_s'))}/s, "
        f"newest {_fraction(stream.get('last_event_age_s'))} s ago"
    )


def _gate_known(details: Mapping[str, Any]) -> bool:
    """Whether ``gate`` says something: a null one is "none" only if the reports were read."""
    return "gate" in details and details.get("reports") is not None


def _gate(details: Mapping[str, Any]) -> str:
    if not _gate_known(details):
        return UNKNOWN
    gate = details["gate"]
    if not isinstance(gate, Mapping):
        return NONE
    text = (
        f"{_text(gate.get('verdict'))} at {_text(gate.get('time'))} "
        f"({_text(gate.get('mode'))}, model {_text(gate.get('model'), 'all')}, "
        f"{_text(gate.get('event_count'))} events)"
    )
    blockers = gate.get("blockers") or []
    if blockers:
        text += ": " + "; ".join(_text(blocker) for blocker in blockers)
    return text


def _monitor(details: Mapping[str, Any]) -> str:
    monitor = details.get("monitor")
    if not isinstance(monitor, Mapping):
        return UNKNOWN
    state = monitor.get("state")
    if state == NONE:
        return NONE
    text = f"{_text(state)} ({_text(monitor.get('model'))}) at {_text(monitor.get('ts'))}"
    if state == "completed":
        text += f": {_text(monitor.get('result'))}, {_text(monitor.get('checks'))} check(s)"
    elif monitor.get("violations"):
        text += ": " + "; ".join(_text(item) for item in monitor["violations"])
    return text


def _change(details: Mapping[str, Any], key: str) -> str:
    activation = details.get("activation")
    if not isinstance(activation, Mapping):
        return UNKNOWN
    record = activation.get(key)
    if not isinstance(record, Mapping):
        return NONE
    weight = record.get("weight")
    text = (
        f"{_text(record.get('action'))} {_text(record.get('model'))}"
        + (f" at weight {_fraction(weight)}" if weight is not None else "")
        + f", {_text(record.get('ts'))}: {_text(record.get('outcome'))}"
    )
    if record.get("reason"):
        text += f" ({_text(record['reason'])})"
    return text


def _reports(host: str, details: Mapping[str, Any], reports_href: str) -> str:
    if not isinstance(details.get("reports"), list):
        return UNKNOWN
    copies, skipped = report_copies(host, details)
    if not copies and not skipped:
        return NONE
    items = []
    for report in copies:
        href = quote(f"{reports_href}/{host}/{report['name']}")
        when = f" ({_text(report.get('time'))})" if report.get("time") else ""
        items.append(f'<li><a href="{_text(href)}">{_text(report["name"])}</a>{when}</li>')
    items += [
        f"<li>{_text(item['name'])}: not copied, {_text(item['why'])}</li>" for item in skipped
    ]
    return '<ul class="reports">' + "".join(items) + "</ul>"


def _card(index: int, host: str, entry: Mapping[str, Any], reports_href: str) -> str:
    engine, details = _section(entry.get("engine")), _section(entry.get("details"))
    state, problems = host_state(entry)
    rows = [
        ("service", _service(engine)),
        ("build", _build(engine)),
        ("telemetry", _stream(engine)),
        ("last gate", _gate(details)),
        ("monitor", _monitor(details)),
        ("last activation", _change(details, "last_activation")),
        ("last rollback", _change(details, "last_rollback")),
        ("reports", _reports(host, details, reports_href)),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    listed = "".join(f"<li>{_text(problem)}</li>" for problem in problems)
    problems_html = f'<p>problems:</p><ul class="problems">{listed}</ul>' if listed else ""
    return (
        f'<section class="host" id="host-{index}"><h2>{_text(host)} '
        f'<span class="state {state}">{_STATE_TEXT[state]}</span></h2>'
        f"{_models_table(engine, details)}"
        f"<table>{table}</table>"
        f"{problems_html or '<p>problems: none</p>'}</section>"
    )


def _overview_row(index: int, host: str, entry: Mapping[str, Any]) -> str:
    engine, details = _section(entry.get("engine")), _section(entry.get("details"))
    state, problems = host_state(entry)
    startup = _section(engine.get("startup"))
    gate = details.get("gate") if isinstance(details.get("gate"), Mapping) else {}
    monitor = _section(details.get("monitor"))
    cells = [
        f'<a href="#host-{index}">{_text(host)}</a>',
        f'<span class="state {state}">{_STATE_TEXT[state]}</span>',
        _text(_section(engine.get("service")).get("active_state")),
        _text(startup.get("build")),
        _text(_section(startup.get("canary")).get("model"), NONE if startup else UNKNOWN),
        _text(gate.get("verdict"), NONE if _gate_known(details) else UNKNOWN),
        _text(monitor.get("state")),
        str(len(problems)),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


# --------------------------------------------------------------------------- the page


def render_status_page(
    fleet: Mapping[str, Mapping[str, Any]], reports_href: str, now: datetime | None = None
) -> str:
    """The page of ``fleet`` (``{host: {"engine": ..., "details": ...}}``, in that order),
    its report links under ``reports_href`` (relative to the page)."""
    now = now or datetime.now(UTC)
    hosts = list(fleet.items())
    states = [host_state(_section(entry))[0] for _host, entry in hosts]
    healthy = states.count("healthy")
    header = (
        "<tr><th>host</th><th>state</th><th>service</th><th>build</th><th>canary</th>"
        "<th>last gate</th><th>monitor</th><th>problems</th></tr>"
    )
    overview = "".join(
        _overview_row(index, str(host), _section(entry))
        for index, (host, entry) in enumerate(hosts, 1)
    )
    cards = "".join(
        _card(index, str(host), _section(entry), reports_href)
        for index, (host, entry) in enumerate(hosts, 1)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Fleet status</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>Fleet status</h1>"
        f'<p class="meta">{len(hosts)} host(s), {healthy} healthy, generated {iso_s(now)}'
        "</p>"
        f'<table class="overview">{header}{overview}</table>{cards}'
        "</body></html>\n"
    )


def reports_dir_of(path: str) -> str:
    """Where the reports of the page at ``path`` go: ``<page stem>_reports`` beside it."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(path), stem + REPORTS_SUFFIX)


def check_page_path(path: Any) -> str:
    """``path`` if the page can be written there: a normalised absolute path whose directory
    exists, not a directory itself; else StatusPageError."""
    problem = absolute_path_problem(path)
    if problem is not None:
        raise StatusPageError(f"the page path {path!r} {problem}")
    if os.path.isdir(path):
        raise StatusPageError(f"the page path {path} is a directory")
    if not os.path.isdir(os.path.dirname(path)):
        raise StatusPageError(f"the page's directory {os.path.dirname(path)} does not exist")
    return path


def write_status_page(
    path: str,
    fleet: Mapping[str, Mapping[str, Any]],
    now: datetime | None = None,
    *,
    write: bool = True,
) -> dict[str, Any]:
    """Write each host's report copies, then the page at ``path`` (all atomic, 0640; with
    ``write`` False nothing, the check mode). Returns ``path``, ``reports`` (the paths
    written), ``hosts`` and ``problem_hosts`` (the hosts not healthy, in order)."""
    check_page_path(path)
    reports_root = reports_dir_of(path)
    written: list[str] = []
    for host, entry in fleet.items():
        copies, _skipped = report_copies(str(host), _section(_section(entry).get("details")))
        for report in copies:
            target = os.path.join(reports_root, str(host), report["name"])
            if write:
                ensure_directory(os.path.dirname(target), DIR_MODE)
                write_atomic(target, report["text"].encode("utf-8"), FILE_MODE)
            written.append(target)
    page = render_status_page(fleet, os.path.basename(reports_root), now)
    if write:
        write_atomic(path, page.encode("utf-8"), FILE_MODE)
    problem_hosts = [
        str(host) for host, entry in fleet.items() if host_state(_section(entry))[0] != "healthy"
    ]
    return {"page": path, "reports": written, "hosts": len(fleet), "problem_hosts": problem_hosts}


def fleet_of(
    hosts: Sequence[str], engine: Mapping[str, Any], details: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{host: {"engine", "details"}}`` of ``hosts`` from the two results by host (a host
    missing from either gets an empty one: shown as not read, never left out)."""
    return {
        str(host): {"engine": engine.get(host) or {}, "details": details.get(host) or {}}
        for host in hosts
    }
