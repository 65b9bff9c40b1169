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
  ``action`` in BUY/SELL/HOLD with a valid ``confidence`` (reasons are prefixed ``model <name>:``)
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
:class:`_FastPath`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..names import is_model_name

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

ACTIONS = ("BUY", "SELL", "HOLD")
"""Action names; their index is the action code stored in the columns."""
BUY, SELL, HOLD = 0, 1, 2
NO_ACTION = -1
"""Action code where a model is absent from an event or reported inactive."""
ACTION_CODES = {name: code for code, name in enumerate(ACTIONS)}

MAX_MODELS = 64
"""Distinct model names accepted in one window."""
MAX_FEATURES = 256
"""Distinct feature names accepted in one window."""
VOTER_REASON = "shadow model counted as voter"
"""Prefix of the malformed reason for events whose consensus_count/total_models include a
shadow model; the shadow report turns those into a hard blocker."""

# Applied with fullmatch: a "$" anchor would let a trailing newline through.
FEATURE_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

_MISSING = object()
_NAN = math.nan
_MAX_MS_DIGITS = 18  # stream ids hold unsigned 64-bit ms; more than int64 is not a real id
_REPR_LIMIT = 40


@dataclass(frozen=True, slots=True)
class Malformed:
    """One stream entry that is not a valid event, and the first reason found."""

    stream_id: str
    reason: str
    models: tuple[str, ...] = ()
    """Models the reason is about (set for :data:`VOTER_REASON`: the shadow models)."""


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
    """float64, NaN when absent or inactive."""

    @property
    def active(self) -> np.ndarray:
        """bool: the model produced an action and a confidence in that event."""
        return self.present & ~self.inactive


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


