"""One call per check: read the window from Redis, judge it, return the result as a dict.

This is what the CLI and the Ansible modules call. Operational failures never raise: bad
arguments, an unreachable Redis, a timeout, a missing stream, a parse or internal error all
become a result that blocks (the gate's FAIL, an ``error`` with ``exit_code`` 2 for the
others), with a readable reason in which no password ever appears.

``client_or_url`` is a redis-py client (used as is, left open) or a URL / None (a client is
made by :func:`.stream.connect`, honouring ``$MODEL_SAFETY_REDIS_URL`` and the password
variables, and closed afterwards). ``count`` is the newest N events; None means 500 without
``after``, and no limit with it. ``after`` is the ``--after`` text (ISO-8601 time or stream
id). ``thresholds`` is a :class:`.thresholds.Thresholds`, or a mapping of overrides of its
defaults.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from ..cutover import parse_cutover
from ..engine.weights import parse_baseline
from ..names import is_model_name
from ..redis_client import (
    DEFAULT_TIMEOUT_S,
    StreamError,
    connect,
    describe_client,
    redact_url,
    resolve_url,
    scrub,
    url_secrets,
)
from ..site_defaults import DEFAULT_BASELINE_WEIGHTS, DEFAULT_STREAM
from ..telemetry.features import feature_sanity
from ..telemetry.metrics import window_models
from ..telemetry.stream import DEFAULT_COUNT, DEFAULT_PAGE_SIZE, read_window, read_window_before
from .compare import DEFAULT_ALPHA, DEFAULT_HORIZON_S, compare, gate_comparison
from .drift import (
    FeatureReferenceError,
    build_reference,
    describe_reference,
    feature_drift,
    load_reference,
    not_judged,
    write_reference,
)
from .drift import failed as drift_failed
from .gate import add_blockers, evaluate, failure
from .promotion import (
    blocked_check,
    promotion_check,
    validate_baseline_weights,
    validate_promotion_args,
)
from .scoreboard import scoreboard
from .shadow import shadow_report
from .thresholds import MODES, Thresholds

if TYPE_CHECKING:
    from typing import Unpack


class RunError(Exception):
    """A reason to block before any verdict: bad input, Redis failing, ..."""


@dataclasses.dataclass
class _Source:
    client: Any
    owned: bool
    description: str
    secrets: list[str]


def validate_model(model: str | None) -> str | None:
    """``model`` if it is None or a valid model name (``^[a-z][a-z0-9_]{0,31}$``), else raise."""
    if model is not None and not is_model_name(model):
        raise RunError(f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {model!r}")
    return model


def make_thresholds(thresholds: Thresholds | Mapping[str, Any] | None) -> Thresholds:
    """A Thresholds from None (the DESIGN defaults), an instance, or a mapping of overrides
    (validated by :meth:`.thresholds.Thresholds.with_overrides`); RunError when invalid."""
    if thresholds is None:
        return Thresholds()
    if isinstance(thresholds, Thresholds):
        return thresholds
    if not isinstance(thresholds, Mapping):
        raise RunError(f"thresholds must be a mapping of overrides, not {type(thresholds)}")
    try:
        return Thresholds().with_overrides(thresholds)
    except (TypeError, ValueError) as exc:
        raise RunError(f"bad thresholds: {exc}") from None


def _count(count: int | None, after: str | None) -> int | None:
    if count is None:
        return None if after is not None else DEFAULT_COUNT
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise RunError(f"count must be a positive integer, not {count!r}")
    return count


def _open(client_or_url: Any, env: Mapping[str, str] | None, timeout: float) -> _Source:
    env = os.environ if env is None else env
    if client_or_url is None or isinstance(client_or_url, str):
        url = resolve_url(client_or_url, env)
        secrets = url_secrets(url, env)
        try:
            client = connect(url, env, timeout=timeout)
        except StreamError as exc:
            raise RunError(scrub(str(exc), secrets)) from None
        return _Source(client, True, redact_url(url), secrets)
    return _Source(client_or_url, False, describe_client(client_or_url), [])


def source_info(
    client_or_url: Any,
    stream: str,
    count: int | None,
    after: str | None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What is (to be) read, for results and reports: the redacted URL, stream, count, after."""
    env = os.environ if env is None else env
    if client_or_url is None or isinstance(client_or_url, str):
        redis_url = redact_url(resolve_url(client_or_url, env))
    else:
        redis_url = describe_client(client_or_url)
    try:
        limit = _count(count, after)
    except RunError:
        limit = count
    return {"redis": redis_url, "stream": stream, "count": limit, "after": after}


