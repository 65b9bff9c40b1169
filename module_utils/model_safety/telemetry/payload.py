"""The general parser's checks of one stream entry, step by step (stream id, payload, the
top-level fields, model_breakdown, features): each step returns the values it checked or raises
:class:`BadEntry` with the reason (see :mod:`.events` for the order and the texts).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from ..names import is_model_name
from .columns import INT16_MAX
from .contract import (
    ACTION_CODES,
    FEATURE_NAME_RE,
    MAX_FEATURES,
    MAX_MODELS,
    NO_ACTION,
    VOTER_REASON,
)

MISSING = object()
NAN = math.nan
_MAX_MS_DIGITS = 18  # stream ids hold unsigned 64-bit ms; more than int64 is not a real id
_REPR_LIMIT = 40


class BadEntry(Exception):
    """Internal: the entry is malformed for ``reason``."""

    def __init__(self, reason: str, models: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.models = models


def short_repr(value: object) -> str:
    """repr of a value, cut to keep reasons short (and free of huge attacker strings)."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def confidence_problem(where: str, value: object) -> str:
    if value is MISSING:
        return f"missing field {where}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{where} {short_repr(value)} is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} {short_repr(value)} is not finite"
    return f"{where} {short_repr(value)} not in [0, 1]"


def action_problem(where: str, value: object) -> str:
    if value is MISSING:
        return f"missing field {where}"
    return f"unknown {where} {short_repr(value)} (not BUY, SELL or HOLD)"


def count_problem(where: str, value: object) -> str:
    if value is MISSING:
        return f"missing field {where}"
    return f"{where} {short_repr(value)} is not an integer >= 0"


def epoch_seconds(text: str) -> float:
    """Seconds since the epoch of an aware ISO-8601 time; ValueError otherwise."""
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("no time zone")
    return moment.timestamp()


