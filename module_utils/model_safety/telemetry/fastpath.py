"""The fast path for the engine's canonical payload layout (see :class:`FastPath`): it gives
the general parser's values, or None to hand the entry to that parser.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .columns import MODEL_FIELDS
from .contract import ACTION_CODES, NO_ACTION
from .payload import epoch_seconds

NAN = math.nan

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
# A cap in (0, 1] (exponent forms go to the slow path).
_CAP = rb"(?:0\.[0-9]*[1-9][0-9]*|1(?:\.0+)?)"
# A capped entry: the published confidence, then the raw one (captured) and the cap.
_CAPPED_CONFIDENCE = b'"confidence":%s,"raw_confidence":(%s)(?:,"confidence_cap":%s)?' % (
    _UNIT,
    _UNIT,
    _CAP,
)


class FastPath:
    """Regular expressions that parse payloads in the engine's canonical layout.

    The engine writes ``json.dumps(payload, separators=(",", ":"))`` with the keys in the
    order of DESIGN.md "Telemetry event": symbol, side, confidence, price (optional),
    consensus_count, total_models, timestamp, model_breakdown (each entry ``action,
    confidence`` or ``inactive, inactive_reason``, then ``model`` and optionally
    ``"shadow":true``; a capped model's active entries ``action, confidence, raw_confidence,
    confidence_cap``) and features (optional). A *layout* is the ordered model names, which of
    them are capped, and the feature names; its expression is built from the first event of
    that layout that the
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
        self._capped: tuple[bool, ...] = ()
        self._plans: dict[tuple, tuple | bool] = {}
        self._ts_prefix = b""
        self._ts_epoch_ms = 0

    def learn(self, event: dict) -> None:
        """Use (building it at most once) the expression of an accepted event's layout."""
        breakdown = event["model_breakdown"]
        features = event.get("features")
        capped = tuple("raw_confidence" in entry for entry in breakdown.values())
        layout = (tuple(breakdown), None if features is None else tuple(features), capped)
        known = self._layouts.get(layout)
        if known is None:
            keys = [key for key in event if key not in ("price", "features")]
            if keys != [*_TOP_KEYS, "model_breakdown"] or len(self._layouts) >= _MAX_LAYOUTS:
                return
            known = (_layout_re(*layout).fullmatch, layout[0], layout[1] or (), capped)
            self._layouts[layout] = known
        if known[1:] != (self._models, self._features, self._capped):
            self._plans.clear()
        self._match, self._models, self._features, self._capped = known

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
            parsed[2::MODEL_FIELDS] = map(float, groups[9:end:3])
        else:
            parsed[2::MODEL_FIELDS] = [
                NAN if text is None else float(text) for text in groups[9:end:3]
            ]
        if groups[3] is None:
            price = NAN
        else:
            price = float(groups[3])
            if not 0.0 < price < math.inf:
                return None
        if groups[6] != self._ts_prefix:
            try:
                seconds = epoch_seconds(groups[6].decode() + "+00:00")
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
        slots (an active entry of a capped model is capped) and whether every model is active;
        False when the counts do not add up."""
        count = len(self._models)
        side_code = _ACTION_BYTES[key[0]]
        consensus, total = int(key[1]), int(key[2])
        voting = agreeing = 0
        template: list = []
        for name, action, shadow, capped in zip(
            self._models, key[3 : 3 + count], key[3 + count :], self._capped, strict=True
        ):
            code = NO_ACTION if action is None else _ACTION_BYTES[action]
            template += (
                name,
                code,
                NAN,
                action is None,
                shadow is not None,
                capped and action is not None,
            )
            if action is not None and shadow is None:
                voting += 1
                agreeing += code == side_code
        if total != voting or consensus != agreeing:
            return False
        return side_code, consensus, total, template, None not in key[3 : 3 + count]


def _layout_re(
    models: tuple[str, ...], features: tuple[str, ...] | None, capped: tuple[bool, ...]
) -> re.Pattern[bytes]:
    """The expression of one layout (see FastPath); names are validated, escaping is moot. A
    capped model's group of the confidence captures its raw_confidence (the one judged)."""
    entries = [
        b'"%s":\\{(?:"action":"(BUY|SELL|HOLD)",%s'
        b'|"inactive":true,"inactive_reason":"%s+"),"model":"%s*"(,"shadow":true)?\\}'
        % (
            re.escape(name).encode(),
            _CAPPED_CONFIDENCE if is_capped else b'"confidence":(%s)' % _UNIT,
            _STRING,
            _STRING,
        )
        for name, is_capped in zip(models, capped, strict=True)
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
