"""What the engine says in its journal when it starts: its build, the models it loaded
(voting with their weights, shadow), the canary line, READY and any [ERROR]/[FATAL] line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from .commands import EngineStateError
from .validation import validate_model_name

_PCT_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_BUILD_LINE = re.compile(r"\bAI_ENGINE_BUILD:\s*(\S+)")
_OK_LINE = re.compile(r"\[OK\]\s+(\S+)\s+agent loaded\s+\(weight:\s*([^%)]*)%\)")
# The canary's confidence cap (QSC_CANARY_CONF_CAP) ends its [OK] line: "... (weight: 10%)
# conf_cap=0.75".
_CONF_CAP_SUFFIX = re.compile(r"\s+conf_cap=(\S*)\s*$")
_SHADOW_LOAD_LINE = re.compile(
    r"\[SHADOW\]\s+(\S+)\s+agent loaded in shadow mode\s+\(weight:\s*([^%)]*)%"
)
_SHADOW_PREDICTION_LINE = re.compile(
    r"\[SHADOW\]\s+(\S+)\s*\|\s*\S+\s*\|\s*action=\S+\s+conf=\S+\s*\|\s*mode=SHADOW_ONLY"
)
_CANARY_LINE = re.compile(r"\[CANARY\]\s+(\S+)\s+weight=([^%\s]*)%\s+weights=(\S+)")
_MODEL_FILE_LINE = re.compile(r"\[[A-Za-z0-9_]+-INIT\]\s+Model file:")
_READY_LINE = re.compile(r"\[READY\]")
_ERROR_LINE = re.compile(r"\[(ERROR|FATAL)\]")


class Canary(NamedTuple):
    """The ``[CANARY]`` line: the canary model, its weight and the full weight vector."""

    model: str
    weight: float
    weights: dict[str, float]


@dataclass(frozen=True)
class StartupReport:
    """What one invocation of the engine said about itself in its journal.

    ``build`` is the single ``AI_ENGINE_BUILD`` value, or None when it is missing or
    contradicted (every occurrence is kept in ``builds``). Weights are fractions. Lines that
    look like start-up lines but cannot be parsed, contradictions and duplicates are listed in
    ``anomalies``; ``errors`` holds the ``[ERROR]``/``[FATAL]`` lines verbatim.
    """

    build: str | None = None
    builds: list[str] = field(default_factory=list)
    voting: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, float] = field(default_factory=dict)
    canary: Canary | None = None
    model_file: str | None = None
    ready: bool = False
    errors: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    shadow_predictions: dict[str, int] = field(default_factory=dict)
    conf_caps: dict[str, float] = field(default_factory=dict)
    """Voting models whose [OK] line ends ``conf_cap=<cap>``: the highest confidence they vote
    and publish with."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the canary becomes an object)."""
        data = asdict(self)
        data["canary"] = None if self.canary is None else self.canary._asdict()
        return data


def parse_weight_pct(text: str) -> float:
    """Turn the engine's percentage text (``"28.125"``) into a fraction (``0.28125``)."""
    if not isinstance(text, str) or not _PCT_RE.fullmatch(text.strip()):
        raise EngineStateError(f"not a weight percentage: {text!r}")
    value = Decimal(text.strip())
    if value > 100:
        raise EngineStateError(f"weight percentage above 100: {text!r}")
    return float(value / 100)


def parse_conf_cap(text: str) -> float:
    """A confidence cap as the engine logs and reads it: a plain decimal in (0, 1]."""
    if not isinstance(text, str) or not _PCT_RE.fullmatch(text.strip()):
        raise EngineStateError(f"not a confidence cap: {text!r}")
    value = float(Decimal(text.strip()))
    if not 0.0 < value <= 1.0:
        raise EngineStateError(f"confidence cap outside (0, 1]: {text!r}")
    return value


