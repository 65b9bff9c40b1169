"""Damage report (issue 16 item 2): what a model did to the trade log while it voted.

The seed runbooks say "review trade_intents for damage assessment". This answers it from the
engine's SQLite trade log (read-only) and the telemetry stream (the price path):

* rows read: the ``trade_intents`` rows created after ``since`` (and before ``until`` when
  given: a rollback's window ends at the new start of the engine). Each row's ``payload`` is
  the event JSON the engine published; it is parsed by the telemetry parser, so a row whose
  payload is not a valid event (or whose ``created_at`` is no time) is counted as malformed
  and skipped, never fatal.
* participated: rows whose ``model_source`` (the voting models that agreed with the decision)
  credits the model (:func:`..engine.trade_log.credits_model`).
* decisive: rows where the model voted and the decision would have been different without it:
  the engine's vote recomputed from the row's ``model_breakdown`` with the baseline weights and
  without the model (:func:`.compare.vote_without`). A decisive row need not be a participated
  one: a model that breaks a tie changes the decision to HOLD without agreeing with it.
* forward return of a decision: the price of the same symbol at the first later price point at
  least ``horizon`` later (the shadow report's rule, :func:`.shadow.future_events`, over the
  stream's events and the rows' own prices), against the row's price, in percent. BUY earns
  +return, SELL -return, HOLD has none. A later price that came more than ``max_lag`` (default
  the horizon) after ``t + horizon`` says nothing about the horizon (a telemetry stall): such a
  decision has no return, like one without a later price ("no price").
* without the model: for decisive rows also the return the decision without the model would
  have had (HOLD: 0) and the net effect, with minus without.
* size: when the table has a ``size``, ``quantity``, ``qty`` or ``notional`` column, its sum
  per group; otherwise the report says "not recorded".

Rows are read in pages (``PAGE_ROWS``) with a cursor: memory holds one page of payloads plus a
few numbers per row the model took part in or decided. All judgement is numpy per page; Python
runs per row only to fetch and hand the payload to the parser.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..activation.log import DEFAULT_LOG_PATH
from ..activation.since import ActivationStartError, activation_start
from ..cutover import parse_cutover, stream_id_key
from ..engine.role_proof import RoleProofError, validate_trade_table
from ..engine.trade_log import (
    TradeLogError,
    created_at_ms,
    credits_model,
    iso_ms,
    open_trade_log,
)
from ..names import is_model_name
from ..redis_client import DEFAULT_TIMEOUT_S
from ..site_defaults import DEFAULT_STREAM, DEFAULT_TRADE_LOG, DEFAULT_TRADE_TABLE
from ..telemetry.contract import ACTIONS, BUY, HOLD, SELL
from ..telemetry.events import EventWindow, WindowBuilder
from ..telemetry.stream import DEFAULT_PAGE_SIZE
from .compare import DEFAULT_HORIZON_S, _seconds, vote_without
from .reports import write_reports
from .run import RunError, _with_window
from .shadow import future_events

SIZE_COLUMNS = ("size", "quantity", "qty", "notional")
"""Columns of the trade log that say how much a decision traded, reported when present."""
PAGE_ROWS = 2000
"""Rows fetched and parsed at a time."""
MAX_EXAMPLES = 10
"""Malformed rows named in the report (all are counted)."""


class DamageError(Exception):
    """A damage report that cannot be made: a bad option, an unusable trade log."""


def check_table(table: object) -> str:
    """``table`` if it is a plain SQL identifier (it is put into the query), else raise."""
    try:
        return validate_trade_table(table)
    except RoleProofError as exc:
        raise DamageError(str(exc)) from None


def check_seconds(value: object, name: str = "horizon", zero: bool = False) -> float:
    """A finite number of seconds > 0 (>= 0 with ``zero``), as compare checks its own."""
    try:
        return _seconds(name, value, zero)
    except ValueError as exc:
        raise DamageError(str(exc)) from None


def window_ms(since: str, until: str | None) -> tuple[int, int | None]:
    """(start, end) in epoch ms: rows created after ``since`` (an ISO-8601 time with a zone or a
    stream id, as ``--after``) and before ``until`` (an ISO-8601 time with a zone)."""
    try:
        start = stream_id_key(parse_cutover(since))[0]
    except ValueError as exc:
        raise DamageError(f"bad since: {exc}") from None
    if until is None:
        return start, None
    try:
        end = stream_id_key(parse_cutover(until))[0]
    except ValueError as exc:
        raise DamageError(f"bad until: {exc}") from None
    if end <= start:
        raise DamageError(f"until {until} is not later than since {since}")
    return start, end


def size_columns(connection: sqlite3.Connection, table: str) -> list[str]:
    """The SIZE_COLUMNS the table has, in that order."""
    names = {
        str(row[1]).lower(): str(row[1])
        for row in connection.execute(f"PRAGMA table_info({table})")
    }
    return [names[name] for name in SIZE_COLUMNS if name in names]


@dataclass
class Decisions:
    """The rows the model took part in or decided, as columns (one entry per row)."""

    symbols: list[str] = field(default_factory=list)
    rows: int = 0
    malformed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    pages: dict[str, list[np.ndarray]] = field(default_factory=dict)
    sizes: list[str] = field(default_factory=list)
    _codes: dict[str, int] = field(default_factory=dict)

    def code_of(self, symbol: str) -> int:
        code = self._codes.get(symbol)
        if code is None:
            code = self._codes[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return code

    def codes(self, symbols: Iterable[str]) -> np.ndarray:
        """Global symbol codes of a window's symbol list (its index -> this list's index)."""
        return np.asarray([self.code_of(s) for s in symbols] or [0], dtype=np.int64)

    def keep(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.pages.setdefault(name, []).append(values)

    def column(self, name: str, dtype: Any) -> np.ndarray:
        parts = self.pages.get(name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def malformed_row(self, row_id: Any, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"id": row_id, "reason": reason})


def _text(value: Any) -> Any:
    """A TEXT value read as bytes (so that a payload that is not UTF-8 is a malformed row, not
    an error of the whole read) as text; other values as they are."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _size_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def _page(
    rows: list[tuple[Any, ...]],
    decisions: Decisions,
    model: str,
    weights: Mapping[str, float],
    bounds: tuple[int, int | None],
) -> None:
    """Parse one page of rows and keep those the model took part in or decided."""
    start, end = bounds
    entries = []
    meta = []
    for index, (row_id, created_at, model_source, payload, *sizes) in enumerate(rows):
        created_at = _text(created_at)
        ms = created_at_ms(created_at)
        if ms is None:
            decisions.rows += 1
            decisions.malformed_row(row_id, f"created_at {str(created_at)[:40]!r} is not a time")
            continue
        if ms <= start or (end is not None and ms >= end):
            continue
        decisions.rows += 1
        if payload is not None and not isinstance(payload, bytes):
            payload = str(payload).encode("utf-8", "surrogateescape")
        entries.append((f"{ms}-{index}", payload))
        credited = credits_model(_text(model_source), model)
        meta.append((row_id, credited, *map(_size_value, sizes)))
    if not entries:
        return
    builder = WindowBuilder()
    builder.add(entries)
    window = builder.build()
    bad = {item.stream_id: item.reason for item in window.malformed}
    valid = []
    for (sid, _payload), row in zip(entries, meta, strict=True):
        if sid in bad:
            decisions.malformed_row(row[0], bad[sid])
        else:
            valid.append(row)
    if not valid:
        return
    credited = np.fromiter((row[1] for row in valid), dtype=np.bool_, count=len(valid))
    columns = window.models.get(model)
    voted = (
        columns.active & ~columns.shadow
        if columns is not None
        else np.zeros(window.n, dtype=np.bool_)
    )
    without = vote_without(window, model, weights) if voted.any() else window.side
    decisive = voted & (window.side != without)
    kept = credited | decisive
    if not kept.any():
        return
    codes = decisions.codes(window.symbols)
    sizes = np.asarray([row[2:] for row in valid], dtype=np.float64)
    decisions.keep(
        symbol=codes[window.symbol[kept]],
        side=window.side[kept],
        without=without[kept],
        timestamp_ms=window.timestamp_ms[kept],
        price=window.price[kept],
        participated=credited[kept],
        decisive=decisive[kept],
        sizes=sizes[kept],
    )


