"""Feature sanity: are the features the models see numbers that move?

Per feature over the window's valid events: how many values are NaN, +-Inf or missing,
and mean, std (population), min and max over the finite values. Problems (exit code 2):

* any NaN or Inf value; a feature missing from some events that carry other features;
  events without any feature when others have features;
* a flatline feature: std of its finite values < ``flatline_std`` (1e-6);
* no features at all, an empty window, or any malformed event (its features are unknown).

Warning only (exit code unchanged): among the feature vectors of the last
``duplicate_window`` (50) events, rounded to 4 decimals, more than ``duplicate_warn_share``
(50 %) repeat an earlier vector of that set (duplicate share = 1 - distinct / count).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from ..judgement.thresholds import Thresholds
from .events import EventWindow

__all__ = ["DUPLICATE_DECIMALS", "duplicate_share", "feature_sanity"]

DUPLICATE_DECIMALS = 4
"""Feature vectors are rounded to this many decimals before they are compared."""
_DEFAULT = Thresholds()


def duplicate_share(window: EventWindow, last: int) -> tuple[float | None, int]:
    """(share of repeated vectors among the last ``last`` events, how many were compared).

    The vector of an event is its values of every feature of the window (sorted by name,
    NaN where absent), rounded to 4 decimals with -0.0 made 0.0, and hashed as bytes.
    """
    names = sorted(window.features)
    if not names or window.n == 0:
        return None, 0
    start = max(0, window.n - last)
    matrix = np.stack([window.features[name][start:] for name in names], axis=1)
    rounded = np.round(matrix, DUPLICATE_DECIMALS) + 0.0
    count = rounded.shape[0]
    distinct = len({row.tobytes() for row in rounded})
    return 1.0 - distinct / count, count


def _stats(values: np.ndarray, present: np.ndarray, flatline_std: float) -> dict[str, Any]:
    carried = values[present]
    nan = int(np.count_nonzero(np.isnan(carried)))
    inf = int(np.count_nonzero(np.isinf(carried)))
    finite = carried[np.isfinite(carried)]
    entry: dict[str, Any] = {
        "count": int(carried.size),
        "nan": nan,
        "inf": inf,
        "finite": int(finite.size),
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "flatline": None,
    }
    if finite.size:
        std = float(np.std(finite))
        entry.update(
            mean=float(np.mean(finite)),
            std=std,
            min=float(finite.min()),
            max=float(finite.max()),
            flatline=std < flatline_std,
        )
    return entry


def feature_sanity(window: EventWindow, thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """Per-feature statistics, problems (exit 2) and warnings; see the module docstring."""
    t = thresholds
    problems: list[str] = []
    warnings: list[str] = []
    features: dict[str, Any] = {}
    if window.malformed:
        first = window.malformed[0]
        problems.append(
            f"window: {len(window.malformed)} malformed events, their features are unknown "
            f"(first {first.stream_id}: {first.reason})"
        )
    if window.n == 0:
        problems.append("window: no valid events")
    elif not window.features:
        problems.append("window: no features in any event")
    carrying = np.zeros(window.n, dtype=np.bool_)
    for present in window.feature_present.values():
        carrying |= present
    without = int(window.n - np.count_nonzero(carrying))
    if window.features and without:
        problems.append(f"window: {without} events carry no features")
    for name, values in window.features.items():
        present = window.feature_present.get(name, ~np.isnan(values))
        entry = _stats(values, present, t.flatline_std)
        entry["missing"] = int(np.count_nonzero(carrying & ~present))
        features[name] = entry
        if entry["nan"]:
            problems.append(f"{name}: {entry['nan']} NaN values of {entry['count']}")
        if entry["inf"]:
            problems.append(f"{name}: {entry['inf']} Inf values of {entry['count']}")
        if entry["missing"]:
            problems.append(f"{name}: missing in {entry['missing']} events that carry features")
        if entry["flatline"]:
            problems.append(f"{name}: flatline: std {entry['std']:.3g} < {t.flatline_std:.3g}")
    share, compared = duplicate_share(window, t.duplicate_window)
    if share is not None and share > t.duplicate_warn_share:
        warnings.append(
            f"duplicate feature vectors: {share * 100:.1f}% of the last {compared} events "
            f"> {t.duplicate_warn_share * 100:.1f}%"
        )
    return {
        "event_count": window.n,
        "malformed": len(window.malformed),
        "events_without_features": without,
        "features": features,
        "duplicates": {
            "share": share,
            "compared": compared,
            "window": t.duplicate_window,
            "threshold": t.duplicate_warn_share,
        },
        "problems": problems,
        "warnings": warnings,
        "thresholds": asdict(t),
        "window": {"first_id": window.first_id, "last_id": window.last_id},
        "exit_code": 2 if problems else 0,
    }
