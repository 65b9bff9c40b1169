"""The ``model-safety`` command line.

Each capability adds a subcommand with ``_register``; every subcommand returns the process
exit code (DESIGN.md "Modes and exit codes"):

* ``gate``: 0 PASS, 2 FAIL (any blocker, too few events, Redis unreachable, any error),
  3 COLLECTION (collection mode: data gathering, never promotes).
* ``scoreboard``: always 0, as DESIGN.md has it: it informs and never promotes; a window
  that cannot be read is said on the page ("SCOREBOARD unavailable") and in ``error``.
* ``feature-sanity``: 2 on a NaN/Inf/flatline feature or a feature drift blocker (or an
  error), else 0.
* ``feature-reference --out PATH``: 0 written, 2 not (:mod:`.judgement.drift_cli`).
* ``shadow-report --model M``: 0 READY, else 2.
* ``compare --model M``: 0 compared (decided or not: it informs), 2 on an error (a window
  ``--since-activation`` without a usable activation record included).
* ``damage --model M``: 0 reported (decided or not: it informs), 2 on an error.
* ``monitor --model M``: 0 completed safe, 4 rolled back, 5 completed inconclusive, 2 error
  (:mod:`.monitor_cli`).
* ``monitor-timeline --check-log PATH --html OUT``: 0 page written, 2 not (an unreadable or
  empty log, no check of the model/host) (:mod:`.monitor.timeline`).
* ``status --html OUT``: 0 every host healthy, 2 otherwise (the page is still written) or on
  an error (:mod:`.fleet.cli`).
* ``build-patchtst-dataset``: 0 built (or a dry run), 2 bad input or error (:mod:`.dataset_cli`).
* ``completion bash|zsh|fish``: 0 printed the shell's completion hook, 2 without argcomplete
  (imported by that command and by a shell's completion request only).

Usage errors exit 2 as well (fail-closed). The checks import numpy and redis only when they
run, so ``model-safety version`` stays quick and works without them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

from . import __version__
from .activation.log import DEFAULT_LOG_PATH
from .argtypes import cutover, positive_float, positive_int
from .dataset import cli as dataset_cli
from .engine.weights import WeightsError, parse_baseline
from .fleet import cli as status_cli
from .judgement import drift_cli
from .monitor import cli as monitor_cli
from .monitor import timeline as monitor_timeline
from .site_defaults import (
    DEFAULT_BASELINE_WEIGHTS,
    DEFAULT_STREAM,
    DEFAULT_TRADE_LOG,
    DEFAULT_TRADE_TABLE,
)

Handler = Callable[[argparse.Namespace], int]

EXIT_PASS, EXIT_FAIL, EXIT_COLLECTION = 0, 2, 3
PROG = "model-safety"
COMPLETION_SHELLS = ("bash", "zsh", "fish")
DEFAULT_REPORT_DIR = "reports/safety"
DEFAULT_PAGE_SIZE = 2000
DEFAULT_TIMEOUT_S = 10.0


class UsageError(Exception):
    """A bad command line (argparse's error, raised instead of exiting)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(self, message)


def _dependency_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("ansible-core", "ansible-runner", "numpy", "redis"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _cmd_version(args: argparse.Namespace) -> int:
    versions = _dependency_versions()
    if args.json:
        print(json.dumps({"model_safety": __version__, "runtime": versions}))
        return 0
    print(f"model-safety {__version__}")
    for name, version in versions.items():
        print(f"  {name} {version}")
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    """Print the shell's completion hook; argcomplete is imported here only, so the rest of
    the command line runs without it."""
    try:
        import argcomplete
    except ImportError:
        print("model-safety: completion needs the argcomplete package", file=sys.stderr)
        return EXIT_FAIL
    print(argcomplete.shellcode([PROG], shell=args.shell))
    return 0


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request (the hook sets _ARGCOMPLETE) and exit; without
    argcomplete installed, return and let the command run as usual."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


# --------------------------------------------------------------------------- arguments


def _add_window_options(
    parser: argparse.ArgumentParser, reports: bool = True, since: bool = False
) -> None:
    """The window and output options; ``since`` adds ``--since``, the issue's name for
    ``--after`` (the same option)."""
    window = parser.add_argument_group("window (what is read from Redis)")
    window.add_argument(
        "--after",
        *(("--since",) if since else ()),
        metavar="CUTOVER",
        type=cutover,
        help="only events later than this count: an ISO-8601 time with Z or an offset "
        "(2026-01-10T12:00:00Z) or a stream id (1736510400000-0)",
    )
    window.add_argument(
        "--count",
        metavar="N",
        type=positive_int,
        help="the newest N events (default 500; with --after, every later event unless given)",
    )
    window.add_argument(
        "--redis-url",
        metavar="URL",
        help="redis://[:PASSWORD@]HOST:PORT/DB, rediss:// (TLS) or unix:///PATH "
        "(default $MODEL_SAFETY_REDIS_URL, else redis://127.0.0.1:6379/0); a password not in "
        "the URL comes from $MODEL_SAFETY_REDIS_PASSWORD or $REDISCLI_AUTH; never printed",
    )
    window.add_argument(
        "--stream", metavar="S", default=DEFAULT_STREAM, help=f"default {DEFAULT_STREAM}"
    )
    window.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help=f"connect and reply timeout (default {DEFAULT_TIMEOUT_S:g})",
    )
    window.add_argument(
        "--page-size",
        metavar="N",
        type=positive_int,
        default=DEFAULT_PAGE_SIZE,
        help=f"entries per XRANGE page (default {DEFAULT_PAGE_SIZE})",
    )
    output = parser.add_argument_group("output")
    if reports:
        output.add_argument(
            "--report-dir",
            metavar="DIR",
            default=DEFAULT_REPORT_DIR,
            help=f"where the Markdown and JSON reports go (default {DEFAULT_REPORT_DIR})",
        )
        output.add_argument("--no-report", action="store_true", help="write no report files")
        output.add_argument(
            "--html",
            action="store_true",
            help="also write a self-contained HTML report with charts (gate, scoreboard and "
            "shadow-report only; matplotlib, about 1 s more)",
        )
    output.add_argument(
        "--json", action="store_true", help="print the full result as one JSON object"
    )


def add_since_activation(parser: argparse.ArgumentParser) -> None:
    """``--since-activation`` and ``--activation-log PATH`` (read by :func:`since_activation`)."""
    since = parser.add_argument_group("since the activation")
    since.add_argument(
        "--since-activation",
        action="store_true",
        help="only events since the model's newest canary_activated, shadow_activated or "
        "promotion_step record in the activation log (its started_at); not with --after/--since",
    )
    since.add_argument(
        "--activation-log",
        metavar="PATH",
        help=f"the host's activation log for --since-activation (default {DEFAULT_LOG_PATH})",
    )


def since_activation(args: argparse.Namespace, model: str) -> dict[str, Any] | None:
    """With ``--since-activation``: set ``args.after`` to the start of ``model``'s newest
    activation (:func:`.activation.since.activation_start`) and return ``{start, log, record}``
    for the result; None without it. ValueError (one sentence) for the options used together
    or apart wrongly, and for a log without a usable activation record."""
    from .activation.since import ActivationStartError, activation_start

    if not args.since_activation:
        if args.activation_log is not None:
            raise ValueError("--activation-log is only read with --since-activation")
        return None
    if args.after is not None:
        raise ValueError("--since-activation and --after/--since are mutually exclusive")
    path = DEFAULT_LOG_PATH if args.activation_log is None else args.activation_log
    try:
        start, record = activation_start(path, model)
    except ActivationStartError as exc:
        raise ValueError(f"--since-activation: {exc}") from None
    args.after = start
    return {"start": start, "log": path, "record": record}


def _window_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "count": args.count,
        "after": args.after,
        "page_size": args.page_size,
        "timeout": args.timeout,
    }


