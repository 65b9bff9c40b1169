"""The canary monitor's settings (the ``model-safety monitor`` options, checked) and where it
finds its playbooks and keeps its files, the statuses of a host and of a check, and a host's
state when its watch starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..judgement.thresholds import Thresholds
from ..names import is_model_name
from . import evidence

ACTIVE = "monitoring"
ROLLING_BACK = "rolling_back"
COMPLETED = "completed"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
ENDED = "ended"

# Check outcomes, from best to worst.
OK, WARNING, ERROR, VIOLATION = "ok", "warning", "error", "violation"
# The end of a watch.
SAFE, INCONCLUSIVE = "safe", "inconclusive"
POOL = "_pool"
# When the stream's rate is unknown, plan the evidence and judge silence as at this rate
# (DESIGN's fastest): fewer false rollbacks, slower decisions.
FALLBACK_RATE = 100.0


class MonitorError(ValueError):
    """Bad settings or a state that cannot be used."""


@dataclass(frozen=True)
class MonitorSettings:
    """What one monitor watches and how strictly (the ``model-safety monitor`` options)."""

    model: str
    duration_s: float = 6 * 3600.0
    interval_s: float = 30.0
    false_rollback_rate: float = evidence.DEFAULT_FALSE_ROLLBACK_RATE
    confirm_events: int = evidence.DEFAULT_CONFIRM_EVENTS
    window_events: int = evidence.DEFAULT_WINDOW_EVENTS
    max_hard_disagree: float = 0.25
    redundant_agreement: float = 0.85
    stall_checks: int = 3
    thresholds: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_model_name(self.model):
            raise MonitorError(f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {self.model!r}")
        for name in ("duration_s", "interval_s"):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or value <= 0:
                raise MonitorError(f"{name} must be a positive number of seconds, got {value!r}")
        for name, low, high in (
            ("stall_checks", 1, 1000),
            ("confirm_events", 0, 1000),
            ("window_events", 10, 100_000),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise MonitorError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        rate = self.false_rollback_rate
        if not is_number(rate) or not 1e-9 <= rate <= 0.5:
            raise MonitorError(f"false_rollback_rate must be in [1e-9, 0.5], got {rate!r}")
        for name in ("max_hard_disagree", "redundant_agreement"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < 1:
                raise MonitorError(f"{name} must be a share in (0, 1), got {value!r}")
        try:
            self.specs()
        except (TypeError, ValueError) as exc:
            raise MonitorError(f"bad gate thresholds: {exc}") from None

    def gate_thresholds(self) -> Thresholds:
        """The gate's thresholds with this monitor's overrides."""
        return Thresholds().with_overrides(dict(self.thresholds))

    def specs(self) -> tuple[evidence.DetectorSpec, ...]:
        """The e-detectors at these thresholds."""
        t = self.gate_thresholds()
        return evidence.detector_specs(
            max_action_share=t.max_action_share,
            min_spread=t.min_spread,
            constant_std=t.constant_std,
            max_hard_disagree=self.max_hard_disagree,
            redundant_agreement=self.redundant_agreement,
            max_inactive_share=t.max_inactive_share,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for the state file and the log)."""
        values = asdict(self)
        values["thresholds"] = dict(self.thresholds)
        return values


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def stream_id_key(stream_id: str | None) -> tuple[int, int] | None:
    """``"<ms>-<seq>"`` as a sortable pair; None for None or anything else."""
    if not isinstance(stream_id, str):
        return None
    ms, _, seq = stream_id.partition("-")
    if not (ms.isdigit() and seq.isdigit()):
        return None
    return int(ms), int(seq)


def new_state(host: str, settings: MonitorSettings, started_at: str, cursor: str | None) -> dict:
    """A host's state when its monitoring starts: ``cursor`` is where its first read starts
    (None: the canary's start)."""
    return {
        "host": host,
        "model": settings.model,
        "status": ACTIVE,
        "started_at": started_at,
        "baseline": None,
        "cursor": cursor,
        "newest_id": None,
        "checks": 0,
        "unjudged": 0,
        "rate": None,
        "window": [],
        "events": 0,
        "detectors": None,
        "malformed_pending": False,
        "stop": None,
        "violations": [],
        "last_check": None,
    }


def share_of_alpha(settings: MonitorSettings, hosts: int, pooled: bool) -> float:
    """The false-rollback rate of one set of detectors: all of it for a lone host; with
    several hosts half for the pool and the other half shared by the hosts."""
    if hosts <= 1:
        return settings.false_rollback_rate if not pooled else 0.0
    return settings.false_rollback_rate / 2 / (1 if pooled else hosts)


def stall_after_s(settings: MonitorSettings, rate_per_s: float | None) -> float:
    """How long a silence must last to be a stall: improbable at the model's own rate (a
    Poisson stream at ``rate`` has a gap that long anywhere in the watch with probability at
    most the stall's share of the false-rollback rate), and at least ``stall_checks``
    intervals."""
    floor = settings.stall_checks * settings.interval_s
    if not rate_per_s or not math.isfinite(rate_per_s) or rate_per_s <= 0:
        return floor
    expected = max(1.0, rate_per_s * settings.duration_s)
    alpha = settings.false_rollback_rate * evidence.STALL_BUDGET
    return max(floor, math.log(expected / alpha) / rate_per_s)


@dataclass(frozen=True)
class MonitorOptions:
    """Where the monitor finds its playbooks and keeps its files (the CLI's options)."""

    settings: MonitorSettings
    project_dir: str
    state_dir: str
    activation_log: str
    check_log: str
    inventory: str | None = None
    limit: str | None = None
    textfile_dir: str | None = None
    webhook_url: str | None = None
    webhook_timeout: float = 5.0
    webhook_retries: int = 2
    webhook_format: str = "monitor"
    check_timeout: float = 120.0
    rollback_timeout: float = 900.0
    keep_artifacts: int = 20
