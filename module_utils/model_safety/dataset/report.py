"""The PatchTST sequence dataset's Markdown report and console summary, from its metadata.

Both read only the metadata that :mod:`.dataset` stores in the .npz, so the report says
exactly what the file holds: counts per symbol, class balance (warned about above 70 %: the
100 %-WIN bias the builder exists to prevent), the chronological split, the gaps found and
the feature statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..judgement.markdown import bullets as _bullets
from ..judgement.markdown import code as _code
from ..judgement.markdown import num as _num
from ..judgement.markdown import pct as _pct
from ..judgement.markdown import table as _table
from ..utctime import iso_s

_SYMBOL_COUNTS = ("candles", "runs", "gaps", "missing_candles", "windows", "win", "loss")
_SYMBOL_COLUMNS = (
    "symbol",
    "candles",
    "runs",
    "gaps",
    "missing candles",
    "windows",
    "WIN",
    "LOSS",
    "WIN share",
)


def _when(ts: Any, unset: str = "-") -> str:
    return unset if ts is None else iso_s(ts)


def _horizon(metadata: Mapping[str, Any]) -> str:
    horizon = metadata["horizon"]
    return f"{horizon['given']} = {horizon['candles']} candles of {metadata['interval_s']} s"


def _balance_row(name: str, balance: Mapping[str, Any]) -> list[str]:
    return [
        name,
        str(balance["windows"]),
        str(balance["win"]),
        str(balance["loss"]),
        _pct(balance["win_share"]),
    ]


def render_report(metadata: Mapping[str, Any], dataset_path: str, now: datetime) -> str:
    """``reports/safety/patchtst_sequence_dataset_<stamp>.md``."""
    balance, split, gaps = metadata["class_balance"], metadata["split"], metadata["gaps"]
    source, time_range = metadata["source"], metadata["time_range"]
    selection = metadata["selection"]
    lines = [
        "# PatchTST sequence dataset",
        "",
        f"Generated {iso_s(now)}",
        "",
        f"- Dataset: {_code(dataset_path)}: X {metadata['arrays']['X']}",
        f"- Source: {_code(source['db'])} table {source['table']}, {source['rows']} candles "
        f"read; file SHA-256 {source['db_sha256']}; candles SHA-256 {source['rows_sha256']}",
        f"- Selection: {', '.join(selection['symbols'] or ['every symbol'])}; candles opening "
        f"from {_when(selection['start'], 'the first')} to before "
        f"{_when(selection['end'], 'the end')}",
        f"- Candles: {_when(time_range['first_candle_ts'])} .. "
        f"{_when(time_range['last_candle_ts'])}; window ends "
        f"{_when(time_range['first_end_ts'])} .. {_when(time_range['last_end_ts'])}",
        f"- Windows: lookback {metadata['lookback']} candles after "
        f"{metadata['warmup_candles']} warm-up candles; horizon {_horizon(metadata)}",
        f"- Label: {metadata['label']['rule']}; threshold {metadata['label']['threshold']:g}",
        f"- Leakage: {metadata['leakage']}",
        "",
        "## Warnings",
        "",
        *_bullets(metadata["warnings"]),
        "",
        "## Class balance",
        "",
        *_table(
            ("windows", "count", "WIN", "LOSS", "WIN share"),
            [
                _balance_row("all", balance),
                _balance_row("train", split["train"]),
                _balance_row("validation", split["validation"]),
            ],
        ),
        "",
        "## Chronological split",
        "",
        f"- Split at {_when(split['split_ts'])} (validation fraction "
        f"{split['validation_fraction']:g}): validation ends at or after it, train ends at or "
        f"before {_when(split['train_max_end_ts'])}; {split['purged']} windows purged between",
        f"- Rule: {split['rule']}",
        "",
        "## Windows per symbol",
        "",
        *_table(
            _SYMBOL_COLUMNS,
            [
                [symbol, *(row[key] for key in _SYMBOL_COUNTS), _pct(row["win_share"])]
                for symbol, row in metadata["per_symbol"].items()
            ],
        ),
        "",
        f"## Gaps: {gaps['count']} ({gaps['missing_candles']} missing candles)",
        "",
    ]
    if gaps["listed"]:
        if len(gaps["listed"]) < gaps["count"]:
            lines += [f"The first {len(gaps['listed'])} listed.", ""]
        lines += _table(
            ("symbol", "last candle before", "first candle after", "missing candles"),
            [
                [gap["symbol"], _when(gap["after_ts"]), _when(gap["before_ts"]), gap["missing"]]
                for gap in gaps["listed"]
            ],
        )
    else:
        lines.append("none")
    stats = metadata["feature_stats"] or {}
    rows = [
        [feature["name"], feature["description"]]
        + [
            _num(stats.get(feature["name"], {}).get(key), 6)
            for key in ("mean", "std", "min", "max")
        ]
        for feature in metadata["features"]
    ]
    lines += [
        "",
        "## Features (over every value of X)",
        "",
        *_table(("feature", "definition", "mean", "std", "min", "max"), rows),
    ]
    return "\n".join(lines).rstrip() + "\n"


def summary_lines(
    metadata: Mapping[str, Any], dataset_path: str | None, report_path: str | None
) -> list[str]:
    """What the command prints: the counts (also in a dry run), the warnings, the files."""
    balance, split = metadata["class_balance"], metadata["split"]
    written = "" if dataset_path else "DRY RUN, nothing written: "
    lines = [
        f"{written}PATCHTST DATASET {balance['windows']} windows (lookback "
        f"{metadata['lookback']}, {len(metadata['features'])} features, horizon "
        f"{_horizon(metadata)}): WIN {_pct(balance['win_share'])}, "
        f"LOSS {_pct(balance['loss_share'])}"
    ]
    width = max(len(symbol) for symbol in metadata["per_symbol"])
    lines += [
        f"  {symbol:<{width}}  {row['candles']} candles, gaps {row['gaps']} "
        f"({row['missing_candles']} missing candles), {row['windows']} windows, "
        f"WIN {_pct(row['win_share'])}"
        for symbol, row in metadata["per_symbol"].items()
    ]
    lines.append(
        f"  split at {_when(split['split_ts'])}: train {split['train']['windows']}, "
        f"validation {split['validation']['windows']}, purged {split['purged']}"
    )
    lines += [f"  warning: {warning}" for warning in metadata["warnings"]]
    if dataset_path:
        lines.append(f"dataset: {dataset_path}")
    if report_path:
        lines.append(f"report: {report_path}")
    return lines