def read_decisions(
    connection: sqlite3.Connection,
    table: str,
    model: str,
    weights: Mapping[str, float],
    bounds: tuple[int, int | None],
    page_rows: int = PAGE_ROWS,
) -> Decisions:
    """The rows of ``table`` created within ``bounds`` (epoch ms, exclusive) that ``model``
    took part in or decided, read ``page_rows`` at a time."""
    start, end = bounds
    decisions = Decisions(sizes=size_columns(connection, table))
    # The indexed created_at prefilter is to the second (text order of the trade log's
    # ISO-8601 times); the exact bounds are applied to the parsed times.
    selected = ", ".join(("id", "created_at", "model_source", "payload", *decisions.sizes))
    query = f"SELECT {selected} FROM {table} WHERE created_at >= ?"
    params: list[Any] = [iso_ms(start - start % 1000)[:19]]
    if end is not None:
        query += " AND created_at < ?"
        params.append(iso_ms(end - end % 1000 + 1000)[:19])
    # Payloads stay bytes: the telemetry parser's fast path takes the engine's compact JSON as
    # bytes, and invalid UTF-8 is then one malformed row instead of a failed read.
    connection.text_factory = bytes
    cursor = connection.execute(query, params)
    while rows := cursor.fetchmany(page_rows):
        _page(rows, decisions, model, weights, bounds)
    return decisions


