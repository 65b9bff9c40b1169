"""The runbook's stop conditions in the canary monitor (issue 16 item 4), per check of a host.

The probe measures the host (``canary_probe`` with ``stop_paths``:
:func:`..engine.stop_conditions.measure_host`) and the events it read
(:func:`..engine.stop_conditions.window_measures`); the rules are those of the preflight
(:mod:`..judgement.stop_rules`) at the monitor's thresholds (``--threshold``):

* ``restart_loop``, ``log_spam``, ``disk_growth`` (since the sizes the activation recorded)
  are judged on each check's measures;
* ``payload_p95`` over the newest ``window_events`` payload sizes read since the activation's
  start, not decided below ``stop_min_events`` of them;
* ``consensus_broken`` and ``consensus_redundant`` over every event read since the activation's
  start (counts kept in the host's state), not decided below ``stop_min_events`` events.
  ``consensus_broken`` also needs evidence that holds however often it is looked at: the
  mixture likelihood ratio of its counts (:func:`.evidence.mixture_log_m`) over
  ``log(1 / alpha)``, alpha being CONSENSUS_BUDGET of the host's false-rollback rate. At
  1 event/min it is decided after about 100 minutes of a clearly broken canary, at 100/s
  within a check.

A blocking finding is a violation (rollback); ``consensus_redundant`` is a warning: a canary
that always agrees changes no decision (and ``redundant`` on agreement is the evidence rule
that rolls it back). A measure that failed (the journal unreadable, a path unreadable) is a
warning ``stop_measure``: the service's own rules and the telemetry's already roll back a
host that cannot be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..engine.stop_conditions import activation_baseline
from ..judgement.stop_rules import consensus_findings, judge_host
from ..telemetry.metrics import payload_p95
from .evidence import mixture_log_m
from .settings import MonitorSettings, share_of_alpha

# The share of a host's false-rollback rate that consensus_broken may spend.
CONSENSUS_BUDGET = 0.05


def new_stop_state() -> dict[str, Any]:
    """What a host's watch keeps for the events-based stop conditions."""
    return {"payloads": [], "consensus": {"events": 0, "low": 0, "full": 0}}


def judge_stop_conditions(
    state: Mapping[str, Any],
    probe: Mapping[str, Any],
    settings: MonitorSettings,
    hosts: int = 1,
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """One check's stop conditions: ``(new stop state, violations, warnings)``; the state is
    the host's ``stop`` (None: a new one). Without measures in the probe nothing is judged."""
    stop = state.get("stop") or new_stop_state()
    measures = probe.get("stop_conditions")
    if not isinstance(measures, Mapping):
        return dict(stop), [], []
    events = probe.get("stop_events") or {}
    payloads = (list(stop["payloads"]) + list(events.get("payload_bytes") or []))[
        -settings.window_events :
    ]
    consensus = {
        key: int(stop["consensus"][key]) + int(events.get(key) or 0)
        for key in ("events", "low", "full")
    }
    t = settings.gate_thresholds()
    judged = judge_host(
        measures,
        activation_baseline(probe.get("activation")),
        t,
        {"events": len(payloads), "payload_p95": payload_p95(payloads)},
    )
    alpha = share_of_alpha(settings, hosts, pooled=False) * CONSENSUS_BUDGET

    def decided(ones: int, n: int, bound: float) -> bool:
        return mixture_log_m(ones, n, bound) >= math.log(1 / alpha)

    found, _ = consensus_findings(
        consensus["events"], consensus["low"], consensus["full"], settings.model, t, decided
    )
    findings = judged["findings"] + found
    warnings = [f for f in findings if not f["blocking"]] + [
        {
            "rule": "stop_measure",
            "value": error,
            "threshold": None,
            "text": f"stop condition not measured: {error}",
        }
        for error in judged["errors"]
    ]
    new = {"payloads": payloads, "consensus": consensus}
    return new, [f for f in findings if f["blocking"]], warnings