def _parse_fraction(text: str) -> float:
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise EngineStateError(f"not a weight fraction: {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise EngineStateError(f"weight fraction outside [0, 1]: {text!r}")
    return value


def parse_canary_line(model: str, pct: str, weights: str) -> Canary:
    """Parse the parts of a ``[CANARY]`` line; raise on anything malformed."""
    vector: dict[str, float] = {}
    for item in weights.split(","):
        name, sep, value = item.partition(":")
        if not sep or validate_model_name(name) in vector:
            raise EngineStateError(f"malformed canary weights: {weights!r}")
        vector[name] = _parse_fraction(value)
    return Canary(validate_model_name(model), parse_weight_pct(pct), vector)


class _StartupParser:
    """Accumulates one journal's start-up facts line by line."""

    def __init__(self) -> None:
        self.builds: list[str] = []
        self.voting: dict[str, float] = {}
        self.shadow: dict[str, float] = {}
        self.canary: Canary | None = None
        self.model_file: str | None = None
        self.ready = False
        self.errors: list[str] = []
        self.anomalies: list[str] = []
        self.shadow_predictions: dict[str, int] = {}
        self.conf_caps: dict[str, float] = {}

    def feed(self, line: str) -> None:
        """Take one journal line."""
        if _ERROR_LINE.search(line):
            self.errors.append(line)
        if match := _BUILD_LINE.search(line):
            self.builds.append(match.group(1))
        elif match := _OK_LINE.search(line):
            self._loaded(self.voting, "voting", match.group(1), match.group(2), line)
            if cap := _CONF_CAP_SUFFIX.search(line, match.end()):
                self._conf_cap(match.group(1), cap.group(1), line)
        elif match := _SHADOW_LOAD_LINE.search(line):
            self._loaded(self.shadow, "shadow", match.group(1), match.group(2), line)
        elif match := _SHADOW_PREDICTION_LINE.search(line):
            model = match.group(1).lower()
            self.shadow_predictions[model] = self.shadow_predictions.get(model, 0) + 1
        elif match := _CANARY_LINE.search(line):
            self._canary(match.group(1), match.group(2), match.group(3), line)
        elif _MODEL_FILE_LINE.search(line):
            self.model_file = self.model_file or line.strip()
        elif _READY_LINE.search(line):
            self.ready = True

    def _loaded(self, table: dict[str, float], role: str, model: str, pct: str, line: str) -> None:
        try:
            weight = parse_weight_pct(pct)
            validate_model_name(model)
        except EngineStateError as exc:
            self.anomalies.append(f"unparseable {role} load line ({exc}): {line.strip()}")
            return
        if model in table and table[model] != weight:
            self.anomalies.append(
                f"{model} loaded twice as {role} with different weights: "
                f"{table[model]:g} then {weight:g}"
            )
        table[model] = weight

    def _conf_cap(self, model: str, text: str, line: str) -> None:
        try:
            cap = parse_conf_cap(text)
        except EngineStateError as exc:
            self.anomalies.append(f"unparseable conf_cap ({exc}): {line.strip()}")
            return
        if self.conf_caps.get(model, cap) != cap:
            self.anomalies.append(
                f"{model} loaded twice with different conf_cap: {self.conf_caps[model]:g} "
                f"then {cap:g}"
            )
        self.conf_caps[model] = cap

    def _canary(self, model: str, pct: str, weights: str, line: str) -> None:
        try:
            canary = parse_canary_line(model, pct, weights)
        except EngineStateError as exc:
            self.anomalies.append(f"unparseable canary line ({exc}): {line.strip()}")
            return
        if self.canary is not None and self.canary != canary:
            self.anomalies.append("conflicting [CANARY] lines")
        self.canary = canary

    def report(self) -> StartupReport:
        """The facts gathered so far, with cross-line contradictions as anomalies."""
        anomalies = list(self.anomalies)
        distinct = list(dict.fromkeys(self.builds))
        if len(distinct) > 1:
            anomalies.append(f"conflicting AI_ENGINE_BUILD lines: {', '.join(distinct)}")
        both = sorted(set(self.voting) & set(self.shadow))
        if both:
            anomalies.append(f"loaded both as voting and as shadow: {', '.join(both)}")
        return StartupReport(
            build=distinct[0] if len(distinct) == 1 else None,
            builds=list(self.builds),
            voting=dict(self.voting),
            shadow=dict(self.shadow),
            canary=self.canary,
            model_file=self.model_file,
            ready=self.ready,
            errors=list(self.errors),
            anomalies=anomalies,
            shadow_predictions=dict(self.shadow_predictions),
            conf_caps=dict(self.conf_caps),
        )


def parse_startup(lines: Iterable[str]) -> StartupReport:
    """Parse the journal lines of one engine invocation (see DESIGN.md "Engine start-up lines")."""
    parser = _StartupParser()
    for line in lines:
        parser.feed(line)
    return parser.report()
