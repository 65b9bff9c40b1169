"""Telemetry events: fail-closed parsing of stream entries into a columnar EventWindow.

The contract is DESIGN.md "Telemetry event". Every stream entry is either a valid event,
whose values land in numpy columns, or a :class:`Malformed` record naming its stream id and
the first reason found. Nothing in between: an event is committed to the columns only after
every check passed. Checks, in order (the reason texts are stable, tests rely on them):

* stream id ``<ms>-<seq>`` (ASCII digits): ``invalid stream id '...'``
* payload present, UTF-8, one JSON value, an object: ``missing field payload``,
  ``payload is not valid UTF-8``, ``unparsable JSON``, ``payload is not a JSON object``
* ``side`` one of BUY/SELL/HOLD: ``missing field side``, ``unknown side 'X' (not BUY, ...)``
* ``confidence`` a finite number in [0, 1], not a bool: ``confidence 1.2 not in [0, 1]``,
  ``confidence nan is not finite``, ``confidence True is not a number``
* ``consensus_count``, ``total_models`` ints >= 0: ``consensus_count -1 is not an integer >= 0``
* ``timestamp`` ISO-8601 with a zone (``Z`` or an offset): ``timestamp 'x' is not ISO-8601 ...``
* ``symbol`` a non-empty string: ``symbol '' is not a non-empty string``
* ``price`` (optional) a finite number > 0: ``price nan is not a finite number > 0``
* ``model_breakdown`` an object of ``name -> entry``; names ``^[a-z][a-z0-9_]{0,31}$``; each
  entry an object with a string ``model``, optional boolean ``shadow``; either
  ``{"inactive": true, "inactive_reason": "<non-empty>"}`` without action/confidence, or an
  ``action`` in BUY/SELL/HOLD with a valid ``confidence`` (reasons are prefixed ``model <name>:``);
  a capped entry's ``raw_confidence`` is checked like a confidence and is the confidence kept
  (``capped``), its ``confidence_cap`` (optional) must be in (0, 1]
* ``total_models`` == active non-shadow models and ``consensus_count`` == those agreeing with
  ``side``; when the numbers only add up with shadow models counted in:
  ``shadow model counted as voter (<names>): ...`` (see :data:`VOTER_REASON`)
* ``features`` (optional) an object of numbers (NaN and Inf are kept: feature sanity judges
  them; a bare ``NaN`` token is fine here), names ``^[A-Za-z0-9_.:-]{1,64}$``

Limits that keep memory bounded on hostile input: at most :data:`MAX_MODELS` distinct model
names and :data:`MAX_FEATURES` distinct feature names per window (an event that would add
one more is malformed).

Decoding uses the standard library's C JSON scanner (``json``). ``ujson`` is NOT used even
where installed: Debian's python3-ujson 5.7 accepts raw control characters in strings and
leading zeros (``01``) that ``json`` rejects, so the two would not be fail-closed alike.
Payloads in the engine's own compact layout take a faster, equivalent route: see
:class:`.fastpath.FastPath`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .columns import MERGE_PAGES, MODEL_FIELDS, Chunk, merge_chunks, page_chunk
from .contract import (
    ACTION_CODES,
    ACTIONS,
    BUY,
    HOLD,
    MAX_FEATURES,
    MAX_MODELS,
    NO_ACTION,
    SELL,
    VOTER_REASON,
    Malformed,
)
from .fastpath import FastPath
from .payload import (
    BadEntry,
    Timestamps,
    checked_features,
    decode_payload,
    model_entries,
    short_repr,
    stream_id_ms,
    top_fields,
)

__all__ = [
    "ACTIONS",
    "ACTION_CODES",
    "BUY",
    "HOLD",
    "MAX_FEATURES",
    "MAX_MODELS",
    "NO_ACTION",
    "SELL",
    "VOTER_REASON",
    "EventWindow",
    "Malformed",
    "ModelColumns",
    "WindowBuilder",
    "parse_window",
]


@dataclass
class ModelColumns:
    """One model's view of the window: arrays of the window's length ``n``."""

    name: str
    present: np.ndarray
    """bool: the model is in the event's model_breakdown."""
    inactive: np.ndarray
    """bool: reported ``{"inactive": true, "inactive_reason": ...}``."""
    shadow: np.ndarray
    """bool: tagged ``"shadow": true``."""
    action: np.ndarray
    """int8 action code (0 BUY, 1 SELL, 2 HOLD), NO_ACTION when absent or inactive."""
    confidence: np.ndarray
    """float64, NaN when absent or inactive; the entry's ``raw_confidence`` where it has one
    (a confidence the engine capped): the rules judge what the model said."""
    capped: np.ndarray | None = None
    """bool: the event carried ``raw_confidence`` (its published confidence was under a cap);
    all False when not given."""

    def __post_init__(self) -> None:
        if self.capped is None:
            self.capped = np.zeros(self.present.shape[0], dtype=np.bool_)

    @property
    def active(self) -> np.ndarray:
        """bool: the model produced an action and a confidence in that event."""
        return self.present & ~self.inactive

    @property
    def capped_events(self) -> int:
        """How many of the model's predictions were published under a confidence cap (and are
        judged on their raw confidence)."""
        return int(np.count_nonzero(self.capped & self.active))