def _with_window(
    judge: Callable[[Any], dict[str, Any]],
    client_or_url: Any,
    stream: str,
    *,
    count: int | None = None,
    after: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = DEFAULT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read the window and judge it; RunError (scrubbed) for anything that went wrong."""
    limit = _count(count, after)
    try:
        start = parse_cutover(after) if after is not None else None
    except ValueError as exc:
        raise RunError(f"bad --after: {exc}") from None
    source = _open(client_or_url, env, timeout)
    try:
        window = read_window(source.client, stream, count=limit, after=start, page_size=page_size)
        result = judge(window)
    except (StreamError, ValueError) as exc:
        raise RunError(scrub(str(exc), source.secrets)) from None
    except Exception as exc:  # fail-closed: an internal error is a reason to block, not a crash
        reason = f"internal error: {type(exc).__name__}: {exc}"
        raise RunError(scrub(reason, source.secrets)) from None
    finally:
        if source.owned:
            source.client.close()
    result["source"] = source_info(client_or_url, stream, count, after, env)
    return result


class WindowOptions(TypedDict, total=False):
    """The keyword arguments every run_* function takes besides its own (module docstring)."""

    count: int | None
    after: str | None
    thresholds: Thresholds | Mapping[str, Any] | None
    page_size: int
    timeout: float
    env: Mapping[str, str] | None


def _run_judged(
    client_or_url: Any,
    stream: str,
    window: WindowOptions,
    judge: Callable[[Any, Thresholds], dict[str, Any]],
    failed: Callable[[str, Thresholds], dict[str, Any]],
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """What every run_* function does: ``check`` its own arguments, read the window and
    ``judge(window, thresholds)`` it; for any RunError on the way, ``failed(reason,
    thresholds)`` (the defaults until the given thresholds are valid) with the source."""
    read = dict(window)
    limits = Thresholds()
    try:
        check()
        limits = make_thresholds(read.pop("thresholds", None))
        return _with_window(lambda events: judge(events, limits), client_or_url, stream, **read)
    except RunError as exc:
        result = failed(str(exc), limits)
        result["source"] = source_info(
            client_or_url, stream, read.get("count"), read.get("after"), read.get("env")
        )
        return result


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise RunError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")


MAX_REFERENCE_EVENTS = 100_000


def validate_drift_args(
    feature_reference: str | None, reference_events: int | None, after: str | None
) -> None:
    """RunError unless the drift options are usable: a reference file path, or N (1 to
    100000) events before the cutover (which then must be given), not both."""
    if feature_reference is not None and reference_events is not None:
        raise RunError("a feature reference file and reference events exclude each other")
    if feature_reference is not None and (
        not isinstance(feature_reference, str) or not feature_reference or "\0" in feature_reference
    ):
        raise RunError(f"not a feature reference path: {feature_reference!r}")
    if reference_events is not None:
        events = reference_events
        if isinstance(events, bool) or not isinstance(events, int) or events < 1:
            raise RunError(f"reference events must be a positive integer, not {events!r}")
        if events > MAX_REFERENCE_EVENTS:
            raise RunError(f"reference events must be <= {MAX_REFERENCE_EVENTS}, not {events}")
        if after is None:
            raise RunError("reference events are the events before the cutover: give one")


def _window_reference(
    client_or_url: Any, stream: str, window: WindowOptions, count: int, limits: Thresholds
) -> dict[str, Any]:
    """The reference of the ``count`` events up to the cutover (the shadow run's window)."""
    after = window.get("after")
    before = parse_cutover(str(after))[1:]
    source = _open(client_or_url, window.get("env"), window.get("timeout", DEFAULT_TIMEOUT_S))
    try:
        events = read_window_before(
            source.client,
            stream,
            before=before,
            count=count,
            page_size=window.get("page_size", DEFAULT_PAGE_SIZE),
        )
    except StreamError as exc:
        raise RunError(scrub(str(exc), source.secrets)) from None
    finally:
        if source.owned:
            source.client.close()
    where = f"the {count} events up to the cutover {after}"
    return build_reference(events, stream=stream, source=where, thresholds=limits)


def judge_drift(
    client_or_url: Any,
    stream: str,
    window: WindowOptions,
    events: Any,
    limits: Thresholds,
    feature_reference: str | None,
    reference_events: int | None,
) -> dict[str, Any]:
    """The ``drift`` part of a gate or feature-sanity result (:mod:`.drift`): ``not_judged``
    without a reference; a reference that cannot be had is its ``error`` and one blocker."""
    if feature_reference is None and reference_events is None:
        return not_judged("no feature reference given", limits)
    try:
        if feature_reference is not None:
            reference = load_reference(feature_reference)
        else:
            reference = _window_reference(
                client_or_url, stream, window, int(reference_events or 0), limits
            )
    except (FeatureReferenceError, RunError, ValueError) as exc:
        return drift_failed(str(exc), limits)
    return feature_drift(reference, events, limits, path=feature_reference)


def run_gate(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    mode: str = "canary",
    model: str | None = None,
    feature_reference: str | None = None,
    reference_events: int | None = None,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """The quality gate's result (DESIGN.md ``--json``) with its feature ``drift`` (its
    blockers among the gate's); never raises for operational errors."""

    def check() -> None:
        _check_mode(mode)
        validate_model(model)
        validate_drift_args(feature_reference, reference_events, window.get("after"))

    def judge(events: Any, limits: Thresholds) -> dict[str, Any]:
        result = evaluate(events, mode=mode, model=model, thresholds=limits)
        drift = judge_drift(
            client_or_url, stream, window, events, limits, feature_reference, reference_events
        )
        result["drift"] = drift
        if model is not None:  # informs, never decides the gate: the window already read
            result["comparison"] = gate_comparison(
                events, model, horizon_s=limits.compare_horizon_s, alpha=limits.compare_alpha
            )
        return add_blockers(result, drift["blockers"])

    return _run_judged(
        client_or_url,
        stream,
        window,
        judge,
        lambda reason, _: failure(
            mode if mode in MODES else "canary", reason, model if is_model_name(model) else None
        ),
        check,
    )


GATE_POLL_INTERVAL_S = 1.0
# The gate's findings (gate.model_findings rules) of a window still filling up after an engine
# (re)start: not yet a verdict on the models. An empty window holds no model at all yet.
_FILLING_RULES = frozenset({"too_few_events"})
_EMPTY_WINDOW_RULES = _FILLING_RULES | {"not_in_window"}


def only_too_few_events(result: Mapping[str, Any]) -> bool:
    """True when ``result`` (a :func:`run_gate` result) is a FAIL for no reason but too few
    events, judged from its structure (counts and each judged model's findings, as the monitor
    does), not from the blocker sentences: no malformed event, a voting model judged unless the
    window is empty, and every finding of the judged models is too few events (or, in an empty
    window, the model not being in it yet)."""
    if result.get("verdict") != "FAIL" or result.get("error") or not result.get("blockers"):
        return False
    if (result.get("drift") or {}).get("status") in ("block", "error"):
        return False  # decided on the features: more events change nothing
    events = result.get("event_count") or 0
    judged = result.get("judged") or []
    if result.get("malformed") or (events and not judged):
        return False
    allowed = _EMPTY_WINDOW_RULES if events == 0 else _FILLING_RULES
    models = result.get("models") or {}
    return all(
        finding["rule"] in allowed for name in judged for finding in models[name]["findings"]
    )


def run_gate_waiting(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **gate_args: Any,
) -> dict[str, Any]:
    """:func:`run_gate`, read again every second while the only blockers are too few events
    and less than ``wait`` seconds have passed (an inconclusive window is not a failure until
    then); any other blocker ends the wait at once. The last result is returned with
    ``waited`` (seconds) and ``reads``; ``wait`` 0 reads once."""
    began = clock()
    reads = 0
    while True:
        result = run_gate(client_or_url, stream, **gate_args)
        reads += 1
        waited = clock() - began
        if not only_too_few_events(result) or waited >= wait:
            break
        sleep(max(0.0, min(GATE_POLL_INTERVAL_S, wait - waited)))
    result["waited"] = round(waited, 3)
    result["reads"] = reads
    return result


def _error_result(reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": reason, "exit_code": 2, **extra}


def run_scoreboard(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    mode: str = "canary",
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """GO / WAIT / NO-GO per model; ``exit_code`` 0, or 2 with an ``error`` when unreadable."""
    result = _run_judged(
        client_or_url,
        stream,
        window,
        lambda events, limits: scoreboard(events, thresholds=limits, mode=mode),
        lambda reason, _: _error_result(reason, mode=mode, models={}),
        lambda: _check_mode(mode),
    )
    result.setdefault("exit_code", 0)
    return result


def run_feature_sanity(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    feature_reference: str | None = None,
    reference_events: int | None = None,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """NaN/Inf/flatline per feature and the feature ``drift`` (its blockers are problems,
    its warnings warnings); ``exit_code`` 2 on a problem or an error, else 0."""

    def judge(events: Any, limits: Thresholds) -> dict[str, Any]:
        result = feature_sanity(events, thresholds=limits)
        drift = judge_drift(
            client_or_url, stream, window, events, limits, feature_reference, reference_events
        )
        result["drift"] = drift
        result["problems"] += drift["blockers"]
        result["warnings"] += drift["warnings"]
        result["exit_code"] = 2 if result["problems"] else 0
        return result

    return _run_judged(
        client_or_url,
        stream,
        window,
        judge,
        lambda reason, _: _error_result(reason, features={}, problems=[reason], warnings=[]),
        lambda: validate_drift_args(feature_reference, reference_events, window.get("after")),
    )


def run_feature_reference(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    out: str,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """Write the feature reference of the window to ``out`` (:mod:`.drift`; atomic, 0640):
    ``exit_code`` 0 with what was ``written``, 2 with an ``error`` (too few values, malformed
    events, no features, an unwritable path) and nothing written."""

    def check() -> None:
        if not isinstance(out, str) or not out or "\0" in out or os.path.isdir(out):
            raise RunError(f"not a file path to write the reference to: {out!r}")

    def judge(events: Any, limits: Thresholds) -> dict[str, Any]:
        where = f"{stream} {events.first_id or ''}..{events.last_id or ''}"
        reference = build_reference(events, stream=stream, source=where, thresholds=limits)
        try:
            write_reference(out, reference)
        except OSError as exc:
            raise FeatureReferenceError(
                f"cannot write the reference to {out}: {exc.strerror or exc}"
            ) from None
        features = {
            name: {"n": entry["n"], "bins": len(entry["proportions"])}
            for name, entry in reference["features"].items()
        }
        return {**describe_reference(reference, out), "features": features, "exit_code": 0}

    return _run_judged(
        client_or_url,
        stream,
        window,
        judge,
        lambda reason, _: _error_result(reason, path=None, features={}),
        check,
    )


def run_shadow_report(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    model: str,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """The four shadow gates of ``model``; ``exit_code`` 0 READY, else 2 (errors too)."""

    def check() -> None:
        if model is None:
            raise RunError("a shadow report needs a model")
        validate_model(model)

    return _run_judged(
        client_or_url,
        stream,
        window,
        lambda events, limits: shadow_report(events, model, thresholds=limits),
        lambda reason, _: _error_result(
            reason,
            model=model if is_model_name(model) else None,
            status="NOT_READY",
            gates={},
            hard_blockers=[reason],
        ),
        check,
    )


def run_compare(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    model: str,
    weights: Mapping[str, float],
    horizon_s: float = DEFAULT_HORIZON_S,
    alpha: float = DEFAULT_ALPHA,
    max_lag_s: float | None = None,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """The paired comparison of ``model`` with the baseline (:func:`.compare.compare`);
    ``exit_code`` 0 when compared (decided or not), 2 with an ``error`` when it cannot be."""

    def check() -> None:
        if model is None:
            raise RunError("a comparison needs a model")
        validate_model(model)

    result = _run_judged(
        client_or_url,
        stream,
        window,
        # With the gate's per-model figures of the same events, which the comparison's page
        # draws (not in compare() itself: the gate's and the monitor's reports embed that).
        lambda events, _: {
            **compare(
                events, model, weights, horizon_s=horizon_s, alpha=alpha, max_lag_s=max_lag_s
            ),
            "window_models": window_models(events),
        },
        lambda reason, _: _error_result(
            reason, model=model if is_model_name(model) else None, decided=False
        ),
        check,
    )
    result.setdefault("exit_code", 0)
    return result


def run_promotion_check(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    model: str,
    current_role: str,
    uptime_s: float,
    min_uptime_s: float,
    weights: Mapping[str, float] | None = None,
    **window: Unpack[WindowOptions],
) -> dict[str, Any]:
    """The hard blockers of promoting ``model`` from ``current_role`` (:mod:`.promotion`);
    ``verdict`` GO (``exit_code`` 0) or BLOCKED (2), errors included (then with ``error``).
    ``weights``: the baseline weights of the comparison's vote without the canary (None: the
    site's, ``DEFAULT_BASELINE_WEIGHTS``)."""
    baseline = parse_baseline(DEFAULT_BASELINE_WEIGHTS) if weights is None else weights

    def check() -> None:
        try:
            validate_promotion_args(model, current_role, uptime_s, min_uptime_s)
            validate_baseline_weights(baseline, model)
        except ValueError as exc:
            raise RunError(str(exc)) from None

    return _run_judged(
        client_or_url,
        stream,
        window,
        lambda events, limits: promotion_check(
            events, model, current_role, limits, uptime_s, min_uptime_s, baseline
        ),
        lambda reason, limits: blocked_check(
            reason, model, current_role, uptime_s, min_uptime_s, limits
        ),
        check,
    )