# --------------------------------------------------------------------------- output


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{100.0 * value:.1f}%"


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return "-" if value is None else str(value)


def _gate_summary(result: Mapping[str, Any]) -> list[str]:
    judged = result.get("model") or "every voting model"
    lines = [
        f"QUALITY GATE {result.get('verdict')} (mode {result.get('mode')}, "
        f"{result.get('event_count', 0)} events, {result.get('malformed', 0)} malformed, "
        f"judged: {judged})"
    ]
    lines += [f"  blocker: {blocker}" for blocker in result.get("blockers") or []]
    models = result.get("models") or {}
    width = max((len(name) for name in models), default=0)
    for name, model in models.items():
        actions = model.get("actions") or {}
        lines.append(
            f"  {name:<{width}}  {'PASS' if model.get('passed') else 'FAIL'}"
            f"{' (shadow)' if model.get('shadow') else ''}  n={model.get('n')}  "
            + " ".join(f"{a} {_pct(actions.get(a))}" for a in ("BUY", "SELL", "HOLD"))
            + f"  conf_std {_num(model.get('conf_std'))}"
            f"  p10 {_num(model.get('p10'))} p90 {_num(model.get('p90'))}"
            f"  agreement {_pct(model.get('agreement'))}"
            f"  hard disagree {_pct(model.get('hard_disagree'))}"
        )
    return lines