def finite_positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def count_mismatch(
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
        return (
            f"total_models {short_repr(total)} != {voting} voting models (active, not shadow)",
            (),
        )
    return (
        f"consensus_count {short_repr(consensus)} != {agreeing} voting models "
        f"agreeing with side {side}",
        (),
    )


def stream_id_ms(sid: str) -> int:
    """The ms part of a stream id ``<ms>-<seq>`` (ASCII digits, at most 18 of ms)."""
    ms, dash, seq = sid.partition("-")
    if not (
        dash and ms.isdigit() and seq.isdigit() and sid.isascii() and len(ms) <= _MAX_MS_DIGITS
    ):
        raise BadEntry(f"invalid stream id {short_repr(sid)}")
    return int(ms)


def decode_payload(raw: bytes | str | None, scan: Any) -> tuple[dict, int]:
    """The payload as a JSON object, and its size in bytes; ``scan`` is a JSONDecoder's
    scan_once (the same C scanner as ``json.loads``, without its wrapper)."""
    if type(raw) is bytes:
        nbytes = len(raw)
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise BadEntry("payload is not valid UTF-8") from None
    elif type(raw) is str:
        text = raw
        nbytes = len(raw) if raw.isascii() else len(raw.encode("utf-8", "replace"))
    elif raw is None:
        raise BadEntry("missing field payload")
    else:
        raise BadEntry("payload is not bytes or text")
    try:
        event, end = scan(text, 0)
        if end != len(text):
            raise ValueError(end)
    except Exception:  # StopIteration, JSONDecodeError, RecursionError, ...
        try:
            event = json.loads(text)  # the same decoder; allows surrounding blanks
        except Exception:
            raise BadEntry("unparsable JSON") from None
    if type(event) is not dict:
        raise BadEntry("payload is not a JSON object")
    return event, nbytes


class Timestamps:
    """Event timestamps to epoch ms; the canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` has its seconds
    part parsed once per distinct second (kept across pages)."""

    def __init__(self) -> None:
        self._prefix: str | None = None
        self._epoch_ms = 0

    def ms(self, stamp: object) -> int:
        if type(stamp) is not str:
            if stamp is MISSING:
                raise BadEntry("missing field timestamp")
            raise BadEntry(f"timestamp {short_repr(stamp)} is not a string")
        canonical = (
            len(stamp) == 24
            and stamp[23] == "Z"
            and stamp[19] == "."
            and stamp[20:23].isdigit()
            and stamp.isascii()
        )
        try:
            if not canonical:
                return math.floor(epoch_seconds(stamp) * 1000.0 + 0.5)
            if stamp[:19] != self._prefix:
                seconds = epoch_seconds(stamp[:19] + "+00:00")
                self._prefix = stamp[:19]
                self._epoch_ms = int(seconds) * 1000
        except (ValueError, OverflowError):
            raise BadEntry(
                f"timestamp {short_repr(stamp)} is not ISO-8601 with a time zone"
            ) from None
        return self._epoch_ms + int(stamp[20:23])


def top_fields(event: dict, timestamps: Timestamps) -> tuple:
    """``(side, side code, confidence, consensus_count, total_models, timestamp ms, symbol,
    price)`` of an event, each checked (price NaN when absent)."""
    side = event.get("side", MISSING)
    side_code = ACTION_CODES.get(side) if type(side) is str else None
    if side_code is None:
        raise BadEntry(action_problem("side", side))
    conf = event.get("confidence", MISSING)
    if not ((type(conf) is float or type(conf) is int) and 0.0 <= conf <= 1.0):
        raise BadEntry(confidence_problem("confidence", conf))
    consensus = event.get("consensus_count", MISSING)
    if not (type(consensus) is int and consensus >= 0):
        raise BadEntry(count_problem("consensus_count", consensus))
    total = event.get("total_models", MISSING)
    if not (type(total) is int and total >= 0):
        raise BadEntry(count_problem("total_models", total))
    ts_ms = timestamps.ms(event.get("timestamp", MISSING))
    symbol = event.get("symbol", MISSING)
    if type(symbol) is not str or not symbol:
        if symbol is MISSING:
            raise BadEntry("missing field symbol")
        raise BadEntry(f"symbol {short_repr(symbol)} is not a non-empty string")
    price = event.get("price", NAN)
    if type(price) is not float or not (0.0 < price < math.inf):
        if "price" not in event:
            price = NAN
        else:
            price = finite_positive(price)
            if price is None:
                raise BadEntry(f"price {short_repr(event['price'])} is not a finite number > 0")
    return side, side_code, conf, consensus, total, ts_ms, symbol, price


def model_entries(event: dict, top: tuple, model_names: set[str]) -> tuple[list, int]:
    """The flat ``(name, action code, confidence, inactive, shadow, capped)`` values of every
    entry of model_breakdown, and their number, checked against ``top`` (:func:`top_fields`):
    the counts must add up. New names join ``model_names`` (at most MAX_MODELS).

    An entry whose confidence the engine capped (QSC_CANARY_CONF_CAP) also carries
    ``raw_confidence`` (the model's own, checked like a confidence) and ``confidence_cap`` (in
    (0, 1] when present): its confidence here is the raw one, and ``capped`` is True, so every
    rule judges what the model said, not what the cap let through."""
    side, side_code, _conf, consensus, total = top[:5]
    breakdown = event.get("model_breakdown", MISSING)
    if type(breakdown) is not dict:
        if breakdown is MISSING:
            raise BadEntry("missing field model_breakdown")
        raise BadEntry("model_breakdown is not an object")
    voting = agreeing = shadow_agreeing = 0
    shadows: list[str] = []
    parsed: list = []
    for name, entry in breakdown.items():
        if name not in model_names:
            if not is_model_name(name):
                raise BadEntry(f"invalid model name {short_repr(name)}")
            if len(model_names) >= MAX_MODELS:
                raise BadEntry(f"more than {MAX_MODELS} distinct models in the window")
            model_names.add(name)
        if type(entry) is not dict:
            raise BadEntry(f"model {name}: entry is not an object")
        tag = entry.get("model", MISSING)
        if type(tag) is not str:
            if tag is MISSING:
                raise BadEntry(f"model {name}: missing field model")
            raise BadEntry(f"model {name}: model {short_repr(tag)} is not a string")
        shadow = entry.get("shadow", False)
        if shadow is not False and shadow is not True:
            raise BadEntry(f"model {name}: shadow {short_repr(shadow)} is not a boolean")
        inactive = entry.get("inactive", False)
        if inactive is True:
            reason = entry.get("inactive_reason")
            if type(reason) is not str or not reason:
                raise BadEntry(f"model {name}: inactive without inactive_reason")
            if "action" in entry or "confidence" in entry or "raw_confidence" in entry:
                raise BadEntry(f"model {name}: inactive with action or confidence")
            parsed += (name, NO_ACTION, NAN, True, shadow, False)
            if shadow:
                shadows.append(name)
            continue
        if inactive is not False:
            raise BadEntry(f"model {name}: inactive {short_repr(inactive)} is not a boolean")
        action = entry.get("action", MISSING)
        code = ACTION_CODES.get(action) if type(action) is str else None
        if code is None:
            raise BadEntry(f"model {name}: " + action_problem("action", action))
        mconf = entry.get("confidence", MISSING)
        if not ((type(mconf) is float or type(mconf) is int) and 0.0 <= mconf <= 1.0):
            raise BadEntry(f"model {name}: " + confidence_problem("confidence", mconf))
        raw = entry.get("raw_confidence", MISSING)
        if raw is MISSING:
            parsed += (name, code, mconf, False, shadow, False)
        else:
            raw_confidence(name, raw, entry.get("confidence_cap", MISSING))
            parsed += (name, code, raw, False, shadow, True)
        if shadow:
            shadows.append(name)
            shadow_agreeing += code == side_code
        else:
            voting += 1
            agreeing += code == side_code
    if total != voting or consensus != agreeing:
        raise BadEntry(
            *count_mismatch(side, total, consensus, voting, agreeing, shadows, shadow_agreeing)
        )
    if total > INT16_MAX:
        raise BadEntry(f"total_models {total} is too large")
    return parsed, len(breakdown)


def raw_confidence(name: str, raw: object, cap: object) -> None:
    """Check an entry's ``raw_confidence`` (a confidence) and ``confidence_cap`` (absent, or a
    number in (0, 1])."""
    if not ((type(raw) is float or type(raw) is int) and 0.0 <= raw <= 1.0):
        raise BadEntry(f"model {name}: " + confidence_problem("raw_confidence", raw))
    if cap is not MISSING and not ((type(cap) is float or type(cap) is int) and 0.0 < cap <= 1.0):
        raise BadEntry(f"model {name}: confidence_cap {short_repr(cap)} not in (0, 1]")


_NO_FEATURES: dict = {}


def checked_features(event: dict, feature_names: set[str]) -> dict:
    """The event's features (empty when absent), each a number with a valid name; new names
    join ``feature_names`` (at most MAX_FEATURES)."""
    features = event.get("features", _NO_FEATURES)
    if type(features) is not dict:
        raise BadEntry("features is not an object")
    for fname, value in features.items():
        if type(value) is not float:
            if type(value) is not int:
                raise BadEntry(f"feature {short_repr(fname)}: {short_repr(value)} is not a number")
            try:
                float(value)
            except OverflowError:
                raise BadEntry(
                    f"feature {short_repr(fname)}: {short_repr(value)} is too large"
                ) from None
        if fname not in feature_names:
            if not FEATURE_NAME_RE.fullmatch(fname):
                raise BadEntry(f"invalid feature name {short_repr(fname)}")
            if len(feature_names) >= MAX_FEATURES:
                raise BadEntry(f"more than {MAX_FEATURES} distinct features in the window")
            feature_names.add(fname)
    return features