@dataclass
class EventWindow:
    """The valid events of a window as columns (oldest first), plus its malformed entries."""

    side: np.ndarray
    confidence: np.ndarray
    consensus_count: np.ndarray
    total_models: np.ndarray
    timestamp_ms: np.ndarray
    stream_ms: np.ndarray
    symbol: np.ndarray
    symbols: list[str]
    price: np.ndarray
    payload_bytes: np.ndarray
    models: dict[str, ModelColumns]
    features: dict[str, np.ndarray]
    malformed: list[Malformed]
    first_id: str | None = None
    last_id: str | None = None
    feature_present: dict[str, np.ndarray] = field(default_factory=dict)
    """bool per feature name: the event carried that feature (tells NaN from absent)."""

    @property
    def n(self) -> int:
        """Number of valid events."""
        return int(self.side.shape[0])

    @property
    def total(self) -> int:
        """Number of stream entries read: valid plus malformed."""
        return self.n + len(self.malformed)


def empty_window() -> EventWindow:
    """A window without any entry."""
    return WindowBuilder().build()


class _PageLists:
    """One page's flat lists with a fixed stride, sliced into columns by
    :func:`.columns.page_chunk`: per valid event the 9 values of COLUMN_TYPES; per model entry
    (name, code, confidence, inactive, shadow, capped); per feature its name and its value.
    Only atomic values are kept, so the page adds nothing for the garbage collector to walk."""

    def __init__(self) -> None:
        self.rows: list = []
        self.model_flat: list = []
        self.model_counts: list[int] = []
        self.feature_keys: list[str] = []
        self.feature_values: list[float] = []
        self.feature_counts: list[int] = []
        self.malformed: list[Malformed] = []

    def commit_event(
        self, row: tuple, models: list, model_count: int, fnames: Iterable, fvalues: Iterable
    ) -> None:
        """Append one valid event: its row, its model entries and its features."""
        self.rows.extend(row)
        self.model_flat.extend(models)
        self.model_counts.append(model_count)
        before = len(self.feature_keys)
        self.feature_keys.extend(fnames)
        self.feature_values.extend(fvalues)
        self.feature_counts.append(len(self.feature_keys) - before)

    def chunk(self, first_id: str | None, last_id: str | None) -> Chunk:
        return page_chunk(
            self.rows,
            (self.model_flat, self.model_counts),
            (self.feature_keys, self.feature_values, self.feature_counts),
            self.malformed,
            first_id,
            last_id,
        )