def _scoreboard_summary(result: Mapping[str, Any]) -> list[str]:
    if result.get("error"):
        return [f"SCOREBOARD unavailable: {result['error']}"]
    models = result.get("models") or {}
    shared = list(result.get("blockers") or [])
    lines = [
        f"SCOREBOARD (mode {result.get('mode', 'canary')}, {result.get('event_count', 0)} "
        f"events, {len(models)} models)"
    ]
    lines += [f"  blocker: {blocker}" for blocker in shared]
    width = max((len(name) for name in models), default=0)
    for name, row in models.items():
        why = [b for b in row.get("blockers") or [] if b not in shared]
        why += [r for r in row.get("reasons") or [] if r != "gate failed"]
        lines.append(
            f"  {name:<{width}}  {row.get('status', '?'):<5}"
            f"  agreement {_pct(row.get('agreement'))}"
            f"  hard disagree {_pct(row.get('hard_disagree'))}"
            + (f"  ({'; '.join(map(str, why))})" if why else "")
        )
    return lines


def _feature_summary(result: Mapping[str, Any]) -> list[str]:
    if result.get("error"):
        return [f"FEATURE SANITY FAIL: {result['error']}"]
    status = "FAIL" if result.get("exit_code", EXIT_FAIL) else "OK"
    lines = [f"FEATURE SANITY {status}"]
    lines += [f"  problem: {problem}" for problem in result.get("problems") or []]
    lines += [f"  warning: {warning}" for warning in result.get("warnings") or []]
    return lines


def _shadow_summary(result: Mapping[str, Any]) -> list[str]:
    lines = [f"SHADOW REPORT {result.get('model')}: {result.get('status')}"]
    if result.get("error"):
        lines.append(f"  error: {result['error']}")
    for name, gate in (result.get("gates") or {}).items():
        if isinstance(gate, Mapping):
            lines.append(
                f"  {name}: {gate.get('status')} (value {_shown(gate.get('value'))}, "
                f"threshold {_shown(gate.get('threshold'))})"
            )
    lines += [f"  hard blocker: {b}" for b in result.get("hard_blockers") or []]
    return lines


def _compare_summary(result: Mapping[str, Any]) -> list[str]:
    from .judgement.compare_report import compare_section

    if result.get("error"):
        return [f"COMPARE {result.get('model')}: error: {result['error']}"]
    return compare_section(result)