@dataclass
class PricePath:
    """Price points of the symbols in time (the fields :func:`.shadow.future_events` reads)."""

    symbol: np.ndarray
    timestamp_ms: np.ndarray
    price: np.ndarray

    @property
    def n(self) -> int:
        return int(self.symbol.shape[0])


def signed_returns(
    decisions: Decisions, window: EventWindow | None, horizon_s: float, max_lag_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(return of the decision, return of the decision without the model), in percent, per
    kept row: NaN where there is no return (HOLD, or no price or no later price within the
    lag). A HOLD without the model returns 0 (no position)."""
    symbol = decisions.column("symbol", np.int64)
    stamp = decisions.column("timestamp_ms", np.int64)
    price = decisions.column("price", np.float64)
    kept = symbol.shape[0]
    parts = [(symbol, stamp, price)]
    if window is not None and window.n:
        codes = decisions.codes(window.symbols)
        parts.append((codes[window.symbol], window.timestamp_ms, window.price))
    path = PricePath(*(np.concatenate(columns) for columns in zip(*parts, strict=True)))
    horizon_ms = round(horizon_s * 1000.0)
    later = future_events(path, horizon_ms)[:kept]
    found = later >= 0
    lag_ms = np.where(found, path.timestamp_ms[later] - stamp - horizon_ms, 0)
    found &= lag_ms <= round(max_lag_s * 1000.0)
    move = np.full(kept, np.nan)
    move[found] = (path.price[later[found]] / price[found] - 1.0) * 100.0
    return _signed(decisions.column("side", np.int8), move), _signed(
        decisions.column("without", np.int8), move, hold=0.0
    )


def _signed(side: np.ndarray, move: np.ndarray, hold: float = math.nan) -> np.ndarray:
    signed = np.where(side == BUY, move, np.where(side == SELL, -move, hold))
    # HOLD's value is kept as given (0 for the counterfactual), also without a later price
    return np.where((side == HOLD) | ~np.isnan(move), signed, math.nan)


def _total(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def _group_stats(
    mask: np.ndarray,
    side: np.ndarray,
    ret: np.ndarray,
    sizes: np.ndarray,
    size_names: list[str],
    without: np.ndarray | None,
) -> dict[str, Any]:
    directional = mask & (side != HOLD)
    returned = directional & ~np.isnan(ret)
    total = float(ret[returned].sum())
    stats: dict[str, Any] = {
        "rows": int(mask.sum()),
        "buy": int((mask & (side == BUY)).sum()),
        "sell": int((mask & (side == SELL)).sum()),
        "hold": int((mask & (side == HOLD)).sum()),
        "with_return": int(returned.sum()),
        "no_price": int((directional & np.isnan(ret)).sum()),
        "return_pct_sum": _total(total) if returned.any() else None,
        "return_pct_mean": _total(total / returned.sum()) if returned.any() else None,
        "sizes": {
            name: _total(float(np.nansum(sizes[mask, i]))) for i, name in enumerate(size_names)
        }
        or "not recorded",
    }
    if without is not None:
        # the net effect is judged on the rows where both the decision and the one without
        # the model have a return (or are HOLD)
        both = mask & ~np.isnan(ret_or_hold(side, ret)) & ~np.isnan(without)
        with_sum = float(ret_or_hold(side, ret)[both].sum())
        without_sum = float(without[both].sum())
        compared = bool(both.any())
        stats.update(
            compared=int(both.sum()),
            with_model_pct_sum=_total(with_sum) if compared else None,
            without_model_pct_sum=_total(without_sum) if compared else None,
            net_pct_sum=_total(with_sum - without_sum) if compared else None,
        )
    return stats


def ret_or_hold(side: np.ndarray, ret: np.ndarray) -> np.ndarray:
    """The decision's return with a HOLD counted as 0 (no position)."""
    return np.where(side == HOLD, 0.0, ret)


def _view(
    decisions: Decisions, selected: np.ndarray, ret: np.ndarray, without: np.ndarray | None
) -> dict[str, Any]:
    symbol = decisions.column("symbol", np.int64)
    side = decisions.column("side", np.int8)
    sizes = decisions.column("sizes", np.float64).reshape(symbol.shape[0], len(decisions.sizes))
    view = _group_stats(selected, side, ret, sizes, decisions.sizes, without)
    groups = []
    keys = np.unique(symbol[selected] * 3 + side[selected])
    for key in keys.tolist():
        mask = selected & (symbol == key // 3) & (side == key % 3)
        groups.append(
            {
                "symbol": decisions.symbols[key // 3],
                "side": ACTIONS[key % 3],
                **_group_stats(mask, side, ret, sizes, decisions.sizes, without),
            }
        )
    view["groups"] = groups
    return view


def damage(
    decisions: Decisions,
    window: EventWindow | None,
    model: str,
    horizon_s: float = DEFAULT_HORIZON_S,
    max_lag_s: float | None = None,
) -> dict[str, Any]:
    """The damage report of ``model`` from its ``decisions`` (:func:`read_decisions`) and the
    stream's ``window`` (price points; None: only the rows' own prices), as a JSON-able dict.
    ``decided`` is False, with a ``reason``, when no decision of the model has a return yet:
    too few rows is never an error."""
    horizon_s = check_seconds(horizon_s)
    max_lag_s = horizon_s if max_lag_s is None else check_seconds(max_lag_s, "max_lag", True)
    ret, without = signed_returns(decisions, window, horizon_s, max_lag_s)
    participated = decisions.column("participated", np.bool_)
    decisive = decisions.column("decisive", np.bool_)
    result: dict[str, Any] = {
        "model": model,
        "horizon_s": horizon_s,
        "max_lag_s": max_lag_s,
        "rows": decisions.rows,
        "malformed_rows": decisions.malformed,
        "malformed_examples": decisions.examples,
        "stream_events": window.n if window is not None else 0,
        "size_columns": decisions.sizes,
        "participated": _view(decisions, participated, ret, None),
        "decisive": _view(decisions, decisive, ret, without),
    }
    with_return = result["participated"]["with_return"] + result["decisive"]["with_return"]
    result["decided"] = with_return > 0
    if not decisions.rows:
        result["reason"] = "no trade_intents rows in the window"
    elif not (participated.any() or decisive.any()):
        result["reason"] = f"{model} took part in no row and decided none"
    elif not with_return:
        result["reason"] = f"no decision of {model} has a later price over the horizon yet"
    else:
        result["reason"] = None
    return result


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers of a damage report a rollback record carries."""
    participated, decisive = result["participated"], result["decisive"]
    return {
        "model": result["model"],
        "since": result.get("since"),
        "until": result.get("until"),
        "horizon_s": result["horizon_s"],
        "rows": result["rows"],
        "malformed_rows": result["malformed_rows"],
        "participated": participated["rows"],
        "participated_return_pct_sum": participated["return_pct_sum"],
        "decisive": decisive["rows"],
        "decisive_return_pct_sum": decisive["return_pct_sum"],
        "decisive_net_pct_sum": decisive["net_pct_sum"],
        "decided": result["decided"],
    }


def validate_damage_args(model: object, weights: object, table: object) -> None:
    """Raise DamageError for a bad model name, weights or table name."""
    if not isinstance(model, str) or not is_model_name(model):
        raise DamageError(f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {model!r}")
    if not isinstance(weights, Mapping) or not weights:
        raise DamageError("baseline weights must be a mapping of model: weight")
    for name, weight in weights.items():
        ok = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not is_model_name(name) or not ok or not math.isfinite(weight) or weight < 0:
            raise DamageError(f"bad baseline weight {name!r}: {weight!r}")
    check_table(table)


def _check_trade_log(db_path: str, table: str) -> None:
    """DamageError unless the trade log opens read-only with its table: said before Redis is
    read."""
    try:
        open_trade_log(db_path, table).close()
    except TradeLogError as exc:
        raise DamageError(str(exc)) from None


def damage_from_log(
    db_path: str,
    model: str,
    weights: Mapping[str, float],
    since: str,
    *,
    until: str | None = None,
    window: EventWindow | None = None,
    table: str = DEFAULT_TRADE_TABLE,
    horizon_s: float = DEFAULT_HORIZON_S,
    max_lag_s: float | None = None,
    page_rows: int = PAGE_ROWS,
) -> dict[str, Any]:
    """Read the trade log at ``db_path`` (read-only) and report the damage (:func:`damage`);
    DamageError for bad options or an unusable trade log."""
    validate_damage_args(model, weights, table)
    horizon_s = check_seconds(horizon_s)
    bounds = window_ms(since, until)
    try:
        connection = open_trade_log(db_path, table)
    except TradeLogError as exc:
        raise DamageError(str(exc)) from None
    try:
        connection.execute(f"SELECT payload FROM {table} LIMIT 0")
        decisions = read_decisions(connection, table, model, weights, bounds, page_rows)
    except sqlite3.Error as exc:
        raise DamageError(f"trade log {db_path} unreadable: {exc}") from None
    except ValueError as exc:  # a voting model without a baseline weight
        raise DamageError(str(exc)) from None
    finally:
        connection.close()
    result = damage(decisions, window, model, horizon_s, max_lag_s)
    result.update(since=since, until=until, trade_log={"path": db_path, "table": table})
    return result


def run_damage(
    client_or_url: Any = None,
    stream: str = DEFAULT_STREAM,
    *,
    db_path: str = DEFAULT_TRADE_LOG,
    model: str,
    weights: Mapping[str, float],
    since: str,
    until: str | None = None,
    table: str = DEFAULT_TRADE_TABLE,
    horizon_s: float = DEFAULT_HORIZON_S,
    max_lag_s: float | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = DEFAULT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The damage report of ``model`` since ``since`` from the trade log and the stream's
    events after ``since`` (the price path, read as the gate reads its window); ``exit_code``
    0 when reported (decided or not), 2 with an ``error`` sentence when it cannot be."""
    try:
        validate_damage_args(model, weights, table)
        check_seconds(horizon_s)
        window_ms(since, until)
        _check_trade_log(db_path, table)
        read = _with_window(
            lambda events: {"window": events},
            client_or_url,
            stream,
            after=since,
            page_size=page_size,
            timeout=timeout,
            env=env,
        )
        result = damage_from_log(
            db_path,
            model,
            weights,
            since,
            until=until,
            window=read.pop("window"),
            table=table,
            horizon_s=horizon_s,
            max_lag_s=max_lag_s,
        )
    except (DamageError, RunError) as exc:
        return _failed(str(exc), model)
    result["source"] = read["source"]
    result["exit_code"] = 0
    return result


def _failed(reason: str, model: object) -> dict[str, Any]:
    named = model if isinstance(model, str) and is_model_name(model) else None
    return {"error": reason, "exit_code": 2, "model": named, "decided": False}


def report_damage(options: Mapping[str, Any], report_dir: str | None = None) -> dict[str, Any]:
    """The damage report as the damage_report module's ``options`` ask for it (``model``,
    ``since`` or ``since_activation`` with ``activation_log``, ``until``, ``db_path``,
    ``trade_table``, ``baseline``, ``horizon``, ``max_lag``, ``redis_url``, ``stream``),
    written as Markdown and JSON into ``report_dir`` (mode 0640) when given. Never raises for
    an operational error: the result then has ``error`` and ``exit_code`` 2."""
    model = options.get("model")
    table = options.get("trade_table")
    table = DEFAULT_TRADE_TABLE if table is None else table
    since = options.get("since")
    activation = None
    try:
        validate_damage_args(model, options.get("baseline"), table)
        if options.get("since_activation"):
            if since:
                raise DamageError("since and since_activation are mutually exclusive")
            log_path = options.get("activation_log") or DEFAULT_LOG_PATH
            try:
                since, record = activation_start(log_path, model)
            except ActivationStartError as exc:
                raise DamageError(str(exc)) from None
            activation = {"start": since, "log": log_path, "record": record}
        if not since:
            raise DamageError("give since or since_activation")
    except DamageError as exc:
        return _failed(str(exc), model)
    horizon = options.get("horizon")
    result = run_damage(
        options.get("redis_url"),
        options.get("stream") or DEFAULT_STREAM,
        db_path=options.get("db_path") or DEFAULT_TRADE_LOG,
        model=model,
        weights=options["baseline"],
        since=since,
        until=options.get("until") or None,
        table=table,
        horizon_s=DEFAULT_HORIZON_S if horizon is None else horizon,
        max_lag_s=options.get("max_lag"),
    )
    if activation is not None:
        result["activation"] = activation
    if report_dir and not result.get("error"):
        try:
            result["reports"] = write_reports(result, "damage", report_dir)
        except OSError as exc:
            result.update(error=f"cannot write the reports to {report_dir}: {exc}", exit_code=2)
    return result


def rollback_damage(
    model: str,
    until: str,
    *,
    log_path: str,
    baseline: Mapping[str, float],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """What a rollback attaches to its record: the damage of ``model`` from its newest
    activation in the activation log at ``log_path`` until ``until`` (the rolled-back engine's
    new start), written as Markdown and JSON into ``options["report_dir"]``. ``options`` are
    the engine_rollback module's ``damage`` suboptions (``db_path``, ``trade_table``,
    ``redis_url``, ``stream``, ``horizon``, ``max_lag``, ``report_dir``). Returns ``summary``
    (:func:`summary`) and ``reports`` (their paths); raises DamageError with the reason."""
    report_dir = options.get("report_dir")
    if not report_dir:
        raise DamageError("no report_dir to write the damage report to")
    result = report_damage(
        {
            **options,
            "model": model,
            "since": None,
            "since_activation": True,
            "activation_log": log_path,
            "until": until,
            "baseline": baseline,
        },
        report_dir,
    )
    if result.get("error"):
        raise DamageError(result["error"])
    return {"summary": summary(result), "reports": result["reports"]}
