"""What the project's modules share: running commands (argv lists only), secret masking,
and for the analytics modules (quality_gate, scoreboard, feature_sanity, shadow_report) their
common options, validated thresholds, report writing and result hygiene. Standard library only,
so that a module can still mask secrets and fail cleanly when numpy or redis are missing on the
target.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .fileio import absolute_path_problem
from .redaction import PASSWORD_ENVS, is_secret_name
from .site_defaults import (
    DEFAULT_CHECKOUT,
    DEFAULT_REDIS_URL,
    DEFAULT_STREAM,
    DEFAULT_TRADE_LOG,
    DEFAULT_TRADE_TABLE,
    DEFAULT_UNIT,
)

# Keys Ansible gives a meaning to in a module's result (a non-zero "rc" fails the task, "path"
# adds file attributes, ...); a result key of that name is returned as "result_<key>".
RESERVED_KEYS = frozenset(
    {
        "changed",
        "failed",
        "msg",
        "skipped",
        "invocation",
        "warnings",
        "deprecations",
        "rc",
        "path",
        "diff",
        "exception",
        "ansible_facts",
    }
)

# The site's options (site_defaults) as argument specs, one definition for every module that
# takes them. "redis_url" is no_log so that Ansible masks the whole URL from the start, also
# when another option fails validation before any code of the module runs;
# mask_redis_password then narrows the mask to the URL's secrets.
SITE_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "redis_url": {"type": "str", "default": DEFAULT_REDIS_URL, "no_log": True},
    "stream": {"type": "str", "default": DEFAULT_STREAM},
    "unit": {"type": "str", "default": DEFAULT_UNIT},
    "checkout": {"type": "path", "default": DEFAULT_CHECKOUT},
    "db_path": {"type": "path", "default": DEFAULT_TRADE_LOG},
    "trade_table": {"type": "str", "default": DEFAULT_TRADE_TABLE},
}

# The options of a start's proof (engine_proof), and of a stop + start proven
# (engine_change, engine_rollback); doc fragment model_safety_restart.
PROOF_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "checkout": SITE_ARGUMENT_SPEC["checkout"],
    "journal_timeout": {"type": "float", "default": 30.0},
}
RESTART_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    **PROOF_ARGUMENT_SPEC,
    "cycle_timeout": {"type": "float", "default": 60.0},
}

# What a start must show of one model (engine_proof, engine_change; doc fragment
# model_safety_expectation), read by engine.startup_proof.expectation_of().
EXPECTATION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "model": {"type": "str", "default": ""},
    "role": {"type": "str", "choices": ["voting", "shadow"], "default": "voting"},
    "weight": {"type": "float"},
    "weights": {"type": "dict", "default": {}},
    "canary": {"type": "bool", "default": False},
    "model_file": {"type": "dict", "default": {}},
    "conf_cap": {"type": "float"},
}


# Options every analytics module takes, as in the CLI (DESIGN.md "Modes and exit codes").
COMMON_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "after": {"type": "str"},
    "count": {"type": "int"},
    "redis_url": SITE_ARGUMENT_SPEC["redis_url"],
    "stream": SITE_ARGUMENT_SPEC["stream"],
    "thresholds": {"type": "dict", "default": {}},
    "report_dir": {"type": "path"},
    "report_only": {"type": "bool", "default": False},
}


def module_runner(module: Any) -> Callable[[list[str]], tuple[int, str, str]]:
    """Adapt ``module.run_command`` to ``run(argv) -> (rc, stdout, stderr)`` (the Runner of
    engine_state); argv lists only, no shell, C locale, a missing program is rc 127."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        try:
            return module.run_command(
                argv,
                check_rc=False,
                environ_update={"LC_ALL": "C"},
                expand_user_and_vars=False,
                handle_exceptions=False,
            )
        except OSError as exc:
            return 127, "", f"cannot run {argv[0]}: {exc}"

    return run


def mask_redis_password(module: Any, url: str) -> None:
    """Mask the Redis secrets (the URL's password as written and decoded, secret query values,
    the password variables of the environment) instead of the whole URL, so that results and
    messages can name the redacted URL (``redis://:***@host:port/db``). Call it first, before
    anything can fail: a URL that does not parse stays masked whole."""
    try:
        parts = urlsplit(url)
        secrets = {parts.password or "", unquote(parts.password or "")}
        secrets.update(value for key, value in parse_qsl(parts.query) if is_secret_name(key))
    except ValueError as exc:
        module.fail_json(msg=f"invalid redis_url: {exc}")
    secrets.update(os.environ.get(name, "") for name in PASSWORD_ENVS)
    module.no_log_values.discard(url)
    module.no_log_values.update(secret for secret in secrets if secret)


def prepare(module: Any) -> None:
    """Mask secrets first, then check that the analytics code imports and that the common
    options are valid; fail the task with a clear message otherwise."""
    params = module.params
    mask_redis_password(module, params["redis_url"])
    try:
        from .judgement.run import RunError, validate_model
    except ImportError:
        module.fail_json(
            msg="cannot import model_safety (python3-numpy and python3-redis are required)",
            exception=traceback.format_exc(),
        )
    if params["count"] is not None and params["count"] < 1:
        module.fail_json(msg=f"count must be at least 1, not {params['count']}")
    try:
        validate_model(params.get("model"))
    except RunError as exc:
        module.fail_json(msg=str(exc))


def thresholds_from(module: Any) -> Any:
    """The default thresholds with the task's overrides, validated as the CLI does (names,
    types, ranges); anything doubtful fails the task instead of becoming a blocked result."""
    from .judgement.run import RunError, make_thresholds

    try:
        return make_thresholds(module.params["thresholds"])
    except RunError as exc:
        module.fail_json(msg=f"invalid thresholds: {exc}")


def returnable(result: dict[str, Any]) -> dict[str, Any]:
    """The result with keys Ansible reserves renamed, ready for exit_json/fail_json."""
    return {f"result_{k}" if k in RESERVED_KEYS else k: v for k, v in result.items()}


def with_reports(module: Any, result: dict[str, Any], kind: str) -> dict[str, Any]:
    """The returnable result, with the paths of the reports when they were written (only when
    asked and not in check mode; a report that cannot be written fails the task)."""
    from .judgement.reports import write_reports

    report_dir = module.params["report_dir"]
    returned = returnable(result)
    if report_dir and not module.check_mode:
        try:
            returned["reports"] = write_reports(result, kind, report_dir)
        except OSError as exc:
            module.fail_json(msg=f"cannot write the reports to {report_dir}: {exc}", **returned)
    return returned


DRIFT_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "feature_reference": {"type": "path"},
    "feature_reference_events": {"type": "int"},
}
"""The feature-drift options (doc fragment model_safety_drift), exclusive of each other."""


def feature_reference_path(module: Any) -> str | None:
    """The task's ``feature_reference``: None when empty, else a normalised absolute path (a
    relative one would depend on where the module runs); the task fails otherwise."""
    path = module.params["feature_reference"] or None
    problem = absolute_path_problem(path) if path is not None else None
    if problem:
        module.fail_json(msg=f"feature_reference {problem}: {path!r}")
    return path


def drift_args(module: Any) -> dict[str, Any]:
    """The drift keyword arguments of run_gate / run_feature_sanity from the task's options."""
    return {
        "feature_reference": feature_reference_path(module),
        "reference_events": module.params["feature_reference_events"],
    }


def window_args(module: Any) -> dict[str, Any]:
    """The keyword arguments every run_* function takes, from the task's options."""
    params = module.params
    return {
        "count": params["count"],
        "after": params["after"] or None,
        "thresholds": thresholds_from(module),
    }
