"""The runbook's stop conditions judged (issue 16 item 4): each a named rule with a value and a
threshold, from the host's measures (:mod:`..engine.stop_conditions`) and the baseline the
activation recorded. Used by the preflight (``engine_status``: a blocking finding refuses the
activation) and by the canary monitor (a blocking finding is a violation: rollback).

====================  ====================================================  ========
rule                  finding when (thresholds: :class:`.thresholds.Thresholds`)  blocks
====================  ====================================================  ========
``restart_loop``      crash restarts in 24 h > max_restarts_24h (2)         yes
``log_spam``          engine journal lines/min > max_log_lines_per_min      yes
``disk_growth``       growth since activation > max_disk_growth_bytes (5e9)  yes
``payload_p95``       payload p95 >= max_payload_p95 (1500 bytes), with at   yes
                      least stop_min_events events (the shadow hard blocker)
``consensus_broken``  consensus 0-1 share > consensus_low_share (30 %)       yes
``consensus_redundant``  full consensus with the canary > 80 %              no (warning)
====================  ====================================================  ========

The Redis memory (``used_memory``) and the stream's length since the activation are reported
beside ``disk_growth`` (``trend``), never blocking: the stream is capped by the engine's
MAXLEN and Redis by its own maxmemory, so their growth is a trend to read, not a fault.
Undecided rules (too few events, no baseline recorded) are listed in ``undecided``, never a
finding; a measure that failed is listed in ``errors`` (the preflight refuses on it, fail
closed; the monitor reports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .thresholds import Thresholds

GB = 1_000_000_000


def stop_finding(rule: str, value: Any, threshold: Any, text: str, blocking: bool) -> dict:
    """One stop condition that holds: its rule, value, threshold, sentence and whether it
    blocks (refuses an activation, rolls back a canary)."""
    return {
        "rule": rule,
        "value": value,
        "threshold": threshold,
        "text": text,
        "blocking": blocking,
    }


def payload_p95_blocker(p95: float | None, t: Thresholds) -> str | None:
    """The payload rule's sentence when the p95 of the payload sizes is at least
    ``max_payload_p95`` bytes (the shadow hard blocker and the ``payload_p95`` stop condition),
    else None."""
    if p95 is not None and p95 >= t.max_payload_p95:
        return f"payload p95 {p95:.0f} bytes >= {t.max_payload_p95}"
    return None


def _gb(value: float) -> str:
    return f"{value / GB:+.2f} GB"


def _common_growth(now: Mapping[str, Any], then: Mapping[str, Any]) -> tuple[int, list[str]]:
    paths = [p for p in now if isinstance(now[p], int) and isinstance(then.get(p), int)]
    return sum(now[p] - then[p] for p in paths), paths


def _trend(measures: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    redis_now = measures.get("redis") or {}
    redis_then = (baseline or {}).get("redis") or {}
    trend = {}
    for key in ("used_memory", "stream_length"):
        now, then = redis_now.get(key), redis_then.get(key)
        growth = now - then if isinstance(now, int) and isinstance(then, int) else None
        trend[key] = {"now": now, "at_activation": then, "growth": growth}
    return trend


def _over_limit(
    out: dict, rule: str, part: Mapping[str, Any] | None, key: str, limit: float, text: Any
) -> None:
    """A measured value over its limit: the blocking finding ``rule`` with the sentence
    ``text(value)``; a measure that failed or is missing is an error of the rule."""
    part = part or {}
    value = part.get(key)
    if part.get("error") or value is None:
        out["errors"].append(f"{rule}: {part.get('error') or 'not measured'}")
    elif value > limit:
        out["findings"].append(stop_finding(rule, value, limit, text(value), True))


def _restart_loop(measures: Mapping[str, Any], t: Thresholds, out: dict) -> None:
    restarts = measures.get("restarts") or {}
    _over_limit(
        out,
        "restart_loop",
        restarts,
        "count",
        t.max_restarts_24h,
        lambda count: (
            f"Restart loop: {count} crash restarts in 24 h (>{t.max_restarts_24h}; journal "
            f"{restarts.get('journal_24h')}, NRestarts {restarts.get('n_restarts')})"
        ),
    )


def _log_spam(measures: Mapping[str, Any], t: Thresholds, out: dict) -> None:
    log = measures.get("log_lines") or {}
    _over_limit(
        out,
        "log_spam",
        log,
        "per_min",
        t.max_log_lines_per_min,
        lambda per_min: (
            f"Log spam: {per_min:.0f} journal lines/min (>{t.max_log_lines_per_min:g}; "
            f"{log.get('lines')} lines in {log.get('window_s'):g} s)"
        ),
    )


def _disk_growth(
    measures: Mapping[str, Any], baseline: Mapping[str, Any] | None, t: Thresholds, out: dict
) -> None:
    disk = measures.get("disk") or {}
    if disk.get("error"):
        out["errors"].append(f"disk_growth: {disk['error']}")
        return
    then = ((baseline or {}).get("disk") or {}).get("paths")
    if not isinstance(then, Mapping):
        out["undecided"].append("disk_growth: no size recorded at the activation")
        return
    growth, paths = _common_growth(disk.get("paths") or {}, then)
    if not paths:
        out["undecided"].append("disk_growth: none of the paths was measured at the activation")
        return
    out["disk_growth"] = growth
    if growth > t.max_disk_growth_bytes:
        out["findings"].append(
            stop_finding(
                "disk_growth",
                growth,
                t.max_disk_growth_bytes,
                f"Disk growth: {_gb(growth)} since the activation "
                f"(>{t.max_disk_growth_bytes / GB:g} GB) under {', '.join(paths)}",
                True,
            )
        )


def _payload(events: Mapping[str, Any] | None, t: Thresholds, out: dict) -> None:
    count = (events or {}).get("events") or 0
    if count < max(1, t.stop_min_events):
        out["undecided"].append(
            f"payload_p95: {count} events, fewer than {t.stop_min_events} (not decided yet)"
        )
        return
    p95 = events.get("payload_p95")
    sentence = payload_p95_blocker(p95, t)
    if sentence:
        text = f"P{sentence[1:]} ({count} events)"
        out["findings"].append(stop_finding("payload_p95", p95, t.max_payload_p95, text, True))


def judge_host(
    measures: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    t: Thresholds,
    events: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge stop conditions 1-4 of one host: its measures
    (:func:`..engine.stop_conditions.measure_host`), the measures recorded at the activation
    (``baseline``, None when none) and the events-based measures of a window
    (:func:`..engine.stop_conditions.window_measures`, None: not judged).

    Returns ``findings`` (:func:`stop_finding`), ``blockers`` (their sentences that block),
    ``undecided``, ``errors``, ``disk_growth`` (bytes or None) and the Redis ``trend``."""
    out: dict[str, Any] = {"findings": [], "undecided": [], "errors": [], "disk_growth": None}
    _restart_loop(measures, t, out)
    _log_spam(measures, t, out)
    _disk_growth(measures, baseline, t, out)
    if events is not None:
        _payload(events, t, out)
    out["blockers"] = [f["text"] for f in out["findings"] if f["blocking"]]
    out["trend"] = _trend(measures, baseline)
    return out


