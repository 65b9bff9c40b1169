"""The dataset's metadata: class balance, the chronological split, per-symbol counts, the
warnings, and the rules (labels, leakage) the dataset was built by."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np

from ..utctime import iso_s
from .options import FEATURES, WARMUP_CANDLES
from .windows import Plan

FORMAT = "patchtst_sequences/1"

BALANCE_WARN_SHARE = 0.70
"""A class above this share of the windows is warned about (the 100 %-WIN bias)."""

LISTED_GAPS = 100
"""Gaps listed one by one in the metadata and the report (all are counted)."""

LABEL_RULE = "WIN (1) when close[t + h] / close[t] - 1 > threshold, else LOSS (0)"

LEAKAGE_RULE = (
    f"the features of the window ending at candle t use candles t - T + 1 - {WARMUP_CANDLES} "
    "(warm-up for the causal features, inside the same gap-free run) .. t only; scaling uses "
    "only the window's own candles (close_vs_last, volume_z); no statistic of the whole "
    "dataset is used"
)


def _balance(y: np.ndarray) -> dict[str, Any]:
    win = int(np.count_nonzero(y))
    total = int(y.size)
    return {
        "windows": total,
        "win": win,
        "loss": total - win,
        "win_share": win / total if total else None,
        "loss_share": (total - win) / total if total else None,
    }


def _split(plan: Plan) -> dict[str, Any]:
    fraction = plan.options.validation_fraction
    ordered = np.sort(plan.end_ts)
    split_ts = int(ordered[min(plan.windows - 1, int(plan.windows * (1.0 - fraction)))])
    train_max_end_ts = split_ts - (plan.horizon_candles + 1) * plan.interval_s
    validation = plan.end_ts >= split_ts
    train = plan.end_ts <= train_max_end_ts
    return {
        "rule": "validation: end_ts >= split_ts; train: end_ts <= train_max_end_ts (the label "
        "candle closed by split_ts); the windows between are purged; no shuffling",
        "validation_fraction": fraction,
        "split_ts": split_ts,
        "train_max_end_ts": train_max_end_ts,
        "train": _balance(plan.y[train]),
        "validation": _balance(plan.y[validation]),
        "purged": int(plan.windows - np.count_nonzero(train) - np.count_nonzero(validation)),
    }


def _per_symbol(plan: Plan) -> dict[str, dict[str, Any]]:
    candles = plan.candles
    count = len(candles.symbols)
    windows = np.bincount(plan.window_symbol, minlength=count)
    wins = np.bincount(plan.window_symbol, weights=plan.y, minlength=count)
    table = {}
    for index, symbol in enumerate(candles.symbols):
        gaps = [gap for gap in plan.gaps if gap.symbol == symbol]
        total, win = int(windows[index]), int(wins[index])
        table[symbol] = {
            "candles": int(candles.bounds[index + 1] - candles.bounds[index]),
            "runs": sum(1 for run in plan.runs if run.symbol == index),
            "gaps": len(gaps),
            "missing_candles": sum(gap.missing for gap in gaps),
            "windows": total,
            "win": win,
            "loss": total - win,
            "win_share": win / total,
        }
    return table


def _warnings(balance: dict[str, Any], split: dict[str, Any]) -> list[str]:
    warnings = []
    for name in ("win", "loss"):
        share = balance[f"{name}_share"]
        if share > BALANCE_WARN_SHARE:
            warnings.append(
                f"class balance: {name.upper()} is {100 * share:.1f}% of the "
                f"{balance['windows']} windows (> {100 * BALANCE_WARN_SHARE:.0f}%): a model "
                "trained on this learns to always say "
                f"{name.upper()}; check --threshold, --horizon and the time range"
            )
    for part in ("train", "validation"):
        if not split[part]["windows"]:
            warnings.append(f"split: no {part} windows (too few windows or a short time range)")
    return warnings


def build_metadata(
    plan: Plan, feature_stats: dict[str, dict[str, float]] | None, now: datetime
) -> dict[str, Any]:
    """Everything a consumer of the .npz needs to know, JSON-able (also the report's input)."""
    options, candles = plan.options, plan.candles
    balance = _balance(plan.y)
    split = _split(plan)
    return {
        "format": FORMAT,
        "created": iso_s(now),
        "arrays": {
            "X": f"(N, T, F) float32, N={plan.windows} windows, T={options.lookback}, "
            f"F={len(FEATURES)}",
            "y": "(N,) int8: 1 WIN, 0 LOSS",
            "end_ts": "(N,) int64: ts (candle open, unix seconds) of the window's last candle t",
            "symbol": "(N,) unicode: the window's symbol",
            "order": "sorted by (symbol, end_ts)",
        },
        "features": [{"name": name, "description": text} for name, text in FEATURES],
        "feature_stats": feature_stats,
        "lookback": options.lookback,
        "warmup_candles": WARMUP_CANDLES,
        "horizon": {
            "given": options.horizon,
            "seconds": options.horizon_s,
            "candles": plan.horizon_candles,
        },
        "interval_s": plan.interval_s,
        "label": {"rule": LABEL_RULE, "threshold": options.threshold},
        "leakage": LEAKAGE_RULE,
        "symbols": list(candles.symbols),
        "selection": {
            "symbols": list(options.symbols) or None,
            "start": options.start,
            "end": options.end,
        },
        "time_range": {
            "first_candle_ts": int(candles.ts.min()),
            "last_candle_ts": int(candles.ts.max()),
            "first_end_ts": int(plan.end_ts.min()),
            "last_end_ts": int(plan.end_ts.max()),
        },
        "class_balance": balance,
        "split": split,
        "per_symbol": _per_symbol(plan),
        "gaps": {
            "count": len(plan.gaps),
            "missing_candles": sum(gap.missing for gap in plan.gaps),
            "listed": [asdict(gap) for gap in plan.gaps[:LISTED_GAPS]],
        },
        "source": candles.source,
        "warnings": _warnings(balance, split),
    }