def _damage_summary(result: Mapping[str, Any]) -> list[str]:
    from .judgement.damage_report import damage_section

    if result.get("error"):
        return [f"DAMAGE {result.get('model')}: error: {result['error']}"]
    return [f"DAMAGE REPORT {result['model']}", *damage_section(result)]


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "quality_gate": _gate_summary,
    "scoreboard": _scoreboard_summary,
    "feature_sanity": _feature_summary,
    "shadow_report": _shadow_summary,
    "compare": _compare_summary,
    "damage": _damage_summary,
}


def _finish(args: argparse.Namespace, result: dict[str, Any], kind: str, code: int) -> int:
    """Write the reports, print the result (JSON or summary), return the exit code.

    A report that cannot be written turns a would-be 0 into 2: no proof, no pass.
    """
    from .judgement.reports import HTML_KINDS, dumps, write_reports

    paths: dict[str, str] = {}
    report_error = None
    html = args.html and kind in HTML_KINDS
    if args.html and not html:
        print(f"model-safety: no HTML report for {kind} yet (Markdown, JSON)", file=sys.stderr)
    if not args.no_report:
        try:
            paths = write_reports(result, kind, args.report_dir, html=html)
        except OSError as exc:
            report_error = f"cannot write the reports to {args.report_dir}: {exc}"
            code = EXIT_FAIL if code == EXIT_PASS else code
    if args.json:
        shown = dict(result)
        if paths:
            shown["reports"] = paths
        if report_error:
            shown["report_error"] = report_error
        print(dumps(shown))
    else:
        lines = SUMMARIES[kind](result)
        if paths:
            lines.append(f"report: {paths['markdown']} (+ .json)")
            if "html" in paths:
                lines.append(f"html report: {paths['html']}")
        print("\n".join(lines))
    if report_error:
        print(f"model-safety: {report_error}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- commands


def _cmd_gate(args: argparse.Namespace) -> int:
    from .judgement.gate import exit_code
    from .judgement.run import run_gate

    result = run_gate(
        args.redis_url,
        args.stream,
        mode=args.mode,
        model=args.model,
        **_window_kwargs(args),
        **drift_cli.drift_kwargs(args),
    )
    return _finish(args, result, "quality_gate", exit_code(result))


def _cmd_scoreboard(args: argparse.Namespace) -> int:
    from .judgement.run import run_scoreboard

    result = run_scoreboard(args.redis_url, args.stream, mode=args.mode, **_window_kwargs(args))
    return _finish(args, result, "scoreboard", EXIT_PASS)


def _cmd_feature_sanity(args: argparse.Namespace) -> int:
    from .judgement.run import run_feature_sanity

    result = run_feature_sanity(
        args.redis_url, args.stream, **_window_kwargs(args), **drift_cli.drift_kwargs(args)
    )
    code = result.get("exit_code")
    return _finish(args, result, "feature_sanity", EXIT_PASS if code == 0 else EXIT_FAIL)


def _cmd_shadow_report(args: argparse.Namespace) -> int:
    from .judgement.run import run_shadow_report

    result = run_shadow_report(
        args.redis_url, args.stream, model=args.model, **_window_kwargs(args)
    )
    code = EXIT_PASS if result.get("status") == "READY" and not result.get("error") else EXIT_FAIL
    return _finish(args, result, "shadow_report", code)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .judgement.run import run_compare

    return _since_activation_report(
        args,
        "compare",
        lambda: run_compare(
            args.redis_url,
            args.stream,
            model=args.model,
            weights=args.weights,
            horizon_s=args.horizon,
            alpha=args.alpha,
            max_lag_s=args.max_lag,
            **_window_kwargs(args),
        ),
    )


def _cmd_damage(args: argparse.Namespace) -> int:
    from .judgement.damage import run_damage

    def check() -> None:
        if args.after is None:
            raise ValueError("give --since TIME or --since-activation")
        if args.count is not None:
            raise ValueError("--count is not used by damage: it reads every row and event since")

    return _since_activation_report(
        args,
        "damage",
        lambda: run_damage(
            args.redis_url,
            args.stream,
            db_path=args.db,
            model=args.model,
            weights=args.weights,
            since=args.after,
            until=args.until,
            table=args.table,
            horizon_s=args.horizon,
            max_lag_s=args.max_lag,
            page_size=args.page_size,
            timeout=args.timeout,
        ),
        check,
    )


def _since_activation_report(
    args: argparse.Namespace,
    kind: str,
    run: Callable[[], dict[str, Any]],
    check: Callable[[], None] = lambda: None,
) -> int:
    """A report of ``args.model`` that informs (exit 0 when made, 2 with an ``error``): the
    window from --since-activation (:func:`since_activation`) and ``check`` first (a
    ValueError is the error), then ``run()``, with the activation it started at."""
    try:
        activation = since_activation(args, args.model)
        check()
    except ValueError as exc:
        result = {"error": str(exc), "exit_code": EXIT_FAIL, "model": args.model, "decided": False}
        return _finish(args, result, kind, EXIT_FAIL)
    result = run()
    if activation is not None:
        result["activation"] = activation
    code = EXIT_PASS if result.get("exit_code") == 0 and not result.get("error") else EXIT_FAIL
    return _finish(args, result, kind, code)


def _baseline_weights(text: str) -> dict[str, float]:
    """``model:weight,...`` naming each voting model once, the weights summing to 1."""
    try:
        return parse_baseline(text)
    except WeightsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _max_lag(text: str) -> float:
    """A finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"not a number of seconds >= 0: {text!r}")
    return value


def _alpha(text: str) -> float:
    """A significance level in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"not a significance level in (0, 1): {text!r}")
    return value