def consensus_findings(
    events: int, low: int, full: int, model: str, t: Thresholds, decided: Any = None
) -> tuple[list[dict], list[str]]:
    """Stop condition 5 over ``events`` events of the canary ``model``: ``low`` of them at
    consensus 0-1 and ``full`` at full consensus with the model voting. Returns (findings,
    undecided). Below ``stop_min_events`` events nothing is decided. ``decided(ones, n,
    bound)`` may require more than the share (the monitor's evidence over repeated looks);
    None: the share decides."""
    if events < max(1, t.stop_min_events):
        return [], [f"consensus: {events} events, fewer than {t.stop_min_events} (not decided yet)"]
    findings = []
    low_share, full_share = low / events, full / events
    if low_share > t.consensus_low_share and (
        decided is None or decided(low, events, t.consensus_low_share)
    ):
        findings.append(
            stop_finding(
                "consensus_broken",
                round(low_share, 4),
                t.consensus_low_share,
                f"Consensus broken: consensus 0-1 in {low_share:.1%} of {events} events "
                f"(>{t.consensus_low_share:.0%})",
                True,
            )
        )
    if full_share > t.consensus_full_share:
        findings.append(
            stop_finding(
                "consensus_redundant",
                round(full_share, 4),
                t.consensus_full_share,
                f"Consensus redundant: full consensus with {model} in {full_share:.1%} of "
                f"{events} events (>{t.consensus_full_share:.0%})",
                False,
            )
        )
    return findings, []
