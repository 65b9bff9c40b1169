"""Every threshold of the gate, the scoreboard, feature sanity and the shadow gates.

The defaults are the values of DESIGN.md ("Gate rules", "Modes and exit codes") and of the
[gate] issue. Each one is a named, documented field of :class:`Thresholds`; callers override
them with :meth:`Thresholds.with_overrides` (which validates names, types and ranges, so a
typo or a nonsense value is an error, never silently ignored).

Comparison directions (a rule holds exactly at its threshold unless said otherwise):

=========================  =======  ===================================================
field                      default  the model FAILS (or is flagged) when
=========================  =======  ===================================================
max_action_share           0.70     one action class (BUY, SELL or HOLD) has share > it
min_conf_std               0.05     population std of the confidences < it
min_spread                 0.12     p90 - p10 of the confidences < it
constant_std               0.01     std < it, or p10 == p90 ("constant output")
hold_collapse_share        0.85     HOLD share > it AND the median confidence is in
hold_median_low/high       0.40/60  [hold_median_low, hold_median_high] (inclusive)
max_inactive_share         0.05     share of window events without a prediction > it
go_agreement_low/high      .55/.80  scoreboard GO needs agreement in [low, high] ...
go_max_hard_disagree       0.20     ... and hard disagreement < it
shadow_min_agreement       0.55     shadow gate "agreement" PASSES when agreement >= it
max_payload_p95            1500     shadow hard blocker when payload p95 (bytes) >= it
shadow_max_hard_disagree   0.30     shadow hard blocker when hard disagreement > it
flatline_std               1e-6     a feature is flatline when its std < it
duplicate_window           50       feature vectors compared among the last N events
duplicate_warn_share       0.50     warning when the duplicate share there > it
calibration_min_events     100      calibration DEFERS below this many judged events
calibration_buckets        3        number of confidence quantile buckets
calibration_horizon_s      60.0     truth = later price of the same symbol >= this later
compare_alpha              0.05     promotion blocked when the canary's loss is significant:
                                    one-sided exact p < it (in (0, 0.5])
compare_horizon_s          300.0    the move a call is judged on: the later price of the
                                    same symbol >= this later (>= 0.001 s)
compare_max_loss_share     0.60     ... a loss is being wrong in > this share of the calls
                                    where the canary and the ensemble without it disagree
psi_warn                   0.10     feature drift: a feature's PSI > it is a warning
psi_block                  0.25     feature drift: a feature's PSI > it blocks / rolls back
psi_min_events             200      feature drift: fewer values than it in either window is
                                    "not decided" (and the least a reference file holds)
max_restarts_24h           2        stop condition restart_loop: crash restarts in 24 h > it
max_log_lines_per_min      1000     stop condition log_spam: engine journal lines/min > it
max_disk_growth_bytes      5e9      stop condition disk_growth: bytes grown since activation > it
consensus_full_share       0.80     stop condition consensus_redundant (warning): share > it
consensus_low_share        0.30     stop condition consensus_broken (blocker): share > it
stop_min_events            100      payload p95 and consensus undecided below this many events
=========================  =======  ===================================================

The runbook stop conditions (issue 16 item 4) are measured on the host by
:mod:`..engine.stop_conditions` and judged by :mod:`.stop_rules`; ``max_payload_p95`` is both
a shadow hard blocker and the ``payload_p95`` stop condition (one rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["MODES", "Mode", "Thresholds", "get_mode"]


@dataclass(frozen=True)
class Thresholds:
    """The named thresholds (DESIGN defaults); see the module docstring for the directions."""

    max_action_share: float = 0.70
    """Gate: FAIL when any action class (BUY, SELL, HOLD) is > 70 % of the model's active
    events ("action collapse"). Also the shadow gate "action diversity" (PASS at <= 70 %)."""
    min_conf_std: float = 0.05
    """Gate: FAIL when the population std of the model's confidences is < 0.05. Also the
    shadow gate "confidence spread" (PASS at >= 0.05)."""
    min_spread: float = 0.12
    """Gate: FAIL when p90 - p10 of the confidences (numpy's default linear percentiles)
    is < 0.12."""
    constant_std: float = 0.01
    """Gate: FAIL as "constant output" when the std is < 0.01 or p10 == p90."""
    hold_collapse_share: float = 0.85
    """Gate: HOLD collapse when the HOLD share is > 85 % ..."""
    hold_median_low: float = 0.40
    """... and the median confidence is >= 0.40 ..."""
    hold_median_high: float = 0.60
    """... and <= 0.60 (both ends inclusive)."""
    max_inactive_share: float = 0.05
    """Gate: FAIL ("model inactive") when the judged model gave no prediction (reported
    inactive, or missing from model_breakdown) in > 5 % of the window's valid events."""
    go_agreement_low: float = 0.55
    """Scoreboard: GO needs agreement with ``side`` >= 55 % ..."""
    go_agreement_high: float = 0.80
    """... and <= 80 % (more agreement means the model adds nothing of its own) ..."""
    go_max_hard_disagree: float = 0.20
    """... and hard disagreement (BUY vs SELL) < 20 %; a passing model outside is WAIT."""
    shadow_min_agreement: float = 0.55
    """Shadow gate "agreement": PASS when agreement with the ensemble is >= 55 %."""
    max_payload_p95: int = 1500
    """Shadow hard blocker: payload size p95 >= 1500 bytes."""
    shadow_max_hard_disagree: float = 0.30
    """Shadow hard blocker: hard disagreement with the ensemble > 30 %."""
    flatline_std: float = 1e-6
    """Feature sanity: a feature whose std (over its finite values) is < 1e-6 is flatline."""
    duplicate_window: int = 50
    """Feature sanity: duplicates are counted among the last 50 events' feature vectors."""
    duplicate_warn_share: float = 0.50
    """Feature sanity: warning when > 50 % of those vectors repeat an earlier one."""
    calibration_min_events: int = 100
    """Shadow calibration: DEFER below 100 judged events (active BUY/SELL with a truth)."""
    calibration_buckets: int = 3
    """Shadow calibration: number of confidence quantile buckets (>= 2)."""
    calibration_horizon_s: float = 60.0
    """Shadow calibration: the truth is the price of the same symbol at the first event at
    least 60 s later (by the events' ``timestamp``)."""
    compare_alpha: float = 0.05
    """Promotion (:mod:`.compare_loss`): the canary's loss against the ensemble without it is
    significant when the one-sided exact binomial p-value is < 0.05 (in (0, 0.5])."""
    compare_horizon_s: float = 300.0
    """Promotion comparison: a call is judged on the price of the same symbol at the first
    event at least 300 s later (by ``timestamp``; at least 0.001 s, the timestamps' unit)."""
    compare_max_loss_share: float = 0.60
    """Promotion comparison: the canary loses when it is wrong in significantly more than 60 %
    of the calls where it and the ensemble without it disagree (0.5 is plain McNemar; a
    healthy member of an ensemble loses a little over half of them)."""
    psi_warn: float = 0.10
    """Feature drift (:mod:`.drift`): a feature whose PSI between the reference and the current
    window is > 0.10 is a warning (the usual "some shift, watch it")."""
    psi_block: float = 0.25
    """Feature drift: PSI > 0.25 ("a significant shift") blocks the gate and feature sanity
    and is a violation of the monitor (rollback)."""
    psi_min_events: int = 200
    """Feature drift: a feature with fewer finite values than this in the reference or in
    the current window is not decided (PSI from sampling alone is about
    (bins - 1) x (1/n_ref + 1/n_cur): 0.09 at 200 vs 200); a reference file holds at least
    this many per feature."""
    max_restarts_24h: int = 2
    """Stop condition ``restart_loop``: more than 2 crash restarts of the engine in 24 h
    (systemd's automatic restarts; an activation's own stop + start is not one)."""
    max_log_lines_per_min: float = 1000.0
    """Stop condition ``log_spam``: more than 1000 journal lines per minute from the engine's
    unit over the measuring window."""
    max_disk_growth_bytes: int = 5_000_000_000
    """Stop condition ``disk_growth``: the engine's data and log paths grew by more than
    5 GB (5e9 bytes of disk usage) since the activation."""
    consensus_full_share: float = 0.80
    """Stop condition ``consensus_redundant`` (a warning): more than 80 % of the events at
    full consensus with the canary voting."""
    consensus_low_share: float = 0.30
    """Stop condition ``consensus_broken`` (a blocker): more than 30 % of the events at
    consensus 0 or 1."""
    stop_min_events: int = 100
    """The events-based stop conditions (payload p95, consensus) are not decided below 100
    events."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            is_int = item.type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"threshold {item.name} must be a number, got {value!r}")
            if is_int and not isinstance(value, int):
                raise ValueError(f"threshold {item.name} must be an integer, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"threshold {item.name} must be finite and >= 0, got {value!r}")
            if item.name in _SHARES and value > 1:
                raise ValueError(f"threshold {item.name} is a share in [0, 1], got {value!r}")
        if self.calibration_buckets < 2:
            raise ValueError("threshold calibration_buckets must be >= 2")
        if self.duplicate_window < 1:
            raise ValueError("threshold duplicate_window must be >= 1")
        if self.hold_median_low > self.hold_median_high:
            raise ValueError("threshold hold_median_low must be <= hold_median_high")
        if self.go_agreement_low > self.go_agreement_high:
            raise ValueError("threshold go_agreement_low must be <= go_agreement_high")
        if not 0.0 < self.compare_alpha <= 0.5:
            raise ValueError(
                f"threshold compare_alpha must be in (0, 0.5], got {self.compare_alpha!r}"
            )
        if self.compare_horizon_s < 0.001:
            raise ValueError(
                "threshold compare_horizon_s must be >= 0.001 s (the timestamps are in "
                f"milliseconds), got {self.compare_horizon_s!r}"
            )
        if not 0.5 <= self.compare_max_loss_share < 1.0:
            raise ValueError(
                "threshold compare_max_loss_share must be in [0.5, 1), got "
                f"{self.compare_max_loss_share!r}"
            )
        if self.psi_warn > self.psi_block:
            raise ValueError("threshold psi_warn must be <= psi_block")
        if self.psi_min_events < 1:
            raise ValueError("threshold psi_min_events must be >= 1")

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Thresholds:
        """A copy with ``overrides`` applied; ValueError names any unknown or invalid one.

        Integer thresholds accept integral floats (``1500.0``), as YAML/JSON may give them.
        """
        if not overrides:
            return self
        known = {item.name: item for item in fields(self)}
        unknown = sorted(str(k) for k in overrides if k not in known)
        if unknown:
            raise ValueError(f"unknown thresholds: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in overrides.items():
            if known[name].type in ("int", int) and isinstance(value, float) and value.is_integer():
                value = int(value)
            values[name] = value
        return replace(self, **values)


_SHARES = frozenset(
    {
        "max_action_share",
        "hold_collapse_share",
        "hold_median_low",
        "hold_median_high",
        "max_inactive_share",
        "go_agreement_low",
        "go_agreement_high",
        "go_max_hard_disagree",
        "shadow_min_agreement",
        "shadow_max_hard_disagree",
        "compare_max_loss_share",
        "duplicate_warn_share",
        "min_conf_std",
        "min_spread",
        "constant_std",
        "consensus_full_share",
        "consensus_low_share",
    }
)


@dataclass(frozen=True)
class Mode:
    """A gate mode: its name, the events each judged model needs, and whether it can PASS.

    ``canary`` (default): >= 200 events, verdict PASS (exit 0) or FAIL (exit 2).
    ``collection``: >= 100 events, verdict always COLLECTION (exit 3), never promotes.
    """

    name: str
    min_events: int
    promotes: bool = True


MODES: dict[str, Mode] = {
    "canary": Mode("canary", min_events=200, promotes=True),
    "collection": Mode("collection", min_events=100, promotes=False),
}


def get_mode(mode: str | Mode) -> Mode:
    """The Mode for a name (or a Mode itself); ValueError for anything else."""
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str) and mode in MODES:
        return MODES[mode]
    raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