def _register(
    subparsers: argparse._SubParsersAction, name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def _add_mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=("canary", "collection"),
        default="canary",
        help="canary (default): >= 200 events, exit 0 PASS / 2 FAIL; "
        "collection: >= 100 events, always exit 3 (never promotes)",
    )


def _add_damage(subparsers: argparse._SubParsersAction) -> None:
    damage = _register(
        subparsers,
        "damage",
        _cmd_damage,
        "what a model did while it voted: the trade_intents rows it took part in and decided, "
        "by symbol and side, with their forward returns and sizes (exit 0, 2 on an error)",
    )
    damage.add_argument("--model", metavar="M", required=True, help="the model (the canary)")
    damage.add_argument(
        "--until",
        metavar="TIME",
        type=cutover,
        help="only rows before this ISO-8601 time (e.g. the rollback's new start; default: now)",
    )
    damage.add_argument(
        "--db", metavar="PATH", default=DEFAULT_TRADE_LOG, help=f"default {DEFAULT_TRADE_LOG}"
    )
    damage.add_argument(
        "--table",
        metavar="T",
        default=DEFAULT_TRADE_TABLE,
        help=f"the trade log's table (default {DEFAULT_TRADE_TABLE})",
    )
    damage.add_argument(
        "--horizon",
        metavar="SECONDS",
        type=positive_float,
        default=300.0,
        help="the forward return of a decision is the price move over this time (default 300)",
    )
    damage.add_argument(
        "--max-lag",
        metavar="SECONDS",
        type=_max_lag,
        help="the latest a later price may come after the horizon; later is no price (a "
        "telemetry stall; default: the horizon)",
    )
    damage.add_argument(
        "--weights",
        metavar="M:W,...",
        type=_baseline_weights,
        default=DEFAULT_BASELINE_WEIGHTS,
        help="baseline weights of the voting models, for the decision without the model "
        f"(default {DEFAULT_BASELINE_WEIGHTS})",
    )
    _add_window_options(damage, since=True)
    add_since_activation(damage)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Fail-closed model lifecycle checks for the AI engine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    version = _register(
        subparsers, "version", _cmd_version, "print the versions of this tool and its runtime"
    )
    version.add_argument(
        "--json", action="store_true", help="print the versions as one JSON object"
    )
    completion = _register(
        subparsers,
        "completion",
        _cmd_completion,
        'print the shell completion hook: eval "$(model-safety completion bash)" (needs '
        "argcomplete)",
    )
    completion.add_argument("shell", choices=COMPLETION_SHELLS, help="the shell to complete in")
    gate = _register(
        subparsers,
        "gate",
        _cmd_gate,
        "the quality gate: judge the models on the stream's events "
        "(exit 0 PASS, 2 FAIL, 3 COLLECTION)",
    )
    _add_mode(gate)
    gate.add_argument(
        "--model", metavar="M", help="judge only this model (default: every voting model)"
    )
    _add_window_options(gate)
    drift_cli.add_drift_options(gate)
    board = _register(
        subparsers,
        "scoreboard",
        _cmd_scoreboard,
        "GO / WAIT / NO-GO per model, also written to <report-dir>/scoreboard_latest.md",
    )
    _add_mode(board)
    _add_window_options(board)
    features = _register(
        subparsers,
        "feature-sanity",
        _cmd_feature_sanity,
        "NaN/Inf/flatline/duplicate checks of the events' features (exit 2 on a problem)",
    )
    _add_window_options(features)
    drift_cli.add_drift_options(features)
    drift_cli.register(subparsers, _register, _add_window_options, _window_kwargs)
    shadow = _register(
        subparsers,
        "shadow-report",
        _cmd_shadow_report,
        "the four activation gates of a shadow model (exit 0 READY, else 2)",
    )
    shadow.add_argument("--model", metavar="M", required=True, help="the shadow model")
    _add_window_options(shadow)
    paired = _register(
        subparsers,
        "compare",
        _cmd_compare,
        "the canary against each baseline model, the ensemble and the ensemble without it, "
        "on the same events: directional accuracy, McNemar, calibration (exit 0, 2 on an error)",
    )
    paired.add_argument("--model", metavar="M", required=True, help="the canary model")
    paired.add_argument(
        "--horizon",
        metavar="SECONDS",
        type=positive_float,
        default=300.0,
        help="the price move each event is judged on (default 300)",
    )
    paired.add_argument(
        "--max-lag",
        metavar="SECONDS",
        type=_max_lag,
        help="the latest a later price may come after the horizon; an event whose later price "
        "came later (a telemetry stall) has a late outcome, not judged (default: the horizon)",
    )
    paired.add_argument(
        "--alpha",
        metavar="A",
        type=_alpha,
        default=0.05,
        help="one-sided significance level of 'the canary is worse' (default 0.05)",
    )
    paired.add_argument(
        "--weights",
        metavar="M:W,...",
        type=_baseline_weights,
        default=DEFAULT_BASELINE_WEIGHTS,
        help=f"baseline weights of the voting models (default {DEFAULT_BASELINE_WEIGHTS})",
    )
    _add_window_options(paired, since=True)
    add_since_activation(paired)
    _add_damage(subparsers)
    monitor_cli.register(subparsers)
    monitor_timeline.register(subparsers)
    status_cli.register(subparsers)
    dataset_cli.register(subparsers)
    return parser


def _failure_json(command: str | None, reason: str) -> str:
    """What --json prints when there is no result: a FAIL (exit 2), never a pass."""
    from .judgement.reports import dumps

    try:
        if command == "gate":
            from .judgement.gate import failure

            return dumps(failure("canary", reason))
    except Exception:  # the reason is what matters: exit 2 regardless
        pass
    return dumps({"verdict": "FAIL", "error": reason, "exit_code": EXIT_FAIL})


def _command_of(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        _complete(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc}", file=sys.stderr)
        if "--json" in argv:
            print(_failure_json(_command_of(argv), f"usage: {exc}"))
        return EXIT_FAIL
    try:
        return args.handler(args)
    except Exception as exc:  # fail-closed: an unexpected error is a FAIL, not a traceback
        reason = f"internal error: {type(exc).__name__}: {exc}"
        print(f"model-safety: {reason}", file=sys.stderr)
        if getattr(args, "json", False):
            print(_failure_json(args.command, reason))
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