class WindowBuilder:
    """Builds an EventWindow page by page; between pages everything is numpy columns.

    ``add`` takes ``(stream id, payload)`` pairs as redis returns them (bytes or str; payload
    None when the entry has no ``payload`` field). With ``newest_first=True`` every page is
    given newest first (XREVRANGE order) and each page is older than the previous one; the
    window is still built oldest first. ``fast=False`` parses every entry with the general
    parser only (see :class:`FastPath`; the tests compare both).
    """

    def __init__(self, newest_first: bool = False, fast: bool = True) -> None:
        self.newest_first = newest_first
        self._fast = FastPath() if fast else None
        self._chunks: list[Chunk] = []
        self._merged = 0  # chunks before this index are merged groups
        self._symbols: list[str] = []
        self._symbol_codes: dict[str, int] = {}
        self._model_names: set[str] = set()
        self._feature_names: set[str] = set()
        self._scan = json.JSONDecoder().scan_once
        self._timestamps = Timestamps()

    def add(self, entries: Iterable[tuple[bytes | str, bytes | str | None]]) -> None:
        """Parse one page of entries and store it as numpy columns.

        One pass of Python over the entries: each is checked completely (the fast path, else
        the general parser's steps in :mod:`.payload`) and only then committed, appending its
        values to flat per-page lists (atomic values only); at the end of the page those lists
        become numpy arrays by strided slicing (no second Python loop), and every MERGE_PAGES
        pages the arrays are merged into larger ones.
        """
        if self.newest_first:
            entries = list(entries)
            entries.reverse()
        page = _PageLists()
        # Bound methods and locals: this loop runs once per event of the window.
        commit_event = page.commit_event
        malformed = page.malformed
        symbol_code = self._symbol_code
        model_names = self._model_names
        feature_names = self._feature_names
        scan = self._scan
        timestamps = self._timestamps
        fast = self._fast
        fast_parse = fast.parse if fast is not None else None
        first_id = sid = None
        for raw_id, raw in entries:
            try:
                if type(raw_id) is bytes:
                    sid = raw_id.decode("ascii", "backslashreplace")
                elif type(raw_id) is str:
                    sid = raw_id
                else:
                    sid = short_repr(raw_id)
                    raise BadEntry(f"invalid stream id {sid}")
                if first_id is None:
                    first_id = sid
                ms = stream_id_ms(sid)
                if fast_parse is not None and type(raw) is bytes:
                    values = fast_parse(raw)
                    if values is not None:
                        head, symbol, price, parsed, fnames, fvalues = values
                        row = (*head, ms, symbol_code(symbol), price, len(raw))
                        commit_event(row, parsed, len(parsed) // MODEL_FIELDS, fnames, fvalues)
                        continue
                event, nbytes = decode_payload(raw, scan)
                top = top_fields(event, timestamps)
                parsed, count = model_entries(event, top, model_names)
                features = checked_features(event, feature_names)
            except BadEntry as bad:
                malformed.append(Malformed(sid if sid is not None else "?", bad.reason, bad.models))
                continue
            _side, side_code, conf, consensus, total, ts_ms, symbol, price = top
            row = (side_code, conf, consensus, total, ts_ms, ms, symbol_code(symbol), price, nbytes)
            commit_event(row, parsed, count, features, features.values())
            if fast is not None:
                fast.learn(event)
        self._chunks.append(page.chunk(first_id, sid))
        if len(self._chunks) - self._merged >= MERGE_PAGES:
            self._merge_recent()

    def _symbol_code(self, symbol: str) -> int:
        """The symbol's index in the window's symbol list, added when new."""
        code = self._symbol_codes.get(symbol)
        if code is None:
            code = self._symbol_codes[symbol] = len(self._symbols)
            self._symbols.append(symbol)
        return code

    # -- assembly ---------------------------------------------------------------------------
    def _merge_recent(self) -> None:
        """Merge the pages added since the last merge into one chunk of large arrays.

        Small per-page arrays live on the malloc heap and are not given back to the system
        when freed; merging every MERGE_PAGES pages keeps that heap at a few pages' worth
        (reused by the next pages) while the window grows in large, separately mapped
        arrays, so the peak while building stays close to one copy of the window.
        """
        start = self._merged
        recent = self._chunks[start:]
        if len(recent) < 2:
            self._merged = len(self._chunks)
            return
        in_time_order = recent[::-1] if self.newest_first else recent
        self._chunks[start:] = [merge_chunks(in_time_order)]
        self._merged = len(self._chunks)

    def build(self) -> EventWindow:
        """The window so far, oldest first.

        The pages are merged column by column, each page's arrays released as soon as they
        are merged, so the peak stays near one copy of the window; the builder keeps the
        result as its only page and stays usable for more ``add`` calls.
        """
        chunks = self._chunks[::-1] if self.newest_first else list(self._chunks)
        self._chunks = []
        merged = merge_chunks(chunks)
        del chunks
        self._chunks = [merged]
        self._merged = 1
        return EventWindow(
            side=merged.columns["side"],
            confidence=merged.columns["confidence"],
            consensus_count=merged.columns["consensus_count"],
            total_models=merged.columns["total_models"],
            timestamp_ms=merged.columns["timestamp_ms"],
            stream_ms=merged.columns["stream_ms"],
            symbol=merged.columns["symbol"],
            symbols=list(self._symbols),
            price=merged.columns["price"],
            payload_bytes=merged.columns["payload_bytes"],
            models={name: ModelColumns(name, *parts) for name, parts in merged.models.items()},
            features={name: parts[0] for name, parts in merged.features.items()},
            malformed=list(merged.malformed),
            first_id=merged.first_id,
            last_id=merged.last_id,
            feature_present={name: parts[1] for name, parts in merged.features.items()},
        )


def parse_window(
    entries: Iterable[tuple[bytes | str, bytes | str | None]],
) -> EventWindow:
    """Parse ``(stream id, payload)`` pairs (oldest first) into an EventWindow."""
    builder = WindowBuilder()
    builder.add(entries)
    return builder.build()
