"""``model-safety monitor``: its options, its config file, and the call of the loop.

Options can also come from a YAML config file (``--config``, keys are the long option names
with ``_`` for ``-``, e.g. ``webhook_url``, ``interval``, ``thresholds``); the command line
wins over the file. Exit codes: 0 completed safe, 4 rolled back, 5 completed inconclusive (not
proven safe), 2 error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Any

from ..argtypes import non_negative_int, positive_int, share
from .alertmanager import MONITOR_FORMAT, WEBHOOK_FORMATS, webhook_format

DEFAULT_STATE_DIR = "/var/lib/model-safety/monitor"
DEFAULT_ACTIVATION_LOG = "/var/log/quantum/qsc_canary.jsonl"
DEFAULT_CHECK_LOG = "/var/log/quantum/qsc_monitor_checks.jsonl"
WEBHOOK_ENV = "MODEL_SAFETY_WEBHOOK_URL"
PROJECT_ENV = "MODEL_SAFETY_PROJECT_DIR"
_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """``6h``, ``90m``, ``1h30m``, ``30s``, ``45`` (seconds) as seconds > 0; every part of a
    compound duration has its unit (``1h30`` is refused, not read as 1 h 30 s)."""
    value = str(text).strip()
    if _SECONDS_RE.fullmatch(value):
        value += "s"
    match = _DURATION_RE.fullmatch(value)
    if not value or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration such as 6h, 90m, 1h30m, 30s: {text!r}")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not math.isfinite(total) or total <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be > 0: {text!r}")
    return total


def _threshold(text: str) -> tuple[str, float]:
    name, sep, raw = str(text).partition("=")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not sep or not re.fullmatch(r"[a-z_0-9]+", name) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not NAME=NUMBER (a gate threshold): {text!r}")
    return name, value


def _rate(text: str) -> float:
    """A probability in [1e-9, 0.5] (MonitorSettings' range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 1e-9 <= value <= 0.5):
        raise argparse.ArgumentTypeError(f"must be in [1e-9, 0.5], got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` subcommand."""
    text = (
        "watch a canary for hours and roll a host back on a violation "
        "(exit 0 completed safe, 4 rolled back, 5 completed inconclusive, 2 error)"
    )
    parser = subparsers.add_parser("monitor", help=text, description=text)
    parser.set_defaults(handler=run_monitor)
    parser.add_argument("--config", metavar="FILE", help="YAML file with any of these options")
    parser.add_argument("--model", metavar="M", help="the canary model (required)")
    parser.add_argument("--limit", metavar="HOSTS", help="Ansible host pattern within 'engine'")
    parser.add_argument("-i", "--inventory", metavar="PATH", help="default: ansible.cfg's")
    parser.add_argument(
        "--json",
        action="store_true",
        help="stream the check log's records to stdout as they are written, one JSON object a "
        "line (the progress lines go to stderr); an error before the watch is one "
        '{"error", "exit_code": 2}',
    )
    rules = parser.add_argument_group("window and rules")
    rules.add_argument("--duration", type=parse_duration, metavar="D", help="default 6h")
    rules.add_argument("--interval", type=parse_duration, metavar="D", help="default 30s")
    rules.add_argument(
        "--false-rollback-rate",
        type=_rate,
        metavar="P",
        help="the chance of rolling back a healthy canary over the whole watch, shared by the "
        "rules (default 0.01)",
    )
    rules.add_argument(
        "--confirm-events",
        type=non_negative_int,
        metavar="N",
        help="new events that must keep a crossed rule over its threshold (default 3)",
    )
    rules.add_argument(
        "--window-events",
        type=positive_int,
        metavar="N",
        help="each host's window: its newest N events since the activation (default 1000)",
    )
    rules.add_argument(
        "--max-hard-disagree", type=share, metavar="F", help="hard disagreement limit (0.25)"
    )
    rules.add_argument(
        "--redundant-agreement", type=share, metavar="F", help="redundancy limit (0.85)"
    )
    rules.add_argument(
        "--stall-checks",
        type=positive_int,
        metavar="K",
        help="the shortest silence that is a stall, in intervals, and the failed probes in a "
        "row before a rollback (default 3)",
    )
    rules.add_argument(
        "--threshold",
        type=_threshold,
        action="append",
        metavar="NAME=VALUE",
        help="a gate threshold override (repeatable), e.g. max_actionshare=0.7",
    )
    files = parser.add_argument_group("files and notifications")
    files.add_argument(
        "--project-dir", metavar="DIR", help=f"checkout with the playbooks (${PROJECT_ENV}, else .)"
    )
    files.add_argument("--state-dir", metavar="DIR", help=f"default {DEFAULT_STATE_DIR}")
    files.add_argument("--activation-log", metavar="PATH", help=f"default {DEFAULT_ACTIVATION_LOG}")
    files.add_argument("--check-log", metavar="PATH", help=f"default {DEFAULT_CHECK_LOG}")
    files.add_argument("--textfile-dir", metavar="DIR", help="node_exporter textfile directory")
    files.add_argument(
        "--webhook-url", metavar="URL", help=f"default ${WEBHOOK_ENV}; never printed"
    )
    files.add_argument("--webhook-timeout", type=parse_duration, metavar="D", help="default 5s")
    files.add_argument("--webhook-retries", type=non_negative_int, metavar="N", help="default 2")
    files.add_argument(
        "--webhook-format",
        choices=WEBHOOK_FORMATS,
        help=f"the payload: the monitor's own or Alertmanager's (default {MONITOR_FORMAT})",
    )


_CONFIG_TYPES = {
    "duration": parse_duration,
    "interval": parse_duration,
    "webhook_timeout": parse_duration,
    "false_rollback_rate": _rate,
    "confirm_events": non_negative_int,
    "window_events": positive_int,
    "stall_checks": positive_int,
    "max_hard_disagree": share,
    "redundant_agreement": share,
    "webhook_retries": non_negative_int,
    "webhook_format": webhook_format,
}
_CONFIG_KEYS = {
    "model", "limit", "inventory", "project_dir", "state_dir", "activation_log", "check_log",
    "textfile_dir", "webhook_url", "thresholds", *_CONFIG_TYPES,
}  # fmt: skip


def load_config(path: str) -> dict[str, Any]:
    """The options of a YAML config file, validated like the command line's."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a mapping of options")
    unknown = sorted(str(key) for key in data if key not in _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"config file {path}: unknown options {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        try:
            values[key] = _CONFIG_TYPES[key](str(value)) if key in _CONFIG_TYPES else value
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise ValueError(f"config file {path}: {key}: {exc}") from None
    if not isinstance(values.get("thresholds", {}), dict):
        raise ValueError(f"config file {path}: thresholds must be a mapping")
    return values


def _option(args: argparse.Namespace, config: dict[str, Any], name: str, default: Any) -> Any:
    value = getattr(args, name, None)
    if value is not None:
        return value
    return config.get(name, default)


def run_monitor(args: argparse.Namespace) -> int:
    """The ``monitor`` handler: build the options and run the loop."""
    from .loop import Monitor, default_inventory
    from .settings import MonitorError, MonitorOptions, MonitorSettings
    from .store import MonitorIOError, stream_checks

    try:
        config = load_config(args.config) if args.config else {}
        model = _option(args, config, "model", None)
        if not model:
            raise ValueError("--model is required (the canary model to watch)")
        thresholds = dict(config.get("thresholds") or {})
        thresholds.update(dict(args.threshold or []))
        settings = MonitorSettings(
            model=model,
            duration_s=_option(args, config, "duration", 6 * 3600.0),
            interval_s=_option(args, config, "interval", 30.0),
            false_rollback_rate=_option(args, config, "false_rollback_rate", 0.01),
            confirm_events=_option(args, config, "confirm_events", 3),
            window_events=_option(args, config, "window_events", 1000),
            max_hard_disagree=_option(args, config, "max_hard_disagree", 0.25),
            redundant_agreement=_option(args, config, "redundant_agreement", 0.85),
            stall_checks=_option(args, config, "stall_checks", 3),
            thresholds=thresholds,
        )
        project_dir = os.path.abspath(
            _option(args, config, "project_dir", None) or os.environ.get(PROJECT_ENV) or "."
        )
        inventory = _option(args, config, "inventory", None) or default_inventory(project_dir)
        webhook_url = _option(args, config, "webhook_url", None) or os.environ.get(WEBHOOK_ENV)
        options = MonitorOptions(
            settings=settings,
            project_dir=project_dir,
            inventory=os.path.abspath(inventory) if inventory else None,
            limit=_option(args, config, "limit", None),
            state_dir=_option(args, config, "state_dir", DEFAULT_STATE_DIR),
            activation_log=_option(args, config, "activation_log", DEFAULT_ACTIVATION_LOG),
            check_log=_option(args, config, "check_log", DEFAULT_CHECK_LOG),
            textfile_dir=_option(args, config, "textfile_dir", None),
            webhook_url=webhook_url or None,
            webhook_timeout=_option(args, config, "webhook_timeout", 5.0),
            webhook_retries=_option(args, config, "webhook_retries", 2),
            webhook_format=_option(args, config, "webhook_format", MONITOR_FORMAT),
        )
        progress = sys.stderr if args.json else sys.stdout
        monitor = Monitor(options, out=lambda line: print(line, file=progress, flush=True))
    except (ValueError, OSError, MonitorError, MonitorIOError) as exc:
        print(f"model-safety monitor: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(exc), "exit_code": 2}), flush=True)
        return 2
    if args.json:
        stream_checks(monitor.checks, sys.stdout)
    return monitor.run()