class _Bad(Exception):
    """Internal: the entry is malformed for ``reason``."""

    def __init__(self, reason: str, models: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.models = models


def _short(value: object) -> str:
    """repr of a value, cut to keep reasons short (and free of huge attacker strings)."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _confidence_problem(where: str, value: object) -> str:
    if value is _MISSING:
        return f"missing field {where}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{where} {_short(value)} is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} {_short(value)} is not finite"
    return f"{where} {_short(value)} not in [0, 1]"


def _action_problem(where: str, value: object) -> str:
    if value is _MISSING:
        return f"missing field {where}"
    return f"unknown {where} {_short(value)} (not BUY, SELL or HOLD)"


def _count_problem(where: str, value: object) -> str:
    if value is _MISSING:
        return f"missing field {where}"
    return f"{where} {_short(value)} is not an integer >= 0"


def _epoch_seconds(text: str) -> float:
    """Seconds since the epoch of an aware ISO-8601 time; ValueError otherwise."""
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("no time zone")
    return moment.timestamp()


def _finite_positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number > 0 else None


@dataclass
class _Chunk:
    """One page as numpy arrays (dense, page length), models and features included."""

    length: int
    columns: dict[str, np.ndarray]
    models: dict[str, tuple[np.ndarray, ...]]  # present, inactive, shadow, action, confidence
    features: dict[str, tuple[np.ndarray, np.ndarray]]  # values, present
    malformed: list[Malformed]
    first_id: str | None
    last_id: str | None


# The per-event tuple committed by the parser, in this order.
_COLUMN_TYPES = {
    "side": np.int8,
    "confidence": np.float64,
    "consensus_count": np.int16,
    "total_models": np.int16,
    "timestamp_ms": np.int64,
    "stream_ms": np.int64,
    "symbol": np.int32,
    "price": np.float64,
    "payload_bytes": np.int32,
}
_INT16_MAX = 32767
_INT32_MAX = 2**31 - 1


# -- fast path for the engine's canonical layout ---------------------------------------------
# Decoding a payload into dicts and checking them costs most of the gate's time on large
# windows. Nearly every event is written by the engine as compact JSON in one fixed layout,
# so a regular expression built for that layout can take the values straight from the bytes.

_STRING = rb"[\x20\x21\x23-\x5b\x5d-\x7e]"  # printable ASCII but '"' and '\': no escapes
# JSON numbers (no leading zeros, no '+'), at most 300 integer digits so that float() of the
# text is finite exactly where json's int -> float is (huge integers go to the slow path).
_UNSIGNED = rb"(?:0|[1-9][0-9]{0,299})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
# A feature may be negative (but not the integer -0: json makes it 0, float() -0.0), NaN or
# +-Infinity, as json's defaults decode them.
_FEATURE = rb"((?!-0[,}])-?" + _UNSIGNED + rb"|NaN|-?Infinity)"
_TOP_KEYS = ("symbol", "side", "confidence", "consensus_count", "total_models", "timestamp")
# Bounds on hostile input: expressions built per window (the largest layout, 64 models and
# 256 features, compiles in ~50 ms) and cached count/action combinations per layout.
_MAX_LAYOUTS = 8
_MAX_PLANS = 4096
# A confidence in [0, 1] (exponent forms go to the slow path).
_UNIT = rb"(?:0(?:\.[0-9]+)?|1(?:\.0+)?)"
_ACTION_BYTES = {name.encode(): code for name, code in ACTION_CODES.items()}


class _FastPath:
    """Regular expressions that parse payloads in the engine's canonical layout.

    The engine writes ``json.dumps(payload, separators=(",", ":"))`` with the keys in the
    order of DESIGN.md "Telemetry event": symbol, side, confidence, price (optional),
    consensus_count, total_models, timestamp, model_breakdown (each entry ``action,
    confidence`` or ``inactive, inactive_reason``, then ``model`` and optionally
    ``"shadow":true``) and features (optional). A *layout* is the ordered model names and
    feature names; its expression is built from the first event of that layout that the
    general parser accepted (so the names are already validated and counted against the
    window's limits). :meth:`parse` returns the event's values only when the payload matches
    that expression exactly AND passes every check of the general parser, with the values
    that parser would produce; for anything else it returns None and the entry goes through
    the general parser, which alone produces malformed reasons. Strings in the fast layout
    are printable ASCII without escapes, and the timestamp is ``YYYY-MM-DDTHH:MM:SS.mmmZ``.
    """

    def __init__(self) -> None:
        self._layouts: dict[tuple, tuple] = {}  # layout -> (fullmatch, model names, features)
        self._match: Any = None
        self._models: tuple[str, ...] = ()
        self._features: tuple[str, ...] = ()
        self._plans: dict[tuple, tuple | bool] = {}
        self._ts_prefix = b""
        self._ts_epoch_ms = 0

    def learn(self, event: dict) -> None:
        """Use (building it at most once) the expression of an accepted event's layout."""
        breakdown = event["model_breakdown"]
        features = event.get("features")
        layout = (tuple(breakdown), None if features is None else tuple(features))
        known = self._layouts.get(layout)
        if known is None:
            keys = [key for key in event if key not in ("price", "features")]
            if keys != [*_TOP_KEYS, "model_breakdown"] or len(self._layouts) >= _MAX_LAYOUTS:
                return
            known = (_layout_re(*layout).fullmatch, layout[0], layout[1] or ())
            self._layouts[layout] = known
        if known[1:] != (self._models, self._features):
            self._plans.clear()
        self._match, self._models, self._features = known

    def parse(self, raw: bytes) -> tuple | None:
        """((side code, confidence, consensus, total, timestamp ms), symbol, price, model
        values as WindowBuilder flattens them, feature names, feature values) or None."""
        found = self._match(raw) if self._match is not None else None
        if found is None:
            return None
        groups = found.groups()
        end = len(groups) - len(self._features)
        # side, counts, actions and shadow flags decide the model values but confidences
        key = groups[1:2] + groups[4:6] + groups[8:end:3] + groups[10:end:3]
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(key)
            if len(self._plans) < _MAX_PLANS:
                self._plans[key] = plan
        if plan is False:
            return None
        side_code, consensus, total, template, all_active = plan
        parsed = template.copy()
        if all_active:
            parsed[2::5] = map(float, groups[9:end:3])
        else:
            parsed[2::5] = [_NAN if text is None else float(text) for text in groups[9:end:3]]
        if groups[3] is None:
            price = _NAN
        else:
            price = float(groups[3])
            if not 0.0 < price < math.inf:
                return None
        if groups[6] != self._ts_prefix:
            try:
                seconds = _epoch_seconds(groups[6].decode() + "+00:00")
            except (ValueError, OverflowError):
                return None
            self._ts_prefix = groups[6]
            self._ts_epoch_ms = int(seconds) * 1000
        return (
            (side_code, float(groups[2]), consensus, total, self._ts_epoch_ms + int(groups[7])),
            groups[0].decode(),
            price,
            parsed,
            self._features,
            list(map(float, groups[end:])),
        )

    def _plan(self, key: tuple) -> tuple | bool:
        """For a key of :meth:`parse`: side code, counts, the model values with confidence
        slots and whether every model is active; False when the counts do not add up."""
        count = len(self._models)
        side_code = _ACTION_BYTES[key[0]]
        consensus, total = int(key[1]), int(key[2])
        voting = agreeing = 0
        template: list = []
        for name, action, shadow in zip(
            self._models, key[3 : 3 + count], key[3 + count :], strict=True
        ):
            code = NO_ACTION if action is None else _ACTION_BYTES[action]
            template += (name, code, _NAN, action is None, shadow is not None)
            if action is not None and shadow is None:
                voting += 1
                agreeing += code == side_code
        if total != voting or consensus != agreeing:
            return False
        return side_code, consensus, total, template, None not in key[3 : 3 + count]


def _layout_re(models: tuple[str, ...], features: tuple[str, ...] | None) -> re.Pattern[bytes]:
    """The expression of one layout (see _FastPath); names are validated, escaping is moot."""
    entries = [
        b'"%s":\\{(?:"action":"(BUY|SELL|HOLD)","confidence":(%s)'
        b'|"inactive":true,"inactive_reason":"%s+"),"model":"%s*"(,"shadow":true)?\\}'
        % (re.escape(name).encode(), _UNIT, _STRING, _STRING)
        for name in models
    ]
    pattern = (
        b'\\{"symbol":"(%s+)","side":"(BUY|SELL|HOLD)","confidence":(%s)(?:,"price":(%s))?'
        b',"consensus_count":(0|[1-9][0-9]{0,3}),"total_models":(0|[1-9][0-9]{0,3})'
        b',"timestamp":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\\.([0-9]{3})Z"'
        b',"model_breakdown":\\{%s\\}' % (_STRING, _UNIT, _UNSIGNED, b",".join(entries))
    )
    if features is not None:
        items = [b'"%s":%s' % (re.escape(name).encode(), _FEATURE) for name in features]
        pattern += b',"features":\\{%s\\}' % b",".join(items)
    return re.compile(pattern + b"\\}")


class WindowBuilder:
    """Builds an EventWindow page by page; between pages everything is numpy columns.

    ``add`` takes ``(stream id, payload)`` pairs as redis returns them (bytes or str; payload
    None when the entry has no ``payload`` field). With ``newest_first=True`` every page is
    given newest first (XREVRANGE order) and each page is older than the previous one; the
    window is still built oldest first. ``fast=False`` parses every entry with the general
    parser only (see :class:`_FastPath`; the tests compare both).
    """

    def __init__(self, newest_first: bool = False, fast: bool = True) -> None:
        self.newest_first = newest_first
        self._fast = _FastPath() if fast else None
        self._chunks: list[_Chunk] = []
        self._merged = 0  # chunks before this index are merged groups
        self._symbols: list[str] = []
        self._symbol_codes: dict[str, int] = {}
        self._model_names: set[str] = set()
        self._feature_names: set[str] = set()
        self._scan = json.JSONDecoder().scan_once
        self._ts_prefix: str | None = None
        self._ts_epoch_ms = 0

    def add(self, entries: Iterable[tuple[bytes | str, bytes | str | None]]) -> None:
        """Parse one page of entries and store it as numpy columns.

        One pass of Python over the entries: each is decoded, checked completely and only
        then committed, appending its values to flat per-page lists (atomic values only);
        at the end of the page those lists become numpy arrays by strided slicing (no second
        Python loop), and every MERGE_PAGES pages the arrays are merged into larger ones.
        """
        if self.newest_first:
            entries = list(entries)
            entries.reverse()
        scan = self._scan
        loads = json.loads
        codes = ACTION_CODES
        model_names = self._model_names
        feature_names = self._feature_names
        symbol_codes = self._symbol_codes
        symbols = self._symbols
        # Flat lists with a fixed stride, sliced into columns by _chunk: per valid event the
        # 9 values of _COLUMN_TYPES; per model entry (name, code, confidence, inactive,
        # shadow); per feature its name and its value. Only atomic values are kept, so the
        # page adds nothing for the garbage collector to walk.
        rows: list = []
        commit = rows.extend
        model_flat: list = []
        commit_models = model_flat.extend
        model_counts: list[int] = []
        commit_model_count = model_counts.append
        feature_keys: list[str] = []
        commit_feature_keys = feature_keys.extend
        feature_values: list[float] = []
        commit_feature_values = feature_values.extend
        feature_counts: list[int] = []
        commit_feature_count = feature_counts.append
        malformed: list[Malformed] = []
        ts_prefix = self._ts_prefix
        ts_epoch_ms = self._ts_epoch_ms
        first_id = sid = None
        no_features: dict = {}
        fast = self._fast
        fast_parse = fast.parse if fast is not None else None
        for raw_id, raw in entries:
            try:
                # stream id "<ms>-<seq>"
                if type(raw_id) is bytes:
                    sid = raw_id.decode("ascii", "backslashreplace")
                elif type(raw_id) is str:
                    sid = raw_id
                else:
                    sid = _short(raw_id)
                    raise _Bad(f"invalid stream id {sid}")
                if first_id is None:
                    first_id = sid
                ms, dash, seq = sid.partition("-")
                if not (
                    dash
                    and ms.isdigit()
                    and seq.isdigit()
                    and sid.isascii()
                    and len(ms) <= _MAX_MS_DIGITS
                ):
                    raise _Bad(f"invalid stream id {_short(sid)}")

                if fast_parse is not None and type(raw) is bytes:
                    values = fast_parse(raw)
                    if values is not None:
                        head, symbol, price, parsed, fnames, fvalues = values
                        code = symbol_codes.get(symbol)
                        if code is None:
                            code = symbol_codes[symbol] = len(symbols)
                            symbols.append(symbol)
                        commit((*head, int(ms), code, price, len(raw)))
                        commit_models(parsed)
                        commit_model_count(len(parsed) // 5)
                        commit_feature_keys(fnames)
                        commit_feature_values(fvalues)
                        commit_feature_count(len(fnames))
                        continue

                # payload -> dict
                if type(raw) is bytes:
                    nbytes = len(raw)
                    try:
                        text = raw.decode()
                    except UnicodeDecodeError:
                        raise _Bad("payload is not valid UTF-8") from None
                elif type(raw) is str:
                    text = raw
                    nbytes = len(raw) if raw.isascii() else len(raw.encode("utf-8", "replace"))
                elif raw is None:
                    raise _Bad("missing field payload")
                else:
                    raise _Bad("payload is not bytes or text")
                try:
                    event, end = scan(text, 0)
                    if end != len(text):
                        raise ValueError(end)
                except Exception:  # StopIteration, JSONDecodeError, RecursionError, ...
                    try:
                        event = loads(text)  # the same decoder; allows surrounding blanks
                    except Exception:
                        raise _Bad("unparsable JSON") from None
                if type(event) is not dict:
                    raise _Bad("payload is not a JSON object")

                # top-level fields
                side = event.get("side", _MISSING)
                side_code = codes.get(side) if type(side) is str else None
                if side_code is None:
                    raise _Bad(_action_problem("side", side))
                conf = event.get("confidence", _MISSING)
                if not ((type(conf) is float or type(conf) is int) and 0.0 <= conf <= 1.0):
                    raise _Bad(_confidence_problem("confidence", conf))
                consensus = event.get("consensus_count", _MISSING)
                if not (type(consensus) is int and consensus >= 0):
                    raise _Bad(_count_problem("consensus_count", consensus))
                total = event.get("total_models", _MISSING)
                if not (type(total) is int and total >= 0):
                    raise _Bad(_count_problem("total_models", total))
                stamp = event.get("timestamp", _MISSING)
                if type(stamp) is not str:
                    if stamp is _MISSING:
                        raise _Bad("missing field timestamp")
                    raise _Bad(f"timestamp {_short(stamp)} is not a string")
                # fast path for the canonical "YYYY-MM-DDTHH:MM:SS.mmmZ": the seconds part is
                # parsed once per distinct second
                if (
                    len(stamp) == 24
                    and stamp[23] == "Z"
                    and stamp[19] == "."
                    and stamp[20:23].isdigit()
                    and stamp.isascii()
                ):
                    if stamp[:19] != ts_prefix:
                        try:
                            seconds = _epoch_seconds(stamp[:19] + "+00:00")
                        except (ValueError, OverflowError):
                            raise _Bad(
                                f"timestamp {_short(stamp)} is not ISO-8601 with a time zone"
                            ) from None
                        ts_prefix = stamp[:19]
                        ts_epoch_ms = int(seconds) * 1000
                    ts_ms = ts_epoch_ms + int(stamp[20:23])
                else:
                    try:
                        ts_ms = math.floor(_epoch_seconds(stamp) * 1000.0 + 0.5)
                    except (ValueError, OverflowError):
                        raise _Bad(
                            f"timestamp {_short(stamp)} is not ISO-8601 with a time zone"
                        ) from None
                symbol = event.get("symbol", _MISSING)
                if type(symbol) is not str or not symbol:
                    if symbol is _MISSING:
                        raise _Bad("missing field symbol")
                    raise _Bad(f"symbol {_short(symbol)} is not a non-empty string")
                price = event.get("price", _NAN)
                if type(price) is not float or not (0.0 < price < math.inf):
                    if "price" not in event:
                        price = _NAN
                    else:
                        price = _finite_positive(price)
                        if price is None:
                            raise _Bad(f"price {_short(event['price'])} is not a finite number > 0")

                # model_breakdown
                breakdown = event.get("model_breakdown", _MISSING)
                if type(breakdown) is not dict:
                    if breakdown is _MISSING:
                        raise _Bad("missing field model_breakdown")
                    raise _Bad("model_breakdown is not an object")
                voting = agreeing = shadow_agreeing = 0
                shadows: list[str] = []
                parsed = []
                for name, entry in breakdown.items():
                    if name not in model_names:
                        if not is_model_name(name):
                            raise _Bad(f"invalid model name {_short(name)}")
                        if len(model_names) >= MAX_MODELS:
                            raise _Bad(f"more than {MAX_MODELS} distinct models in the window")
                        model_names.add(name)
                    if type(entry) is not dict:
                        raise _Bad(f"model {name}: entry is not an object")
                    tag = entry.get("model", _MISSING)
                    if type(tag) is not str:
                        if tag is _MISSING:
                            raise _Bad(f"model {name}: missing field model")
                        raise _Bad(f"model {name}: model {_short(tag)} is not a string")
                    shadow = entry.get("shadow", False)
                    if shadow is not False and shadow is not True:
                        raise _Bad(f"model {name}: shadow {_short(shadow)} is not a boolean")
                    inactive = entry.get("inactive", False)
                    if inactive is True:
                        reason = entry.get("inactive_reason")
                        if type(reason) is not str or not reason:
                            raise _Bad(f"model {name}: inactive without inactive_reason")
                        if "action" in entry or "confidence" in entry:
                            raise _Bad(f"model {name}: inactive with action or confidence")
                        parsed += (name, NO_ACTION, _NAN, True, shadow)
                        if shadow:
                            shadows.append(name)
                        continue
                    if inactive is not False:
                        raise _Bad(f"model {name}: inactive {_short(inactive)} is not a boolean")
                    action = entry.get("action", _MISSING)
                    code = codes.get(action) if type(action) is str else None
                    if code is None:
                        raise _Bad(f"model {name}: " + _action_problem("action", action))
                    mconf = entry.get("confidence", _MISSING)
                    if not ((type(mconf) is float or type(mconf) is int) and 0.0 <= mconf <= 1.0):
                        raise _Bad(f"model {name}: " + _confidence_problem("confidence", mconf))
                    parsed += (name, code, mconf, False, shadow)
                    if shadow:
                        shadows.append(name)
                        shadow_agreeing += code == side_code
                    else:
                        voting += 1
                        agreeing += code == side_code
                if total != voting or consensus != agreeing:
                    raise _Bad(
                        *_count_mismatch(
                            side, total, consensus, voting, agreeing, shadows, shadow_agreeing
                        )
                    )
                if total > _INT16_MAX:
                    raise _Bad(f"total_models {total} is too large")

                # features
                features = event.get("features", no_features)
                if type(features) is not dict:
                    raise _Bad("features is not an object")
                for fname, value in features.items():
                    if type(value) is not float:
                        if type(value) is not int:
                            raise _Bad(f"feature {_short(fname)}: {_short(value)} is not a number")
                        try:
                            float(value)
                        except OverflowError:
                            raise _Bad(
                                f"feature {_short(fname)}: {_short(value)} is too large"
                            ) from None
                    if fname not in feature_names:
                        if not FEATURE_NAME_RE.fullmatch(fname):
                            raise _Bad(f"invalid feature name {_short(fname)}")
                        if len(feature_names) >= MAX_FEATURES:
                            raise _Bad(f"more than {MAX_FEATURES} distinct features in the window")
                        feature_names.add(fname)
            except _Bad as bad:
                malformed.append(Malformed(sid if sid is not None else "?", bad.reason, bad.models))
                continue

            # commit: every check passed
            code = symbol_codes.get(symbol)
            if code is None:
                code = symbol_codes[symbol] = len(symbols)
                symbols.append(symbol)
            commit((side_code, conf, consensus, total, ts_ms, int(ms), code, price, nbytes))
            commit_models(parsed)
            commit_model_count(len(breakdown))
            commit_feature_keys(features)
            commit_feature_values(features.values())
            commit_feature_count(len(features))
            if fast is not None:
                fast.learn(event)
        self._ts_prefix = ts_prefix
        self._ts_epoch_ms = ts_epoch_ms
        self._chunks.append(
            _chunk(
                rows,
                (model_flat, model_counts),
                (feature_keys, feature_values, feature_counts),
                malformed,
                first_id,
                sid,
            )
        )
        if len(self._chunks) - self._merged >= MERGE_PAGES:
            self._merge_recent()

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
        self._chunks[start:] = [_merge(in_time_order)]
        self._merged = len(self._chunks)

    def build(self) -> EventWindow:
        """The window so far, oldest first.

        The pages are merged column by column, each page's arrays released as soon as they
        are merged, so the peak stays near one copy of the window; the builder keeps the
        result as its only page and stays usable for more ``add`` calls.
        """
        chunks = self._chunks[::-1] if self.newest_first else list(self._chunks)
        self._chunks = []
        merged = _merge(chunks)
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


MERGE_PAGES = 32
"""Pages added between two merges of the recent pages (see WindowBuilder._merge_recent)."""


def _merge(chunks: list[_Chunk]) -> _Chunk:
    """One chunk from ``chunks`` (in time order), releasing each part once it is copied."""
    if len(chunks) == 1:
        return chunks[0]
    length = sum(c.length for c in chunks)
    columns = {
        name: _concat([c.columns.pop(name) for c in chunks], dtype)
        for name, dtype in _COLUMN_TYPES.items()
    }
    models: dict[str, tuple[np.ndarray, ...]] = {}
    for name in _ordered_names(chunks, "models"):
        parts = [c.models.pop(name, None) or _absent_model(c.length) for c in chunks]
        models[name] = tuple(
            _concat([p[i] for p in parts], dtype)
            for i, dtype in enumerate((np.bool_, np.bool_, np.bool_, np.int8, np.float64))
        )
        del parts
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in _ordered_names(chunks, "features"):
        parts = [c.features.pop(name, None) or _absent_feature(c.length) for c in chunks]
        features[name] = (
            _concat([p[0] for p in parts], np.float64),
            _concat([p[1] for p in parts], np.bool_),
        )
        del parts
    malformed = [m for c in chunks for m in c.malformed]
    ids = [(c.first_id, c.last_id) for c in chunks if c.first_id is not None]
    return _Chunk(
        length=length,
        columns=columns,
        models=models,
        features=features,
        malformed=malformed,
        first_id=ids[0][0] if ids else None,
        last_id=ids[-1][1] if ids else None,
    )


def _count_mismatch(
    side: str,
    total: int,
    consensus: int,
    voting: int,
    agreeing: int,
    shadows: list[str],
    shadow_agreeing: int,
) -> tuple[str, tuple[str, ...]]:
    """The reason (and models) when consensus_count/total_models do not add up."""
    if (
        shadows
        and voting <= total <= voting + len(shadows)
        and agreeing <= consensus <= agreeing + shadow_agreeing
    ):
        return (
            f"{VOTER_REASON} ({', '.join(shadows)}): total_models {total}, "
            f"consensus_count {consensus}; voting models {voting}, agreeing {agreeing}",
            tuple(shadows),
        )
    if total != voting:
        return f"total_models {_short(total)} != {voting} voting models (active, not shadow)", ()
    return (
        f"consensus_count {_short(consensus)} != {agreeing} voting models "
        f"agreeing with side {side}",
        (),
    )


def _chunk(
    rows: list,
    models_flat: tuple[list, list[int]],
    features_flat: tuple[list[str], list[float], list[int]],
    malformed: list[Malformed],
    first_id: str | None,
    last_id: str | None,
) -> _Chunk:
    """Turn one page's flat lists into dense numpy arrays (slices and numpy, no Python loop)."""
    stride = len(_COLUMN_TYPES)
    length = len(rows) // stride
    columns = {}
    for i, (name, dtype) in enumerate(_COLUMN_TYPES.items()):
        if name == "payload_bytes":
            column = np.array(rows[i::stride], dtype=np.int64).clip(0, _INT32_MAX).astype(dtype)
        else:
            column = np.array(rows[i::stride], dtype=dtype)
        columns[name] = column

    models = {}
    flat, counts = models_flat
    if flat:
        names = flat[0::5]
        fields = (
            np.array(flat[1::5], dtype=np.int8),
            np.array(flat[2::5], dtype=np.float64),
            np.array(flat[3::5], dtype=np.bool_),
            np.array(flat[4::5], dtype=np.bool_),
        )
        for name, rows_of, select in _layout(names, counts, length):
            models[name] = _dense_model(length, rows_of, *(select(f) for f in fields))

    features = {}
    keys, values, counts = features_flat
    if keys:
        value_col = np.array(values, dtype=np.float64)
        for name, rows_of, select in _layout(keys, counts, length):
            features[name] = _dense_feature(length, rows_of, select(value_col))
    return _Chunk(length, columns, models, features, malformed, first_id, last_id)


def _layout(names: list[str], counts: list[int], length: int) -> list[tuple[str, Any, Any]]:
    """(name, event rows, selector of that name's values) per distinct name, first seen first.

    The usual page has the same names in the same order in every event: then the values are
    a (length, width) matrix and each name is a column of it (no search at all).
    """
    width = counts[0] if counts else 0
    if width and counts.count(width) == length and names == names[:width] * length:
        rows_of = np.arange(length)
        return [
            (name, rows_of, lambda f, j=j: f.reshape(length, width)[:, j])
            for j, name in enumerate(names[:width])
        ]
    event_of = np.repeat(np.arange(length), np.array(counts, dtype=np.intp))
    order = list(dict.fromkeys(names))
    index = {name: i for i, name in enumerate(order)}
    which = np.fromiter(map(index.__getitem__, names), dtype=np.intp, count=len(names))
    layout = []
    for i, name in enumerate(order):
        selected = which == i
        layout.append((name, event_of[selected], lambda f, s=selected: f[s]))
    return layout


def _dense_model(
    length: int, rows: Any, codes: Any, confs: Any, inactive: Any, shadow: Any
) -> tuple[np.ndarray, ...]:
    """present, inactive, shadow, action, confidence of one model over a page of ``length``."""
    if len(rows) == length:  # in every event of the page (names are unique per event)
        return (
            np.ones(length, dtype=np.bool_),
            np.ascontiguousarray(inactive, dtype=np.bool_),
            np.ascontiguousarray(shadow, dtype=np.bool_),
            np.ascontiguousarray(codes, dtype=np.int8),
            np.ascontiguousarray(confs, dtype=np.float64),
        )
    index = np.asarray(rows, dtype=np.intp)
    present, inactive_col, shadow_col, action, confidence = _absent_model(length)
    present[index] = True
    inactive_col[index] = inactive
    shadow_col[index] = shadow
    action[index] = codes
    confidence[index] = confs
    return present, inactive_col, shadow_col, action, confidence


def _dense_feature(length: int, rows: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """values (NaN where absent) and presence of one feature over a page of ``length``."""
    if len(rows) == length:
        return np.ascontiguousarray(values, dtype=np.float64), np.ones(length, dtype=np.bool_)
    index = np.asarray(rows, dtype=np.intp)
    column, present = _absent_feature(length)
    column[index] = values
    present[index] = True
    return column, present


def _absent_model(length: int) -> tuple[np.ndarray, ...]:
    return (
        np.zeros(length, dtype=np.bool_),
        np.zeros(length, dtype=np.bool_),
        np.zeros(length, dtype=np.bool_),
        np.full(length, NO_ACTION, dtype=np.int8),
        np.full(length, np.nan, dtype=np.float64),
    )


def _absent_feature(length: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(length, np.nan, dtype=np.float64), np.zeros(length, dtype=np.bool_)


def _ordered_names(chunks: list[_Chunk], kind: str) -> list[str]:
    """Names in order of first appearance (oldest chunk first)."""
    names: dict[str, None] = {}
    for chunk in chunks:
        for name in getattr(chunk, kind):
            names.setdefault(name, None)
    return list(names)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts).astype(dtype, copy=False)


def parse_window(
    entries: Iterable[tuple[bytes | str, bytes | str | None]],
) -> EventWindow:
    """Parse ``(stream id, payload)`` pairs (oldest first) into an EventWindow."""
    builder = WindowBuilder()
    builder.add(entries)
    return builder.build()
